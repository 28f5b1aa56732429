"""Six reflective bands shared by Landsat 8/9 OLI, Landsat 4/5 TM and Sentinel-2 MSI, and each sensor's raw
values brought to top-of-atmosphere (TOA) reflectance and to the geology model's input unit.

Common bands (:data:`BANDS`): blue, green, red, NIR, SWIR1, SWIR2 = OLI B2-B7 = TM B1-B5, B7 = MSI B02, B03,
B04, B8A, B11, B12.

The model's input unit is the Landsat 8/9 Level-1 digital number: ``DN = (rho' - ADD) / MULT`` with the
fixed OLI rescaling ``MULT = 2e-5``, ``ADD = -0.1`` (the same in every Collection 1 and 2 Level-1 product), where
``rho'`` is TOA reflectance without the sun-angle correction (``rho' = rho x sin(sun elevation)``). A raw
OLI band is therefore already in this unit; other sensors are converted by :func:`to_oli_dn`.

TM radiance becomes reflectance with ``rho = pi L d^2 / (ESUN sin(sun elevation))`` and the TM5 solar
irradiances of Chander, Markham & Helder (2009), Remote Sensing of Environment 113(5), 893-903.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date
from typing import Optional

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

PathLike = str | os.PathLike[str]
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
SENSOR_BANDS = {
    "oli": ("B2", "B3", "B4", "B5", "B6", "B7"),
    "tm": ("B1", "B2", "B3", "B4", "B5", "B7"),
    "msi": ("B02", "B03", "B04", "B8A", "B11", "B12"),
}
OLI_MULT, OLI_ADD = 2.0e-5, -0.1
TM_BANDS = (1, 2, 3, 4, 5, 7)
TM5_ESUN = (1983.0, 1796.0, 1536.0, 1031.0, 220.0, 83.44)  # W m-2 um-1, TM bands 1-5, 7 (Chander et al. 2009)


class SensorError(ValueError):
    """A scene's raster or metadata cannot be calibrated as asked."""


@dataclass(frozen=True)
class Scene:
    """A stored 6-band raster in :data:`BANDS` order and how to calibrate it.

    ``oli`` and ``tm`` need the scene's ``mtl`` file; ``msi`` values are reflectance x ``quantification``
    (+ ``offset``, the processing-baseline 04.00 offset of -1000 in DN), with no sun-angle information.
    """

    name: str
    path: str
    sensor: str
    mtl: Optional[str] = None
    quantification: float = 10000.0
    offset: float = 0.0


@dataclass
class Calibrated:
    """``reflectance``: (6, H, W) float32 TOA reflectance (sun-corrected where the sun is known), NaN invalid;
    ``model_input``: the same pixels in OLI Level-1 DN (see the module docstring), NaN invalid;
    ``sun_elevation``: the degrees that relate the two (None: the model input is sun-corrected reflectance)."""

    scene: Scene
    reflectance: np.ndarray
    model_input: np.ndarray
    geotransform: tuple[float, ...]
    projection: str
    sun_elevation: Optional[float] = None


def read_mtl(path: PathLike) -> dict[str, str]:
    """``KEY = VALUE`` pairs of a Landsat MTL file (quotes stripped; NUL padding and groups ignored)."""
    with open(path, "rb") as handle:
        text = handle.read().replace(b"\x00", b"").decode("ascii", errors="replace")
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() not in ("GROUP", "END_GROUP"):
            found[key.strip()] = value.strip().strip('"')
    if "SUN_ELEVATION" not in found:
        raise SensorError(f"{path} is not a Landsat MTL file: no SUN_ELEVATION.")
    return found


def _number(mtl: dict[str, str], key: str) -> float:
    if key not in mtl:
        raise SensorError(f"the MTL file has no {key}.")
    return float(mtl[key])


def earth_sun_distance(day: date) -> float:
    """Earth-sun distance in astronomical units on ``day`` (first-order approximation, within 0.1 %)."""
    doy = day.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def oli_reflectance(dn: np.ndarray, mtl: dict[str, str], bands: tuple[int, ...] = (2, 3, 4, 5, 6, 7)) -> np.ndarray:
    """(B, H, W) OLI digital numbers to sun-corrected TOA reflectance with the MTL's rescaling; DN 0 (fill) is NaN."""
    sine = math.sin(math.radians(_number(mtl, "SUN_ELEVATION")))
    out = np.empty(dn.shape, dtype=np.float64)
    for i, b in enumerate(bands):
        mult, add = _number(mtl, f"REFLECTANCE_MULT_BAND_{b}"), _number(mtl, f"REFLECTANCE_ADD_BAND_{b}")
        out[i] = (dn[i] * mult + add) / sine
    out[:, (dn == 0).any(axis=0)] = np.nan
    return out


def tm_reflectance(dn: np.ndarray, mtl: dict[str, str], bands: tuple[int, ...] = TM_BANDS) -> np.ndarray:
    """(6, H, W) TM digital numbers to sun-corrected TOA reflectance via radiance; DN 0 (fill) is NaN."""
    if tuple(bands) != TM_BANDS:
        raise SensorError(f"TM reflectance needs bands {TM_BANDS}, not {bands}.")
    sine = math.sin(math.radians(_number(mtl, "SUN_ELEVATION")))
    d = earth_sun_distance(date.fromisoformat(mtl.get("DATE_ACQUIRED", "")))
    out = np.empty(dn.shape, dtype=np.float64)
    for i, (b, esun) in enumerate(zip(bands, TM5_ESUN)):
        radiance = dn[i] * _number(mtl, f"RADIANCE_MULT_BAND_{b}") + _number(mtl, f"RADIANCE_ADD_BAND_{b}")
        out[i] = math.pi * radiance * d * d / (esun * sine)
    out[:, (dn == 0).any(axis=0)] = np.nan
    return out


def to_oli_dn(reflectance: np.ndarray, sun_elevation: Optional[float] = None) -> np.ndarray:
    """Reflectance to OLI Level-1 DN: without the sun-angle correction when ``sun_elevation`` (degrees) is
    given, as an OLI band would hold it; as is otherwise (Sentinel-2 reflectance is already sun-corrected)."""
    rho = np.asarray(reflectance, dtype=np.float64)
    if sun_elevation is not None:
        rho = rho * math.sin(math.radians(sun_elevation))
    return (rho - OLI_ADD) / OLI_MULT


def from_oli_dn(dn: np.ndarray) -> np.ndarray:
    """OLI Level-1 DN to TOA reflectance without the sun-angle correction (the inverse of :func:`to_oli_dn`)."""
    return np.asarray(dn, dtype=np.float64) * OLI_MULT + OLI_ADD


def read_bands(path: PathLike) -> tuple[np.ndarray, gdal.Dataset]:
    """(6, H, W) float64 of a 6-band raster, NaN where a band holds its nodata value or is not finite."""
    ds = gdal.Open(os.fspath(path))
    if ds.RasterCount != len(BANDS):
        raise SensorError(f"{path} has {ds.RasterCount} bands; a scene needs the 6 common bands {BANDS}.")
    array = ds.ReadAsArray().astype(np.float64)
    for i in range(ds.RasterCount):
        nodata = ds.GetRasterBand(i + 1).GetNoDataValue()
        if nodata is not None:
            array[:, array[i] == nodata] = np.nan
    array[:, ~np.isfinite(array).all(axis=0)] = np.nan
    return array, ds


def calibrate(scene: Scene) -> Calibrated:
    """The scene's TOA reflectance (for labelling) and its model input in OLI Level-1 DN."""
    raw, ds = read_bands(scene.path)
    if scene.sensor == "msi":
        reflectance, sun = (raw + scene.offset) / scene.quantification, None
    elif scene.sensor in ("oli", "tm"):
        if scene.mtl is None:
            raise SensorError(f"{scene.name}: a Landsat scene needs its MTL file.")
        mtl = read_mtl(scene.mtl)
        fill = np.isnan(raw)
        raw = np.where(fill, 0.0, raw)
        reflectance = oli_reflectance(raw, mtl) if scene.sensor == "oli" else tm_reflectance(raw, mtl)
        reflectance[:, fill.any(axis=0)] = np.nan
        sun = _number(mtl, "SUN_ELEVATION")
    else:
        raise SensorError(f"sensor is one of {sorted(SENSOR_BANDS)}, not {scene.sensor!r}.")
    model_input = raw if scene.sensor == "oli" else to_oli_dn(reflectance, sun)
    return Calibrated(scene, reflectance.astype(np.float32), model_input.astype(np.float32),
                      tuple(ds.GetGeoTransform()), ds.GetProjection(), sun)


def write_raster(path: PathLike, array: np.ndarray, like: Calibrated, names: tuple[str, ...],
                 nodata: float = -9999.0) -> str:
    """A (B, H, W) Float32 (or (H, W) Byte label) GeoTIFF on ``like``'s grid; NaN is written as ``nodata``."""
    array = np.asarray(array)
    stack = array[None] if array.ndim == 2 else array
    dtype = gdal.GDT_Byte if array.ndim == 2 else gdal.GDT_Float32
    ds = gdal.GetDriverByName("GTiff").Create(os.fspath(path), stack.shape[2], stack.shape[1], stack.shape[0], dtype)
    ds.SetGeoTransform(like.geotransform)
    ds.SetProjection(like.projection)
    for i, band in enumerate(stack):
        out = ds.GetRasterBand(i + 1)
        if array.ndim == 3:
            out.SetNoDataValue(nodata)
            band = np.where(np.isfinite(band), band, nodata)
        out.WriteArray(band)
        out.SetDescription(names[i] if i < len(names) else "")
    ds.FlushCache()
    ds = None
    return os.fspath(path)
