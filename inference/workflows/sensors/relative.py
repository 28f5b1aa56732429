"""Scene-relative scaling, for scenes whose product cannot be known: each band's robust range (its 2nd and 98th
percentiles over the scene) is mapped linearly onto the range that band typically spans in top-of-atmosphere
reflectance over land (blue 0.06-0.20 ... SWIR2 0.02-0.30), so its darkest pixels get about the reflectance
of dark surfaces plus haze (a dark-object level) and its brightest about that of bright soil. Relative
contrasts within a band are kept; absolute levels and the balance between bands are an assumption."""
from __future__ import annotations

import numpy as np

from .products import Radiometry
from .scene import Scene

# (2nd, 98th percentile) of TOA reflectance over mixed land scenes, blue..SWIR2
TYPICAL = ((0.06, 0.20), (0.04, 0.20), (0.03, 0.24), (0.05, 0.45), (0.03, 0.40), (0.02, 0.30))


def scene_relative(scene: Scene, bands: list[int], why: str) -> Radiometry:
    levels = scene.percentiles(bands, (2, 98))
    mult, add = [], []
    rows = [[float(v) for v in row] for row in np.asarray(levels, dtype=np.float64)]
    for (low, high), (lo, hi) in zip(rows, TYPICAL):
        if not np.isfinite(low) or not np.isfinite(high):
            low, high = 0.0, 1.0
        elif high <= low:  # a constant band: its value is taken as the typical darkest
            high = low + max(abs(low), 1.0)
        m = (hi - lo) / (high - low)
        mult.append(float(f"{m:.6g}"))
        add.append(float(f"{lo - low * m:.6g}"))
    text = (f"scene-relative scaling: the product is not known ({why}), so each band's 2nd-98th percentiles "
            "were mapped onto typical top-of-atmosphere reflectance (blue 0.06-0.20, green 0.04-0.20, red "
            "0.03-0.24, NIR 0.05-0.45, SWIR1 0.03-0.40, SWIR2 0.02-0.30): relative contrasts hold, absolute "
            "values are assumed. For exact values choose the band preset of the product, give the Landsat MTL, "
            "or the Sentinel-2 offset")
    return Radiometry(mult, add, text, assumed=True)
