"""A raster's CRS and its ground pixel size: the one rule used everywhere (ellipsoidal for geographic CRSs)."""
from __future__ import annotations

import math

from osgeo import gdal, osr

from .windows import to_map

gdal.UseExceptions()


def srs_of(ds: gdal.Dataset) -> osr.SpatialReference | None:
    """The raster's CRS in x/y (longitude/latitude) axis order; None without one."""
    wkt = ds.GetProjection()
    if not wkt:
        return None
    srs = osr.SpatialReference(wkt=wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def ground_pixel_size(ds: gdal.Dataset) -> tuple[float, float] | None:
    """(x, y) ground pixel size in metres; None without a CRS.

    Projected CRSs: the pixel sides times the CRS's linear unit. Geographic CRSs: the lengths of a pixel's sides
    at the raster's centre latitude on the CRS's ellipsoid (radius of the parallel for x, meridional radius of
    curvature for y).
    """
    srs, gt = srs_of(ds), ds.GetGeoTransform()
    if srs is None:
        return None
    dx, dy = math.hypot(gt[1], gt[4]), math.hypot(gt[2], gt[5])
    if not srs.IsGeographic():
        units = srs.GetLinearUnits()
        return dx * units, dy * units
    _, lat_deg = to_map(gt, ds.RasterXSize / 2, ds.RasterYSize / 2)
    radians = srs.GetAngularUnits()
    lat = max(-math.pi / 2, min(math.pi / 2, lat_deg * radians))
    a, e2 = srs.GetSemiMajor(), 1.0 - (srs.GetSemiMinor() / srs.GetSemiMajor()) ** 2
    w = math.sqrt(1.0 - e2 * math.sin(lat) ** 2)
    prime_vertical, meridional = a / w, a * (1.0 - e2) / w ** 3
    return dx * radians * prime_vertical * math.cos(lat), dy * radians * meridional


def mean_pixel_size(ds: gdal.Dataset) -> float | None:
    """The mean of the two ground pixel sides in metres; None without a CRS."""
    sizes = ground_pixel_size(ds)
    return (sizes[0] + sizes[1]) / 2 if sizes else None
