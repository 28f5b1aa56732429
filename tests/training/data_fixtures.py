"""Small seeded rasters and GeoJSON files for the training data pipeline's tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

UTM = 32622                                   # the Landsat example's CRS (negative northings)
ORIGIN = (600000.0, -400000.0)
PIXEL = 30.0
_TYPES = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.uint16): gdal.GDT_UInt16,
          np.dtype(np.int16): gdal.GDT_Int16, np.dtype(np.float32): gdal.GDT_Float32}


def write_raster(path: Path, data: np.ndarray, epsg: int = UTM, origin: tuple[float, float] = ORIGIN,
                 pixel: float = PIXEL, nodata: Optional[float] = None) -> Path:
    """A north-up GeoTIFF of (C, H, W) or (H, W) ``data``."""
    bands = data[None] if data.ndim == 2 else data
    ds = gdal.GetDriverByName("GTiff").Create(str(path), bands.shape[2], bands.shape[1], bands.shape[0],
                                              _TYPES[bands.dtype])
    ds.SetGeoTransform((origin[0], pixel, 0.0, origin[1], 0.0, -pixel))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for i, band in enumerate(bands, start=1):
        if nodata is not None:
            ds.GetRasterBand(i).SetNoDataValue(nodata)
        ds.GetRasterBand(i).WriteArray(band)
    ds = None
    return path


def pixel_square_lonlat(col0: int, row0: int, col1: int, row1: int) -> list[list[float]]:
    """The ring (lon, lat) of the pixel-edge rectangle [col0, col1) x [row0, row1) of the UTM test grid."""
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(UTM)
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs = osr.CoordinateTransformation(utm, wgs)
    corners = [(col0, row0), (col1, row0), (col1, row1), (col0, row1), (col0, row0)]
    ring = []
    for c, r in corners:
        lon, lat, _ = to_wgs.TransformPoint(ORIGIN[0] + c * PIXEL, ORIGIN[1] - r * PIXEL)
        ring.append([lon, lat])
    return ring


def write_geojson(path: Path, rings: Sequence[list[list[float]]], values: Sequence[object],
                  field: str = "class", epsg: Optional[int] = None) -> Path:
    """Polygons (one ring each) with ``field`` = value; no ``crs`` member (WGS 84) unless ``epsg``."""
    collection: dict = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {field: v}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for ring, v in zip(rings, values)]}
    if epsg is not None:
        collection["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    path.write_text(json.dumps(collection))
    return path


def pixel_square_utm(col0: int, row0: int, col1: int, row1: int) -> list[list[float]]:
    """The same rectangle as :func:`pixel_square_lonlat`, in the grid's own UTM coordinates."""
    xs = (ORIGIN[0] + col0 * PIXEL, ORIGIN[0] + col1 * PIXEL)
    ys = (ORIGIN[1] - row0 * PIXEL, ORIGIN[1] - row1 * PIXEL)
    return [[xs[0], ys[0]], [xs[1], ys[0]], [xs[1], ys[1]], [xs[0], ys[1]], [xs[0], ys[0]]]


def position_image(height: int, width: int, bands: int = 2) -> np.ndarray:
    """(bands, H, W) float32 encoding band and position, 100000 b + 1000 row + col (rows < 100, cols < 1000)."""
    b, r, c = np.meshgrid(np.arange(bands), np.arange(height), np.arange(width), indexing="ij")
    return (100000 * b + 1000 * r + c).astype(np.float32)
