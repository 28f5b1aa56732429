"""Where an image's grid is: geotransform, size and CRS, and opening rasters with a clear error."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

from osgeo import gdal, osr

from .errors import DataError

gdal.UseExceptions()
osr.UseExceptions()

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Grid:
    """The pixel grid of an image: labels are brought onto exactly this grid."""

    width: int
    height: int
    geotransform: tuple[float, float, float, float, float, float]
    wkt: str

    def srs(self) -> osr.SpatialReference:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(self.wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return srs

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of a north-up grid."""
        x0, dx, _, y0, _, dy = self.geotransform
        xs = (x0, x0 + dx * self.width)
        ys = (y0, y0 + dy * self.height)
        return min(xs), min(ys), max(xs), max(ys)


def open_raster(path: PathLike) -> gdal.Dataset:
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError as exc:
        raise DataError(f"cannot open raster {path}: {exc}. Give a GDAL-readable raster file.") from exc
    if ds is None:
        raise DataError(f"cannot open raster {path}. Give a GDAL-readable raster file.")
    return ds


def grid_of(ds: gdal.Dataset) -> Grid:
    gt = tuple(float(v) for v in ds.GetGeoTransform())
    if gt[2] != 0.0 or gt[4] != 0.0:
        raise DataError(f"{ds.GetDescription()} is rotated or sheared; warp it to a north-up grid first.")
    return Grid(ds.RasterXSize, ds.RasterYSize, gt, ds.GetProjection())  # type: ignore[arg-type]
