"""A threshold recalibrated on one scene: the score above which a given share of its valid pixels lies.

The bundled models' thresholds are fixed calibrations (the same score means the same on every scene); this is the
per-scene alternative Detect anomalies offers ("recalibrate on this scene"), for a scene unlike the model's.
The score raster is read in block rows, never whole; beyond ``max_values`` valid pixels a regular subsample of
rows is used (the quantile then has a relative error of about 1 / sqrt(max_values * share)).
"""
from __future__ import annotations

import math

import numpy as np
from osgeo import gdal

from ..engine.errors import CancelledError, InputError
from ..engine.progress import Cancelled, never_cancelled
from ..engine.raster import band_validity, open_raster
from ..engine.windows import block_windows
from ..engine.writer import BLOCK

gdal.UseExceptions()


def scene_threshold(score_path: str, share: float, is_cancelled: Cancelled | None = None,
                    max_values: int = 20_000_000) -> float:
    """The score at the (1 - ``share``) quantile of the valid pixels of band 1 of ``score_path``: at that
    threshold about ``share`` of them are flagged (``score >= threshold``). InputError for a share outside (0, 1)
    or a score raster without valid pixels."""
    if not 0.0 < share < 1.0 or not math.isfinite(share):
        raise InputError(f"The share of pixels to flag must be between 0 and 1 (0 and 100 %), not {share}.")
    cancelled = is_cancelled or never_cancelled
    ds = open_raster(score_path)
    band = ds.GetRasterBand(1)
    width, height = ds.RasterXSize, ds.RasterYSize
    step = max(1, math.ceil(width * height / max_values))
    parts = []
    for index, win in enumerate(block_windows(width, height, BLOCK)):
        if cancelled():
            raise CancelledError()
        if step > 1 and index % step:
            continue
        scores = band.ReadAsArray(win.x, win.y, win.w, win.h, buf_type=gdal.GDT_Float32)
        parts.append(scores[band_validity(band, scores, win)])
    values = np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
    if values.size == 0:
        raise InputError(f"'{score_path}' has no valid score to recalibrate the threshold on.")
    return float(np.quantile(values.astype(np.float64), 1.0 - share))
