"""The median filter over a class map (class_median.py), streamed over a staged class raster before it is
committed: block by block, each with the context around it."""
from __future__ import annotations

import numpy as np
from osgeo import gdal

from .class_median import median_block
from .errors import CancelledError
from .progress import Cancelled, doing, never_cancelled
from .staging import Staging
from .windows import block_windows
from .writer import BLOCK, RasterTarget, RasterWriter

gdal.UseExceptions()
CHUNK = 8 * BLOCK  # columns filtered at once


def filter_raster(staging: Staging, target: RasterTarget, size: int, style: str | None,
                  is_cancelled: Cancelled | None = None) -> None:
    """Replace the staged class raster of `target` by its median filter of `size` (odd) pixels, every band."""
    doing(f"Smoothing the classes (median filter of {size} x {size} pixels)")
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
            bands = [median_block(src.GetRasterBand(b).ReadAsArray(x0, y0, x1 - x0, y1 - y0), target.nodata, size,
                                  pads) for b in range(1, src.RasterCount + 1)]
            writer.write(win.x, win.y, np.stack(bands).astype(target.dtype, copy=False))
            if win.x1 == width:
                src.FlushCache()
    src = None
