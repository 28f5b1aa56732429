"""Tiny scenes for the segment / regress commands: a 2-band raster with three classes in vertical stripes
(band 1 tells them apart), their polygons, and helpers to place polygons by pixel."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal

from data_fixtures import ORIGIN, PIXEL, UTM, pixel_square_utm, write_geojson, write_raster

CLASSES = ("alpha", "beta", "gamma")


def stripes(size: int = 48, seed: int = 0, bands: int = 2) -> np.ndarray:
    """(bands, size, size) float32: band 1 is 0 / 5 / 10 (+ noise) in three vertical stripes, the others noise."""
    rng = np.random.default_rng(seed)
    level = np.repeat([0.0, 5.0, 10.0], -(-size // 3))[:size][None, :].repeat(size, axis=0)
    data = [level + rng.normal(0, 1.0, (size, size))] + [rng.normal(0, 1.0, (size, size)) for _ in range(bands - 1)]
    return np.stack(data).astype(np.float32)


def named_raster(path: Path, data: np.ndarray, names: Sequence[str] = ("red", "nir"), **kwargs) -> Path:
    write_raster(path, data, **kwargs)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for i, name in enumerate(names[:ds.RasterCount], start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    return path


def stripe_polygons(path: Path, size: int = 48, origin_px: tuple[int, int] = (0, 0),
                    values: Sequence[object] = CLASSES, extra: Optional[list[tuple[tuple[int, int, int, int], object]]]
                    = None, field: str = "class") -> Path:
    """One polygon per stripe (pixel-edge rectangles of the test grid, in its UTM CRS), plus ``extra``
    ((col0, row0, col1, row1), value) polygons."""
    third = -(-size // 3)
    c0, r0 = origin_px
    rings = [pixel_square_utm(c0 + i * third, r0, c0 + min((i + 1) * third, size), r0 + size) for i in range(3)]
    vals = list(values)
    for box, value in extra or []:
        rings.append(pixel_square_utm(*box))
        vals.append(value)
    return write_geojson(path, rings, vals, field=field, epsg=UTM)


__all__ = ["CLASSES", "ORIGIN", "PIXEL", "UTM", "stripes", "named_raster", "stripe_polygons"]
