"""A median filter over a class map, streamed: Deepness's "remove small segments" (OpenCV's medianBlur of the
class values, edges replicated), applied to a staged class raster before it is committed.

The median of small integers is found by counting: for each class value v in ascending order, the number of
pixels <= v in every window (box sums of cumulative sums); the median is the first v reaching half the window.
Nodata pixels stay nodata and are left out of their neighbours' windows.
"""
from __future__ import annotations

import numpy as np
from osgeo import gdal

from .errors import CancelledError
from .progress import Cancelled, never_cancelled
from .staging import Staging
from .windows import block_windows
from .writer import BLOCK, RasterTarget, RasterWriter

gdal.UseExceptions()
CHUNK = 8 * BLOCK  # columns filtered at once


def _box_sums(values: np.ndarray, r: int) -> np.ndarray:
    """Sums over every (2r+1)-square window of `values` (already padded by r on each side)."""
    s = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.int32)
    np.cumsum(np.cumsum(values, axis=0, dtype=np.int32), axis=1, out=s[1:, 1:])
    k = 2 * r + 1
    return s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]


def median_of_classes(padded: np.ndarray, valid: np.ndarray, size: int) -> np.ndarray:
    """The median of each size x size window of the integer map `padded` (padded by size // 2 on each side),
    over valid pixels only; the result is the centre's shape. Pixels whose window holds no valid pixel keep 0."""
    r = size // 2
    counts = _box_sums(valid.astype(np.int32), r)
    half = (counts + 1) // 2  # the lower median where the count is even
    out = np.zeros(counts.shape, dtype=padded.dtype)
    open_ = counts > 0
    for value in np.unique(padded[valid]):
        below = _box_sums((valid & (padded <= value)).astype(np.int32), r)
        hit = open_ & (below >= half)
        out[hit] = value
        open_ &= ~hit
        if not open_.any():
            break
    return out


def filter_raster(staging: Staging, target: RasterTarget, size: int, style: str | None,
                  is_cancelled: Cancelled | None = None) -> None:
    """Replace the staged class raster of `target` by its median filter of `size` (odd) pixels, every band."""
    cancelled = is_cancelled or never_cancelled
    src = gdal.Open(staging.current(target.path))
    width, height, r = src.RasterXSize, src.RasterYSize, size // 2
    with RasterWriter(staging, target, width, height, src.GetGeoTransform(), src.GetProjection()) as writer:
        writer.style_xml = style
        for win in block_windows(width, height, BLOCK, CHUNK):
            if cancelled():
                raise CancelledError()
            y0, y1 = max(0, win.y - r), min(height, win.y1 + r)
            x0, x1 = max(0, win.x - r), min(width, win.x1 + r)
            pads = ((r - (win.y - y0), r - (y1 - win.y1)), (r - (win.x - x0), r - (x1 - win.x1)))
            bands = []
            for b in range(1, src.RasterCount + 1):
                values = src.GetRasterBand(b).ReadAsArray(x0, y0, x1 - x0, y1 - y0)
                valid = values != target.nodata
                filtered = median_of_classes(np.pad(values, pads, mode="edge"), np.pad(valid, pads, mode="edge"),
                                             size)
                inner = valid[win.y - y0:win.y - y0 + win.h, win.x - x0:win.x - x0 + win.w]
                bands.append(np.where(inner, filtered, values.dtype.type(target.nodata)))
            writer.write(win.x, win.y, np.stack(bands).astype(target.dtype, copy=False))
            if win.x1 == width:
                src.FlushCache()
    src = None
