"""The DEMs the terrain anomaly detector is trained, calibrated and tested on, and the two baselines it must beat.

Split (shared with the landform work): TRAINING/calibration DEMs and UNSEEN DEMs (never used to tune anything);
the Holyrood lidar DSM (buildings, trees) is a DSM test case, not terrain. All read from ../shared/data/dem with
nodata as NaN and the ground cell size in metres at the raster's centre (geographic grids included).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal
from scipy import ndimage, stats

from deepstrata.inference.engine.georef import ground_pixel_size

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dem"
DATASETS = Path(__file__).resolve().parent / "datasets"


@dataclass(frozen=True)
class DemSource:
    name: str
    path: str  # relative to SHARED
    copy: str  # the repository's copy, relative to training/datasets (read first: a fresh clone has no ../shared)
    split: str  # "training", "unseen" or "dsm"
    about: str


SOURCES = (
    DemSource("bigtujunga", "bigtujunga/bigtujunga.tif", "srtm_bigtujunga/bigtujunga.tif", "training", "30 m SRTM, steep mountains (EPSG:32611)"),
    DemSource("spain_bejar_25m", "spain_bejar_25m/dem25.tif", "dems/spain_bejar_25m/dem.tif", "training", "25 m, sierra and plains (EPSG:23030)"),
    DemSource("maungawhau_lidar_2m", "maungawhau_lidar_2m/volcano2hires.tif", "dems/maungawhau_lidar_2m/dem.tif", "training",
              "2 m lidar, volcanic cone and crater, city (NZGD49)"),
    DemSource("vermont_90m", "vermont_90m/DEM.tif", "dems/vermont_90m/dem.tif", "training", "90 m, rounded glaciated hills (EPSG:26918)"),
    # Listed for training in the task's split, but kept out of fitting and calibration here (training/dems.py
    # holds it out for the landform models): one more unseen DEM.
    DemSource("texas_hydrosheds_3s", "texas_hydrosheds_3s/dem.tif", "dems/texas_hydrosheds_3s/dem.tif", "unseen",
              "3 arc-second HydroSHEDS, plains cut by canyons (geographic)"),
    DemSource("minnesota_lidar", "minnesota_lidar/dem.tif", "minnesota_lidar/dem.tif", "unseen", "1 m lidar, low glacial relief (EPSG:26915)"),
    DemSource("nc_piedmont_ned10m_geo", "nc_piedmont_ned10m_geo/enogeo.tif", "dems/nc_piedmont_ned10m_geo/dem.tif", "unseen",
              "1/3 arc-second NED, rolling piedmont (geographic)"),
    DemSource("cape_peninsula_srtm3s", "cape_peninsula_srtm3s/SRTM.tif", "dems/cape_peninsula_srtm3s/dem.tif", "unseen",
              "3 arc-second SRTM, mountains, coast, sea as nodata (geographic)"),
    DemSource("rhine_30s", "rhine_30s/rhine_elv0.tif", "dems/rhine_30s/dem.tif", "unseen",
              "30 arc-second (about 1 km), Alps to lowlands, nodata outside the basin (geographic)"),
    DemSource("holyrood_lidar_dsm_2p5m", "holyrood_lidar_dsm_2p5m/holyroodpark.tif", "dems/holyrood_lidar_dsm_2p5m/dem.tif", "dsm",
              "2.5 m lidar DSM (buildings, trees) of Holyrood Park, Edinburgh (EPSG:27700)"),
)
BY_NAME = {s.name: s for s in SOURCES}


@dataclass
class LoadedDem:
    name: str
    path: str
    elevation: np.ndarray  # float64, NaN at nodata
    cell: tuple[float, float]  # ground metres along x and y at the centre


def path_of(name: str) -> str:
    """A DEM's file: the repository's copy, else ../shared/data/dem; a name not in SOURCES is a path."""
    if name not in BY_NAME:
        return name
    source = BY_NAME[name]
    copy = DATASETS / source.copy
    return str(copy if copy.exists() else SHARED / source.path)


def aggregate(z: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each factor x factor block of valid cells (NaN where a block has none); edges cropped."""
    h, w = (z.shape[0] // factor) * factor, (z.shape[1] // factor) * factor
    blocks = z[:h, :w].reshape(h // factor, factor, w // factor, factor)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(1, 3))
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def load(name: str) -> LoadedDem:
    """A DEM by name (or path); ``name@F`` is that DEM averaged over F x F cells (a coarser resolution class
    built from a finer DEM, for training only)."""
    if "@" in name:
        base, factor = name.rsplit("@", 1)
        dem = load(base)
        f = int(factor)
        return LoadedDem(f"{dem.name}@{f}", dem.path, aggregate(dem.elevation, f), (dem.cell[0] * f, dem.cell[1] * f))
    os.environ.setdefault("GDAL_PAM_ENABLED", "NO")
    path = path_of(name)
    ds = gdal.Open(path, gdal.GA_ReadOnly)
    band = ds.GetRasterBand(1)
    z = band.ReadAsArray().astype(np.float64)
    z[band.GetMaskBand().ReadAsArray() == 0] = np.nan
    z[~np.isfinite(z)] = np.nan
    cell = ground_pixel_size(ds)
    if cell is None:
        raise ValueError(f"{path} has no CRS: its cell size in metres is unknown")
    return LoadedDem(BY_NAME[name].name if name in BY_NAME else Path(name).stem, path, z, cell)


def box_mean(z: np.ndarray, rx: int, ry: int) -> np.ndarray:
    """NaN-aware mean over a (2ry+1) x (2rx+1) box (valid cells only)."""
    valid = np.isfinite(z)
    z0 = np.where(valid, z, 0.0)
    size = (2 * ry + 1, 2 * rx + 1)
    s = ndimage.uniform_filter(z0, size, mode="constant")
    n = ndimage.uniform_filter(valid.astype(np.float64), size, mode="constant")
    return s / np.maximum(n, 1e-9)


def radius_cells(cell: tuple[float, float], search_m: float) -> tuple[int, int]:
    return max(1, int(round(search_m / cell[0]))), max(1, int(round(search_m / cell[1])))


def relative_relief(z: np.ndarray, cell: tuple[float, float], search_m: float) -> np.ndarray:
    """Baseline 1: |z - local mean| over the search box."""
    rx, ry = radius_cells(cell, search_m)
    return np.abs(z - box_mean(z, rx, ry))


def robust_z(z: np.ndarray, cell: tuple[float, float], search_m: float) -> np.ndarray:
    """Baseline 2: |z - local median| / (1.4826 x local median of that absolute residual) over the search box."""
    rx, ry = radius_cells(cell, search_m)
    filled = np.where(np.isfinite(z), z, box_mean(z, rx, ry))
    filled = np.where(np.isfinite(filled), filled, np.nanmean(z))
    size = (2 * ry + 1, 2 * rx + 1)
    residual = np.abs(filled - ndimage.median_filter(filled, size, mode="nearest"))
    mad = ndimage.median_filter(residual, size, mode="nearest")
    return residual / (1.4826 * mad + 1e-6)


def pixel_auc(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC of scores on positive vs negative cells (ties count half), by ranks."""
    pos, neg = scores[positive], scores[negative]
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
