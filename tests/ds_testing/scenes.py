"""The real multispectral scenes of ../shared/data the sensor tests read, and helpers to build test stacks from
them (tests/core/test_sensors*.py)."""
from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

gdal.UseExceptions()

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
L5 = SHARED / "landcover" / "landsat5_amazon"
L5_STACK = L5 / "LT5_B1-B7_stack.vrt"
L7 = SHARED / "multispectral" / "landsat7_etm_northcarolina" / "lsat7_2000_B1-B5-B7_stack.vrt"
L8 = SHARED / "multispectral" / "landsat8_florida"
L8_STACK = L8 / "l8_B1-B7_stack.vrt"
L8_SR = SHARED / "multispectral" / "landsat8_sr_amazon" / "LC08_232066_20190727.tif"
S2_L1C = SHARED / "multispectral" / "sentinel2_virginia" / "s2_20m_B05-B06-B07-B8A-B11-B12_stack.vrt"
S2_L2A = L5 / "sen2_L2A_12band_epsg4326.tif"
NEEDS_SHARED = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared data folder is not at {SHARED}")
REFLECTANCE = [{"name": n, "unit": "reflectance"} for n in ("blue", "green", "red", "nir", "swir1", "swir2")]


def pixel(path: Path, band: int, x: int = 40, y: int = 30) -> float:
    ds = gdal.Open(str(path))
    return float(ds.GetRasterBand(band).ReadAsArray(x, y, 1, 1)[0, 0])


def build_stack(path: Path, sources: list[Path], window: tuple[int, int, int, int] | None = None, dtype: int | None = None,
           scale: float = 1.0, add: float = 0.0, descriptions: list[str] | None = None) -> Path:
    """A GeoTIFF of the real bands `sources` (a window of them), values * scale + add, in `dtype`."""
    arrays, ds = [], None
    for src in sources:
        ds = gdal.Open(str(src))
        x, y, w, h = window or (0, 0, ds.RasterXSize, ds.RasterYSize)
        arrays.append(ds.GetRasterBand(1).ReadAsArray(x, y, w, h).astype(np.float64) * scale + add)
    assert ds is not None
    x, y, w, h = window or (0, 0, ds.RasterXSize, ds.RasterYSize)
    gt = ds.GetGeoTransform()
    out = gdal.GetDriverByName("GTiff").Create(str(path), w, h, len(arrays), dtype or gdal.GDT_Float32)
    out.SetGeoTransform((gt[0] + x * gt[1], gt[1], 0, gt[3] + y * gt[5], 0, gt[5]))
    out.SetProjection(ds.GetProjection())
    for i, array in enumerate(arrays):
        out.GetRasterBand(i + 1).WriteArray(array)
        if descriptions:
            out.GetRasterBand(i + 1).SetDescription(descriptions[i])
    out = None
    return path


def toa(gain: float, bias: float, esun: float, date: datetime.date, elevation: float, value: float) -> float:
    """Chander et al. (2009) eq. 3, computed by hand."""
    doy = date.timetuple().tm_yday
    d = 1 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))
    return math.pi * (gain * value + bias) * d * d / (esun * math.sin(math.radians(elevation)))
