"""Per-pixel features for the random-forest baseline: for each band its value, the value minus its local mean at a
few radii (relief, for a DEM) and its gradient magnitude (slope, for a DEM), in the raster's own units."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

RADII = (2, 5, 10)


def feature_names(bands: list[str], radii: tuple[int, ...] = RADII) -> list[str]:
    names = []
    for band in bands:
        names += [band] + [f"{band} - mean r{r}" for r in radii] + [f"|grad {band}|"]
    return names


@torch.no_grad()
def pixel_features(image: np.ndarray, radii: tuple[int, ...] = RADII) -> np.ndarray:
    """(F, H, W) float32 features of a (C, H, W) image; invalid pixels (NaN) are filled with the band mean first,
    so their neighbours stay defined (the pixels themselves are never scored)."""
    filled = np.array(image, dtype=np.float32, copy=True)
    for band in filled:
        finite = np.isfinite(band)
        band[~finite] = float(band[finite].mean()) if finite.any() else 0.0
    z = torch.from_numpy(filled)[:, None]                     # (C, 1, H, W)
    out = []
    for c in range(z.shape[0]):
        x = z[c:c + 1]
        out.append(x[0, 0])
        for r in radii:
            mean = F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)
            out.append((x - mean)[0, 0])
        gy, gx = torch.gradient(x[0, 0]) if min(x.shape[-2:]) > 1 else (x[0, 0] * 0, x[0, 0] * 0)
        out.append(torch.sqrt(gx ** 2 + gy ** 2))
    return torch.stack(out).numpy().astype(np.float32)
