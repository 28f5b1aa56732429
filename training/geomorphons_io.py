"""GeoTIFF in and out for :mod:`training.geomorphons` (GDAL), kept apart so the algorithm needs numpy only."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from osgeo import gdal

from deepstrata.inference.engine.card import ClassInfo
from deepstrata.inference.engine.style import paletted_qml
from deepstrata.inference.engine.staging import Staging
from deepstrata.inference.engine.writer import RasterTarget, RasterWriter

from .geomorphons import CLASSES, NODATA, geomorphons

gdal.UseExceptions()


@dataclass(frozen=True)
class Dem:
    elevation: np.ndarray       # float64, NaN at nodata
    cell_size: float            # metres
    geotransform: tuple[float, ...]
    projection: str             # WKT


def read_dem(path: str | Path) -> Dem:
    """Band 1 of a DEM, nodata (value, mask band or alpha) as NaN; ValueError unless its cells are square metres."""
    dataset = gdal.Open(str(path), gdal.GA_ReadOnly)
    gt = dataset.GetGeoTransform()
    srs = dataset.GetSpatialRef()
    if srs is not None and srs.IsGeographic():
        raise ValueError(f"{path} is in geographic coordinates: reproject it to a metric CRS (gdalwarp -t_srs)")
    if gt[2] or gt[4] or not math.isclose(abs(gt[1]), abs(gt[5]), rel_tol=1e-6):
        raise ValueError(f"{path} has non-square or rotated cells {gt[1]} x {gt[5]}: resample it (gdalwarp -tr)")
    band = dataset.GetRasterBand(1)
    elevation = band.ReadAsArray().astype(np.float64)
    valid = band.GetMaskBand().ReadAsArray() > 0  # covers the nodata value, mask bands and alpha
    elevation[~valid] = np.nan
    return Dem(elevation, abs(gt[1]), tuple(gt), dataset.GetProjection())


def write_forms(dem_path: str | Path, output: str | Path, search_radius_m: float, flat_deg: float = 1.0,
                 skip_cells: int = 0) -> np.ndarray:
    """Compute a DEM file's geomorphons and write them with the plugin's own class-raster writer.

    The file gets what the plugin's outputs get: a colour table, class names, a QML style, and an atomic write.
    """
    dem = read_dem(dem_path)
    forms = geomorphons(dem.elevation, dem.cell_size, search_radius_m, flat_deg, skip_cells=skip_cells)
    classes = [ClassInfo(value, name, colour) for value, name, colour in CLASSES]
    target = RasterTarget(str(output), np.dtype(np.uint8), NODATA, ["geomorphon"], [classes])
    with Staging() as stage, RasterWriter(stage, target, forms.shape[1], forms.shape[0], dem.geotransform,
                                          dem.projection) as writer:
        writer.write(0, 0, forms[None])
        writer.style_xml = paletted_qml(classes)
    return forms


def write_dem(path: Path, z: np.ndarray, cell: float, like: Dem) -> Path:
    """Float32 elevations (NaN as nodata -9999) on square ``cell`` m cells from ``like``'s origin and CRS."""
    gt = like.geotransform
    ds = gdal.GetDriverByName("GTiff").Create(str(path), z.shape[1], z.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((gt[0], cell, 0.0, gt[3], 0.0, -cell))
    ds.SetProjection(like.projection)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(-9999.0)
    band.WriteArray(np.where(np.isfinite(z), z, -9999.0).astype(np.float32))
    ds = None
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training geomorphons DEM OUT --radius M``: write a DEM's geomorphons as a GeoTIFF."""
    parser = argparse.ArgumentParser(prog="python -m training geomorphons",
                                     description="Write the geomorphons of a DEM as a GeoTIFF.")
    parser.add_argument("dem", help="input DEM (one band, metres, projected CRS with square cells)")
    parser.add_argument("output", help="output GeoTIFF: Byte classes 1..10 with a colour table, nodata 0")
    parser.add_argument("--radius", type=float, required=True, help="search radius in metres")
    parser.add_argument("--flat", type=float, default=1.0, help="flatness threshold in degrees (default 1)")
    parser.add_argument("--skip", type=int, default=0, help="cells skipped at the start of each line")
    args = parser.parse_args(argv)
    try:
        write_forms(args.dem, args.output, args.radius, args.flat, args.skip)
    except (ValueError, RuntimeError) as error:
        parser.exit(1, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
