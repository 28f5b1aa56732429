"""The unlabelled rasters the encoders are pretrained on (and those kept out), read from ../shared/data without
leaving .aux.xml files there, and cut into chips."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from deepstrata.inference.engine.georef import mean_pixel_size


@dataclass(frozen=True)
class Source:
    """A raster as (file, 1-based band) pairs relative to the shared data folder, one per model band, all on one
    grid; ``nodata`` overrides the files' own nodata (Landsat 8 Level-1 fills with 0 and declares nothing)."""

    name: str
    bands: tuple[tuple[str, int], ...]
    note: str = ""
    nodata: Optional[float] = None

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(path for path, _ in self.bands))


def single(name: str, path: str, note: str = "") -> Source:
    return Source(name, ((path, 1),), note)


def stack(name: str, path: str, bands: Sequence[int], note: str = "") -> Source:
    return Source(name, tuple((path, b) for b in bands), note)


TERRAIN = (
    single("cape_peninsula_srtm3s", "dem/cape_peninsula_srtm3s/SRTM.tif", "SRTM 3 arc-second (~90 m), geographic"),
    single("holyrood_lidar_dsm_2p5m", "dem/holyrood_lidar_dsm_2p5m/holyroodpark.tif", "lidar DSM, 2.5 m"),
    single("maungawhau_lidar_2m", "dem/maungawhau_lidar_2m/volcano2hires.tif", "lidar DEM, 2 m"),
    single("nc_piedmont_ned10m_geo", "dem/nc_piedmont_ned10m_geo/enogeo.tif", "NED 1/3 arc-second (~10 m), geographic"),
    single("rhine_30s", "dem/rhine_30s/rhine_elv0.tif", "30 arc-second (~1 km), geographic"),
    single("spain_bejar_25m", "dem/spain_bejar_25m/dem25.tif", "25 m"),
    single("texas_hydrosheds_3s", "dem/texas_hydrosheds_3s/dem.tif", "HydroSHEDS 3 arc-second (~90 m), geographic"),
    single("vermont_90m", "dem/vermont_90m/DEM.tif", "90 m"),
)
TERRAIN_HELD_OUT = (
    single("hamersley_wa", "geology/hamersley_wa/dtm_rp.tif", "the terrain transfer goal (geology map of Hamersley)"),
    single("minnesota_lidar", "dem/minnesota_lidar/dem.tif", "the landform model's lidar evaluation DEM"),
    single("bigtujunga", "dem/bigtujunga/bigtujunga.tif", "the landform and terrain-anomaly models' DEM"),
)
_L7 = "multispectral/landsat7_etm_northcarolina/lsat7_2000_{}.tif"
_L8 = "multispectral/landsat8_florida/l8_B{}.tif"
_L5 = "landcover/landsat5_amazon/LT52240631988227CUB02_B{}.TIF"
SPECTRAL = (
    Source("landsat7_etm_northcarolina", tuple((_L7.format(b), 1) for b in (10, 20, 30, 40, 50, 70)),
           "Landsat 7 ETM+ DN, bands 1-5, 7"),
    Source("landsat8_florida", tuple((_L8.format(b), 1) for b in range(2, 8)),
           "Landsat 8 OLI Level-1 DN, bands 2-7 (0 = fill)", nodata=0.0),
    stack("landsat8_sr_amazon", "multispectral/landsat8_sr_amazon/LC08_232066_20190727.tif", range(1, 7),
          "Landsat 8 OLI surface reflectance, bands 2-7"),
    stack("sentinel2_para", "landcover/landsat5_amazon/sen2_L2A_12band_epsg4326.tif", (2, 3, 4, 9, 11, 12),
          "Sentinel-2 L2A bands B2, B3, B4, B8A, B11, B12 (a patch about 750 km from the Landsat 5 scene)"),
)
SPECTRAL_HELD_OUT = (
    Source("landsat5_amazon", tuple((_L5.format(b), 1) for b in (1, 2, 3, 4, 5, 7)),
           "Landsat 5 TM DN bands 1-5, 7: the spectral transfer goal (reconstruction figure only)"),
)
SPECTRAL_KEPT_OUT = (  # neither pretrained on nor scored: (path, why)
    ("landcover/landsat5_amazon/trainingPolygons_lsat_epsg32622.geojson", "the spectral transfer goal's labels"),
    ("landcover/landsat5_amazon/LT52240631988227CUB02_B6.TIF", "the goal scene's thermal band"),
    ("landcover/landsat5_amazon/LT5_B1-B7_stack.vrt", "the goal scene's stack"),
    ("landcover/landsat5_amazon/srtm_lsat_epsg32622.tif", "the SRTM of the goal scene"),
    ("multispectral/sentinel2_virginia", "20 m bands B05-B07, B8A, B11, B12 only: no blue, green or red at 20 m"),
)


@contextmanager
def no_aux_files() -> Iterator[None]:
    """GDAL_PAM_ENABLED=NO while reading the shared (read-only) data, so GDAL writes no .aux.xml next to it; the
    option is process-wide, so the previous value comes back afterwards."""
    from osgeo import gdal

    before = gdal.GetConfigOption("GDAL_PAM_ENABLED")
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")
    try:
        yield
    finally:
        gdal.SetConfigOption("GDAL_PAM_ENABLED", before)


def read_source(source: Source, data: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """(B, H, W) float32, NaN wherever any band is invalid (nodata or not finite), and the pixel size in metres."""
    from osgeo import gdal

    bands, grid = [], None
    size_m = float("nan")
    for path, index in source.bands:
        with no_aux_files():
            ds = gdal.OpenEx(os.fspath(Path(data) / path), gdal.OF_RASTER | gdal.OF_READONLY)
            if ds is None:
                raise FileNotFoundError(f"cannot open {Path(data) / path}")
            band = ds.GetRasterBand(index)
            array = band.ReadAsArray().astype(np.float32)
            nodata = source.nodata if source.nodata is not None else band.GetNoDataValue()
            shape = (ds.RasterYSize, ds.RasterXSize)
            size_m = mean_pixel_size(ds) or float("nan")  # the engine's rule (ellipsoidal when geographic)
            band = ds = None  # closed while no .aux.xml can be written
        if nodata is not None:
            array[array == np.float32(nodata)] = np.nan
        if grid is not None and shape != grid:
            raise ValueError(f"{source.name}: {path} is {shape}, not {grid} like the other bands")
        grid = shape
        bands.append(array)
    image = np.stack(bands)
    image[:, ~np.isfinite(image).all(axis=0)] = np.nan
    return image, size_m


def pool(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` cells (NaN if any of them is), the remainder rows and columns dropped."""
    if factor == 1:
        return image
    b, h, w = image.shape
    h, w = h // factor * factor, w // factor * factor
    return image[:, :h, :w].reshape(b, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def zscore(image: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    """Each band standardised by its mean and standard deviation over the raster's valid pixels (NaN kept)."""
    valid = np.isfinite(image).all(axis=0)
    mean = [float(band[valid].astype(np.float64).mean()) for band in image]
    std = [max(float(band[valid].astype(np.float64).std()), 1e-6) for band in image]
    out = (image - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    return out.astype(np.float32), mean, std


def cut_chips(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(N, B, size, size) chips on a regular grid, only those without an invalid pixel."""
    b, h, w = image.shape
    chips = [image[:, y:y + size, x:x + size] for y in range(0, h - size + 1, stride)
             for x in range(0, w - size + 1, stride)]
    kept = [c for c in chips if np.isfinite(c).all()]
    return np.stack(kept).astype(np.float32) if kept else np.empty((0, b, size, size), np.float32)


def sample(chips: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(chips) <= limit:
        return chips
    return chips[np.sort(rng.choice(len(chips), limit, replace=False))]
