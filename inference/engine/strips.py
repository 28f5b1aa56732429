"""Strips of pixels for the tile rows of a run, from any pixel source: a GDAL raster (raster.RasterSource) or an
array in memory (`ArraySource`). No GDAL here: the compute path runs wherever numpy does (the GPU machine, a
Dask worker).

A source hands out rows as float32 with their validity (`PixelSource.read_rows`); `StripReader` reads each row
once, in whole block rows of the source, and keeps only the rows the next strip shares.
"""
from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np

from .card import ModelCard
from .errors import InputError


class PixelSource(Protocol):
    """Where a run's pixels come from: the bands feeding the model, in model channel order."""

    path: str  # how messages name it

    @property
    def bands(self) -> Sequence[int]:
        """One entry per model channel."""
        ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def block_rows(self) -> int:
        """Rows read together at best (a file's block height; 1 for memory)."""
        ...

    def read_rows(self, y0: int, x0: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Fill `data` (bands, rows, cols) float32 and `valid` (rows, cols) from column x0, row y0 (all inside)."""
        ...


def input_rescaling(scale: Sequence[float] | None, offset: Sequence[float] | None,
                    card: ModelCard) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (scale, offset) as float32 arrays, or None where they change nothing (the raw values are used)."""
    if scale is None and offset is None:
        return None
    need = len(card.input.bands)
    arrays: list[np.ndarray] = []
    for name, values, default in (("input scale", scale, 1.0), ("input offset", offset, 0.0)):
        if values is None:
            arrays.append(np.full(need, default, dtype=np.float32))
            continue
        values = [float(v) for v in values]
        if len(values) != need:
            raise InputError(f"The {name} has {len(values)} value{'s' if len(values) != 1 else ''} but the model "
                             f"takes {need} band{'s' if need != 1 else ''} ({describe_bands(card)}). "
                             f"Give one {name} per model band, in the model's order.")
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"The {name} ({', '.join(f'{v:g}' for v in values)}) contains a value that is not "
                             "a finite number. Give finite numbers.")
        arrays.append(np.asarray(values, dtype=np.float32))
    if (arrays[0] == 1).all() and (arrays[1] == 0).all():
        return None
    return arrays[0], arrays[1]


def describe_bands(card: ModelCard) -> str:
    return ", ".join(b.name for b in card.input.bands)


def rescale(data: np.ndarray, scale: np.ndarray | None, offset: np.ndarray | None) -> None:
    """value * scale + offset per band, in place (after validity: nodata stays invalid)."""
    if scale is not None and offset is not None:
        data *= scale[:, None, None]
        data += offset[:, None, None]


class ArraySource:
    """An array in memory (bands, height, width) as a pixel source: the bands that feed the model, in model channel
    order. Valid where `mask` (height, width; None: everywhere) is true, the values differ from `nodata`, and, for
    float arrays, every band is finite (as GDAL's float bands)."""

    def __init__(self, array: np.ndarray, mask: np.ndarray | None = None, nodata: float | None = None,
                 scale: np.ndarray | None = None, offset: np.ndarray | None = None, name: str = "the array") -> None:
        self.array, self.mask, self.nodata = array, mask, nodata
        self.scale, self.offset, self.path = scale, offset, name
        self.bands: Sequence[int] = list(range(1, array.shape[0] + 1))

    @property
    def width(self) -> int:
        return int(self.array.shape[2])

    @property
    def height(self) -> int:
        return int(self.array.shape[1])

    @property
    def block_rows(self) -> int:
        return 1

    def read_rows(self, y0: int, x0: int, data: np.ndarray, valid: np.ndarray) -> None:
        h, w = valid.shape
        data[:] = self.array[:, y0:y0 + h, x0:x0 + w]
        if self.mask is None:
            valid[:] = True
        else:
            np.not_equal(self.mask[y0:y0 + h, x0:x0 + w], 0, out=valid)
        if self.nodata is not None:
            valid &= (data != np.float32(self.nodata)).all(axis=0)
        if self.array.dtype.kind in "fc":
            valid &= np.isfinite(data).all(axis=0)
        rescale(data, self.scale, self.offset)


class StripReader:
    """Reads strips of one column range, top to bottom, for the tile rows of a run.

    Consecutive strips overlap; rows are read once, in whole block rows of the source (each compressed block is
    decoded once), and kept only while a later strip still needs them. Parts of a strip outside the raster are
    mirrored, or NaN for models that take nodata as NaN (card input.nodata).
    """

    def __init__(self, source: PixelSource, x: int, w: int, height: int, beyond: str = "mirror") -> None:
        """Columns [x, x + w) (may reach beyond the raster); strips up to `height` rows. `beyond` says what parts
        beyond the raster's edge hold: "mirror" (reflected pixels) or "nan" (NaN, not valid)."""
        self.source, self.x, self.w, self.beyond = source, x, w, beyond
        self.x0, self.x1 = max(0, x), min(source.width, x + w)
        self.block = max(1, source.block_rows)
        rows = height + self.block  # a strip, plus the rest of the last block row read for it
        self.data = np.empty((len(source.bands), rows, self.x1 - self.x0), dtype=np.float32)
        self.valid = np.empty((rows, self.x1 - self.x0), dtype=bool)
        self.top, self.count = 0, 0  # raster row of the buffer's first row; rows held

    def read(self, y: int, h: int, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (bands, h, w) and validity (h, w) of rows [y, y + h) over this reader's columns: a copy, or with
        `copy` False views of the reader's buffer (valid until the next read) where no edge is padded."""
        y0, y1 = max(0, y), min(self.source.height, y + h)
        if y1 <= y0 or self.x1 <= self.x0:
            raise InputError(f"Rows {y}-{y + h} lie outside the raster '{self.source.path}'.")
        if y0 < self.top or y0 > self.top + self.count:  # not a continuation: start afresh
            self.top, self.count = y0, 0
        drop = y0 - self.top
        if drop:  # keep the rows this strip shares with the last one, at the top of the buffer
            self.data[:, :self.count - drop] = self.data[:, drop:self.count]
            self.valid[:self.count - drop] = self.valid[drop:self.count]
            self.top, self.count = y0, self.count - drop
        bottom = self.top + self.count
        if y1 > bottom:
            end = min(self.source.height, -(-y1 // self.block) * self.block, self.top + self.valid.shape[0])
            rows = slice(self.count, self.count + end - bottom)
            self.source.read_rows(bottom, self.x0, self.data[:, rows], self.valid[rows])
            self.count += end - bottom
        rows = slice(0, y1 - y0)
        data, valid = self.data[:, rows], self.valid[rows]
        pads = ((y0 - y, y + h - y1), (self.x0 - self.x, self.x + self.w - self.x1))
        if any(pads[0]) or any(pads[1]):
            if self.beyond == "nan":
                return (np.pad(data, ((0, 0),) + pads, constant_values=np.nan),
                        np.pad(valid, pads, constant_values=False))
            return _mirror(data, pads), _mirror(valid[None], pads)[0]
        return (data.copy(), valid.copy()) if copy else (data, valid)


def _mirror(array: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """Pad the last two axes by reflection (edge replication where an axis has one pixel)."""
    full = ((0, 0),) * (array.ndim - 2) + pads
    if min(array.shape[-2:]) > 1:
        return np.pad(array, full, mode="reflect")
    return np.pad(array, full, mode="edge")
