"""The DEMs the terrain models learn from and are judged on, and the split between them (fixed before training).

Every DEM is a real one nobody here made (training/datasets/dems/*/PROVENANCE.txt; losslessly recompressed
copies of ../shared/data/dem). Where no native DEM of a resolution class exists, one is built by averaging a
finer DEM (``factor``): that is said in its name. The unseen DEMs are never used to train, tune or calibrate:
they are looked at only by the reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

ROOT = Path(__file__).resolve().parent / "datasets"


@dataclass(frozen=True)
class DemEntry:
    name: str
    path: str  # relative to the repository root
    role: str  # "train", "unseen" or "dsm" (a surface model: buildings and trees, not terrain)
    relief: str
    factor: int = 1  # >1: averaged over factor x factor cells (a coarser resolution class built from this DEM)

    @property
    def label(self) -> str:
        return self.name if self.factor == 1 else f"{self.name} (mean x{self.factor})"


def _dem(folder: str) -> str:
    return f"training/datasets/dems/{folder}/dem.tif"


DEMS: tuple[DemEntry, ...] = (
    # training: projected CRSs, square cells
    DemEntry("bigtujunga_30m", "training/datasets/srtm_bigtujunga/bigtujunga.tif", "train",
             "steep mountains (San Gabriel, California)"),
    DemEntry("bigtujunga_30m", "training/datasets/srtm_bigtujunga/bigtujunga.tif", "train",
             "steep mountains (San Gabriel, California)", factor=4),
    DemEntry("spain_bejar_25m", _dem("spain_bejar_25m"), "train", "granite mountains and a plateau (Bejar, Spain)"),
    DemEntry("spain_bejar_25m", _dem("spain_bejar_25m"), "train", "granite mountains and a plateau (Bejar, Spain)",
             factor=4),
    DemEntry("maungawhau_2m", _dem("maungawhau_lidar_2m"), "train", "volcanic cone in a city (Auckland, lidar)"),
    DemEntry("maungawhau_2m", _dem("maungawhau_lidar_2m"), "train", "volcanic cone in a city (Auckland, lidar)",
             factor=4),
    DemEntry("vermont_90m", _dem("vermont_90m"), "train", "glaciated hills and valleys (Vermont)"),
    # unseen: other regions, relief, resolutions and CRSs (three geographic)
    DemEntry("minnesota_1m", "training/datasets/minnesota_lidar/dem.tif", "unseen",
             "gentle glacial kettles and moraines (Minnesota, lidar)"),
    DemEntry("nc_piedmont_10m", _dem("nc_piedmont_ned10m_geo"), "unseen",
             "rolling piedmont hills (North Carolina, NED, EPSG:4269)"),
    DemEntry("cape_peninsula_90m", _dem("cape_peninsula_srtm3s"), "unseen",
             "coastal mountains and a sandy plain (Cape Peninsula, SRTM, EPSG:4326)"),
    DemEntry("texas_90m", _dem("texas_hydrosheds_3s"), "unseen", "plains cut by canyons (Texas, HydroSHEDS, EPSG:4326)"),
    DemEntry("cape_peninsula_90m", _dem("cape_peninsula_srtm3s"), "unseen",
             "coastal mountains and a sandy plain (Cape Peninsula, SRTM, EPSG:4326)", factor=4),
    DemEntry("rhine_1km", _dem("rhine_30s"), "unseen", "Alps to the North Sea plain (Rhine basin, 30 arc-seconds, "
             "EPSG:4326)"),
    DemEntry("holyrood_dsm_2.5m", _dem("holyrood_lidar_dsm_2p5m"), "dsm",
             "a city park's hill with buildings and trees (Edinburgh, lidar DSM)"),
)


def entries(role: str) -> list[DemEntry]:
    return [d for d in DEMS if d.role == role]


def materialise(entry: DemEntry, folder: Path) -> str:
    """The DEM file of `entry`: the file itself, or its average over factor x factor cells written to `folder`."""
    if entry.factor == 1:
        return entry.path
    src = gdal.Open(entry.path)
    gt = src.GetGeoTransform()
    out = folder / f"{entry.name}_x{entry.factor}.tif"
    if not out.exists():
        gdal.Warp(str(out), src, xRes=abs(gt[1]) * entry.factor, yRes=abs(gt[5]) * entry.factor,
                  resampleAlg="average", outputType=gdal.GDT_Float32, dstNodata=-9999.0,
                  creationOptions=["COMPRESS=DEFLATE", "TILED=YES"])
    src = None
    return str(out)


def elevation(path: str | Path) -> np.ndarray:
    """Band 1 of a DEM as float32 metres, NaN where its mask says nodata (any CRS)."""
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    z = band.ReadAsArray().astype(np.float32)
    z[band.GetMaskBand().ReadAsArray() == 0] = np.nan
    ds = None
    return z


def write_with_holes(path: str | Path, holes: np.ndarray, out: str | Path) -> str:
    """A Float32 copy of the DEM at `path` (same grid and CRS) with the cells of `holes` made nodata (-9999)."""
    z = elevation(path)
    z[holes] = np.nan
    src = gdal.Open(str(path))
    ds = gdal.GetDriverByName("GTiff").Create(str(out), z.shape[1], z.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    src = None
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(-9999.0)
    band.WriteArray(np.where(np.isfinite(z), z, -9999.0).astype(np.float32))
    ds = None
    return str(out)
