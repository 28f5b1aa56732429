"""PNG previews for reports: class maps in their card colours, optionally with the outline of a mask (the
held-out blocks), so a reader sees at a glance what a model produced."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

NODATA_RGB = (255, 255, 255)
OUTLINE_RGB = (0, 0, 0)


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def class_rgb(classes: np.ndarray, palette: Sequence[tuple[int, str, str]]) -> np.ndarray:
    """(H, W, 3) uint8: each (value, name, "#rrggbb") class in its colour, anything else white."""
    lut = np.full((max(v for v, _, _ in palette) + 1, 3), NODATA_RGB, dtype=np.uint8)
    for value, _, colour in palette:
        lut[value] = _rgb(colour)
    ids = np.asarray(classes, dtype=np.int64)
    inside = (ids >= 0) & (ids < len(lut))
    out = np.full((*ids.shape, 3), NODATA_RGB, dtype=np.uint8)
    out[inside] = lut[ids[inside]]
    return out


def edges(mask: np.ndarray) -> np.ndarray:
    """The cells of ``mask`` that touch a cell outside it (4-neighbourhood)."""
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return m & ~inner


def write_class_png(classes: np.ndarray, path: str | os.PathLike[str], palette: Sequence[tuple[int, str, str]],
                    outline: Optional[np.ndarray] = None) -> Path:
    rgb = class_rgb(classes, palette)
    if outline is not None:
        rgb[edges(outline)] = OUTLINE_RGB
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(target, format="PNG", optimize=True)
    return target


def hillshade(dem: np.ndarray, cell_x: float, cell_y: float, azimuth: float = 315.0,
              altitude: float = 45.0) -> np.ndarray:
    """(H, W) float in [0, 1]: the DEM lit from `azimuth` (degrees clockwise from north) at `altitude`; NaN-safe."""
    z = np.where(np.isfinite(dem), dem, np.nanmean(dem))
    dzdy, dzdx = np.gradient(z, cell_y, cell_x)  # rows run south
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(-dzdx, dzdy)
    az, alt = np.radians(360.0 - azimuth + 90.0), np.radians(altitude)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0)


def write_classes_over_hillshade(classes: np.ndarray, dem: np.ndarray, cell: tuple[float, float],
                                 path: str | os.PathLike[str], palette: Sequence[tuple[int, str, str]],
                                 width: int = 520, opacity: float = 0.6) -> Path:
    """A class map drawn over the DEM's hillshade, scaled to `width` px (nearest neighbour), nodata white."""
    rgb = class_rgb(classes, palette).astype(np.float64)
    shade = hillshade(dem, *cell)[..., None] * 255.0
    out = opacity * rgb + (1 - opacity) * shade
    out[classes == 0] = NODATA_RGB
    image = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    height = max(1, round(image.height * width / image.width))
    image = image.resize((width, height), Image.Resampling.NEAREST)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="PNG", optimize=True)
    return target
