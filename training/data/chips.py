"""Cutting training chips from (image, labels) pairs on a regular grid, with windowed reads.

Chips are laid on a grid of ``stride`` px inside each spatial block of ``block`` px (the whole image when no
block is given), so no chip ever straddles a block: with ``block`` a multiple of ``stride`` this is the plain
regular grid minus the chips that would cross a block edge. Image values are float32 with NaN wherever the
pixel is invalid (nodata, masked or NaN in any selected band); labels there are 0 (unlabelled).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
from osgeo import gdal

from deepstrata.inference.engine.raster import RasterSource

from .errors import DataError
from .grid import PathLike, grid_of, open_raster
from .labels import Labels, class_mapping, is_vector, load_labels

Pair = tuple[PathLike, Optional[PathLike]]


@dataclass(frozen=True)
class ChipSet:
    """``images`` (N, C, H, W) float32 (NaN = invalid), ``labels`` (N, H, W) int64 (0 = unlabelled),
    ``origins`` (N, 3) int64 rows of (raster index, x, y) of each chip's top-left pixel."""

    images: np.ndarray
    labels: np.ndarray
    origins: np.ndarray
    classes: dict[str, int]
    bands: tuple[int, ...]
    size: int

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def valid(self) -> np.ndarray:
        """(N, H, W) bool: True where every band of the chip holds a value."""
        return np.isfinite(self.images).all(axis=1)

    def subset(self, indices: np.ndarray) -> "ChipSet":
        return ChipSet(self.images[indices], self.labels[indices], self.origins[indices], self.classes,
                       self.bands, self.size)


def grid_positions(length: int, size: int, stride: int, block: Optional[int] = None) -> list[int]:
    """Chip offsets along one axis of ``length`` px: every ``stride`` px from each block's start, keeping
    chips of ``size`` px that end inside both the block and the image."""
    if size < 1 or stride < 1:
        raise DataError(f"chip size and stride must be positive (got size {size}, stride {stride}).")
    if block is not None and block < size:
        raise DataError(f"blocks of {block} px cannot hold chips of {size} px: make the block at least the chip.")
    step = block if block is not None else max(length, 1)
    positions: list[int] = []
    for start in range(0, length, step):
        end = min(start + step, length)
        positions.extend(range(start, end - size + 1, stride))
    return positions


def _resolve_bands(ds: gdal.Dataset, bands: Optional[Sequence[int]], path: PathLike) -> tuple[int, ...]:
    chosen = tuple(bands) if bands is not None else tuple(range(1, ds.RasterCount + 1))
    bad = [b for b in chosen if not 1 <= b <= ds.RasterCount]
    if not chosen or bad:
        raise DataError(f"{path} has bands 1..{ds.RasterCount}; cannot read bands {bad or '[]'}.")
    return chosen


def _shared_classes(pairs: Sequence[Pair], class_field: Optional[str]) -> Optional[dict[str, int]]:
    vectors = [p for _, p in pairs if p is not None and is_vector(p)]
    if not vectors:
        return None
    if not class_field:
        raise DataError("polygon labels need the name of their class field (class_field).")
    return class_mapping(vectors, class_field)


def _merge(into: dict[str, int], found: Mapping[str, int]) -> None:
    for name, value in found.items():
        if into.get(name, value) != value:
            raise DataError(f"class {name!r} has id {into[name]} in one label source and {value} in another.")
        into[name] = value


def _read_window(source: RasterSource, x: int, y: int, size: int) -> np.ndarray:
    """(C, size, size) float32 of the window, NaN where any band is invalid.

    Read by the engine itself, so chips see exactly the pixels (and nodata rules) the plugin sees at inference.
    """
    data = np.empty((len(source.bands), size, size), dtype=np.float32)
    valid = np.empty((size, size), dtype=bool)
    source.read_rows(y, x, data, valid)
    data[:, ~valid] = np.nan
    return data


def _windows(labels: Labels, size: int, stride: int, block: Optional[int],
             min_labelled: float, need_labels: bool) -> list[tuple[int, int]]:
    height, width = labels.array.shape
    kept = []
    for y in grid_positions(height, size, stride, block):
        for x in grid_positions(width, size, stride, block):
            labelled = np.count_nonzero(labels.array[y:y + size, x:x + size]) / (size * size)
            if not need_labels or (labelled > 0 and labelled >= min_labelled):
                kept.append((x, y))
    return kept


def extract_chips(pairs: Sequence[Pair], size: int, stride: Optional[int] = None,
                  bands: Optional[Sequence[int]] = None, class_field: Optional[str] = None,
                  min_labelled: float = 0.0, max_nodata: float = 0.0,
                  block: Optional[int] = None) -> ChipSet:
    """Chips of ``size`` px from every (image, labels) pair.

    ``labels`` is a label raster, a vector file of polygons (``class_field`` names the class) or None
    (unlabelled chips, e.g. for an autoencoder). ``stride`` defaults to ``size``; ``bands`` (1-based) to all.
    A labelled chip is kept when at least one pixel and a fraction >= ``min_labelled`` of its pixels are
    labelled, and at most ``max_nodata`` of its pixels are invalid in the image. With ``block``, chips are laid
    per block (see :func:`grid_positions`) so :func:`training.data.splits.block_split` never drops one.
    """
    stride = stride or size
    if not 0.0 <= min_labelled <= 1.0 or not 0.0 <= max_nodata <= 1.0:
        raise DataError("min_labelled and max_nodata are fractions between 0 and 1.")
    shared = _shared_classes(pairs, class_field)
    classes: dict[str, int] = {}
    images, labels, origins = [], [], []
    chosen: Optional[tuple[int, ...]] = None
    for index, (image_path, label_path) in enumerate(pairs):
        ds = open_raster(image_path)
        these = _resolve_bands(ds, bands, image_path)
        if chosen is not None and len(these) != len(chosen):
            raise DataError(f"{image_path} gives {len(these)} bands but earlier images gave {len(chosen)}.")
        chosen = these
        grid = grid_of(ds)
        if label_path is None:
            found = Labels(np.zeros((grid.height, grid.width), dtype=np.uint8), {})
        else:
            found = load_labels(label_path, grid, class_field, shared)
        _merge(classes, found.classes)
        source = RasterSource(str(image_path), ds, list(these))
        for x, y in _windows(found, size, stride, block, min_labelled, label_path is not None):
            chip = _read_window(source, x, y, size)
            invalid = np.isnan(chip[0])
            if invalid.mean() > max_nodata:
                continue
            label = found.array[y:y + size, x:x + size].astype(np.int64)
            label[invalid] = 0
            if label_path is not None and (not label.any() or np.count_nonzero(label) < min_labelled * size**2):
                continue
            images.append(chip)
            labels.append(label)
            origins.append((index, x, y))
    return ChipSet(
        images=np.stack(images) if images else np.empty((0, len(chosen or ()), size, size), np.float32),
        labels=np.stack(labels) if labels else np.empty((0, size, size), np.int64),
        origins=np.asarray(origins, dtype=np.int64).reshape(-1, 3),
        classes=dict(sorted(classes.items(), key=lambda kv: kv[1])),
        bands=chosen or (),
        size=size,
    )
