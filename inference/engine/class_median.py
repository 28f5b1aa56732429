"""The median filter over a class map, in numpy: Deepness's "remove small segments" (OpenCV's medianBlur of the
class values, edges replicated). No GDAL here: median.py streams it over a staged raster, pipeline.run_array
applies it to an array.

The median of small integers is found by counting: for each class value v in ascending order, the number of
pixels <= v in every window (box sums of cumulative sums); the median is the first v reaching half the window.
Nodata pixels stay nodata and are left out of their neighbours' windows.
"""
from __future__ import annotations

import numpy as np

Pads = tuple[tuple[int, int], tuple[int, int]]


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


def median_block(values: np.ndarray, nodata: float, size: int, pads: Pads | None = None) -> np.ndarray:
    """The median filter of one band's class values (h, w) over a block: `values` holds the block and the context
    around it that the raster has (up to size // 2 pixels a side); `pads` is what is missing of that context at
    the raster's edges, replicated from the edge (None: the block is the whole raster). Nodata stays nodata."""
    r = size // 2
    pads = pads or ((r, r), (r, r))
    valid = values != nodata
    filtered = median_of_classes(np.pad(values, pads, mode="edge"), np.pad(valid, pads, mode="edge"), size)
    top, left = r - pads[0][0], r - pads[1][0]
    inner = valid[top:top + filtered.shape[0], left:left + filtered.shape[1]]
    return np.where(inner, filtered, values.dtype.type(nodata))
