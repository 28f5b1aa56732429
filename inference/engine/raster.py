"""Reading rasters with GDAL: band mapping, validity masks, padded windowed reads, extents to windows."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from osgeo import gdal

from .card import ModelCard
from .errors import InputError
from .windows import Window, bounds, from_bounds

gdal.UseExceptions()


@dataclass
class RasterSource:
    """An open raster and the bands that feed the model, in model channel order (1-based)."""

    path: str
    dataset: gdal.Dataset
    bands: list[int]
    scale: np.ndarray | None = None  # (bands,) float32: value * scale + offset before normalisation
    offset: np.ndarray | None = None

    @property
    def width(self) -> int:
        return int(self.dataset.RasterXSize)

    @property
    def height(self) -> int:
        return int(self.dataset.RasterYSize)

    @property
    def geotransform(self) -> tuple[float, ...]:
        return tuple(self.dataset.GetGeoTransform(can_return_null=False))

    @property
    def projection(self) -> str:
        return str(self.dataset.GetProjection() or "")

    @property
    def window(self) -> Window:
        return Window(0, 0, self.width, self.height)

    def read_rows(self, y0: int, x0: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Fill `data` (bands, rows, cols) float32 and `valid` (rows, cols) from the raster at column x0, row y0."""
        h, w = valid.shape
        self.dataset.ReadAsArray(x0, y0, w, h, buf_obj=data, band_list=self.bands, buf_type=gdal.GDT_Float32)
        valid[:] = True
        for i, index in enumerate(self.bands):
            valid &= band_validity(self.dataset.GetRasterBand(index), data[i], Window(x0, y0, w, h))
        if self.scale is not None and self.offset is not None:  # after validity: nodata stays invalid
            data *= self.scale[:, None, None]
            data += self.offset[:, None, None]
        # Drop the blocks GDAL cached: StripReader reads whole block rows once, and a cache that fills with the
        # whole raster would make memory grow with raster size.
        self.dataset.FlushCache()

    def close(self) -> None:
        self.dataset = None  # type: ignore[assignment]


class StripReader:
    """Reads strips of one column range, top to bottom, for the tile rows of a run.

    Consecutive strips overlap; rows are read once, in whole block rows of the file (each compressed block is
    decoded once), and kept only while a later strip still needs them. Parts of a strip outside the raster are
    mirrored.
    """

    def __init__(self, source: RasterSource, x: int, w: int, height: int) -> None:
        """Columns [x, x + w) (may reach beyond the raster); strips up to `height` rows."""
        self.source, self.x, self.w = source, x, w
        self.x0, self.x1 = max(0, x), min(source.width, x + w)
        band = source.dataset.GetRasterBand(source.bands[0])
        self.block = max(1, int(band.GetBlockSize()[1]))
        rows = height + self.block  # a strip, plus the rest of the last block row read for it
        self.data = np.empty((len(source.bands), rows, self.x1 - self.x0), dtype=np.float32)
        self.valid = np.empty((rows, self.x1 - self.x0), dtype=bool)
        self.top, self.count = 0, 0  # raster row of the buffer's first row; rows held

    def read(self, y: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (bands, h, w) and validity (h, w) of rows [y, y + h) over this reader's columns (a copy)."""
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
            return _mirror(data, pads), _mirror(valid[None], pads)[0]
        return data.copy(), valid.copy()


def band_validity(band: gdal.Band, values: np.ndarray, win: Window) -> np.ndarray:
    """Valid pixels of one band: its nodata value or mask band, and finite values for float bands."""
    flags = band.GetMaskFlags()
    if flags & gdal.GMF_ALL_VALID:
        valid = np.ones(values.shape, dtype=bool)
    elif flags == gdal.GMF_NODATA:
        nodata = band.GetNoDataValue()
        valid = values != np.float32(nodata)
    else:
        valid = band.GetMaskBand().ReadAsArray(win.x, win.y, win.w, win.h) > 0
    if gdal.GetDataTypeName(band.DataType).startswith(("Float", "CFloat")):
        valid &= np.isfinite(values)
    return valid


def _mirror(array: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """Pad the last two axes by reflection (edge replication where an axis has one pixel)."""
    full = ((0, 0),) * (array.ndim - 2) + pads
    if min(array.shape[-2:]) > 1:
        return np.pad(array, full, mode="reflect")
    return np.pad(array, full, mode="edge")


def open_raster(path: str) -> gdal.Dataset:
    if not os.path.exists(path) and not path.startswith("/vsi"):
        raise InputError(f"Input raster not found: '{path}'. Check the path.")
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise InputError(f"Cannot read '{path}' as a raster ({str(exc).strip()}). "
                         "Check that it is a GDAL-readable image (GeoTIFF, VRT, ...)") from exc
    if ds is None or ds.RasterCount == 0:
        raise InputError(f"'{path}' contains no raster bands. Pick a raster layer.")
    return ds


def _describe_bands(card: ModelCard) -> str:
    return ", ".join(b.name for b in card.input.bands)


def map_bands(ds: gdal.Dataset, card: ModelCard, bands: Sequence[int] | None, path: str) -> list[int]:
    """Raster bands (1-based) feeding each model channel: as given, matched by name, or 1..n."""
    need, count = len(card.input.bands), ds.RasterCount
    plural = "s" if count != 1 else ""
    if bands:
        bands = [int(b) for b in bands]
        for b in bands:
            if not 1 <= b <= count:
                raise InputError(f"Band {b} does not exist: '{os.path.basename(path)}' has {count} band{plural} "
                                 f"(1-{count}). Choose bands between 1 and {count}.")
        if len(bands) != need:
            raise InputError(f"{len(bands)} band{'s' if len(bands) != 1 else ''} selected "
                             f"({', '.join(map(str, bands))}) but the model takes {need} "
                             f"({_describe_bands(card)}). Select {need} band{'s' if need != 1 else ''}, "
                             "in the model's order.")
        return bands
    names = {ds.GetRasterBand(i).GetDescription().strip().lower(): i for i in range(1, count + 1)}
    by_name = [names.get(b.name.strip().lower()) for b in card.input.bands]
    if all(by_name):
        return [int(b) for b in by_name if b]
    if count == need:
        return list(range(1, need + 1))
    raise InputError(f"The model takes {need} band{'s' if need != 1 else ''} ({_describe_bands(card)}) but "
                     f"'{os.path.basename(path)}' has {count} band{plural}. Choose which raster bands feed the "
                     f"model (Bands / --bands, e.g. {','.join(str(i + 1) for i in range(min(need, count)))}), "
                     "or use a raster with the bands the model expects.")


def input_rescaling(scale: Sequence[float] | None, offset: Sequence[float] | None,
                    card: ModelCard) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (scale, offset) as float32 arrays, or None where they change nothing (the raw values are used)."""
    if scale is None and offset is None:
        return None
    need = len(card.input.bands)
    arrays = []
    for name, values, default in (("input scale", scale, 1.0), ("input offset", offset, 0.0)):
        if values is None:
            arrays.append(np.full(need, default, dtype=np.float32))
            continue
        values = [float(v) for v in values]
        if len(values) != need:
            raise InputError(f"The {name} has {len(values)} value{'s' if len(values) != 1 else ''} but the model "
                             f"takes {need} band{'s' if need != 1 else ''} ({_describe_bands(card)}). "
                             f"Give one {name} per model band, in the model's order.")
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"The {name} ({', '.join(f'{v:g}' for v in values)}) contains a value that is not "
                             "a finite number. Give finite numbers.")
        arrays.append(np.asarray(values, dtype=np.float32))
    if (arrays[0] == 1).all() and (arrays[1] == 0).all():
        return None
    return arrays[0], arrays[1]


def extent_to_window(ds: gdal.Dataset, extent: Sequence[float], path: str) -> Window:
    """The pixel window covering (xmin, ymin, xmax, ymax) in the raster's CRS, clipped to the raster."""
    xmin, ymin, xmax, ymax = map(float, extent)
    if not (xmax > xmin and ymax > ymin):
        raise InputError(f"The extent ({xmin}, {ymin}, {xmax}, {ymax}) is empty: xmax must exceed xmin and "
                         "ymax exceed ymin.")
    gt = ds.GetGeoTransform(can_return_null=False)
    window = from_bounds((xmin, ymin, xmax, ymax), gt, ds.RasterXSize, ds.RasterYSize)
    if window is None:
        r = bounds(Window(0, 0, ds.RasterXSize, ds.RasterYSize), gt)
        raise InputError(f"The extent ({xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g}) lies outside the raster "
                         f"'{os.path.basename(path)}' ({r[0]:.6g}, {r[1]:.6g}, {r[2]:.6g}, {r[3]:.6g}). "
                         "Choose an extent that overlaps the layer, in the layer's CRS.")
    return window
