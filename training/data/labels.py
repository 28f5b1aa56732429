"""Label sources brought onto an image's pixel grid: a label raster, or polygons with a class field.

Labels are class ids 1..65535 per pixel; 0 is unlabelled (ignored by the loss). A label raster on another grid
is resampled onto the image's with nearest neighbour; polygons (any OGR format) are reprojected into the
image's CRS when theirs differs and rasterised in memory, pixel centres inside a polygon getting its class.
Where polygons overlap, the later feature wins.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

import numpy as np
from osgeo import gdal, ogr, osr

from .errors import DataError
from .grid import Grid, PathLike, grid_of, open_raster

ogr.UseExceptions()
log = logging.getLogger(__name__)

MAX_CLASS = 65535
_INTEGER_FIELDS = (ogr.OFTInteger, ogr.OFTInteger64)


@dataclass(frozen=True)
class Labels:
    """Class ids on the image grid (uint8 or uint16, 0 = unlabelled) and the class name -> id mapping."""

    array: np.ndarray
    classes: dict[str, int]


def is_vector(path: PathLike) -> bool:
    """True when OGR opens ``path`` as a vector dataset with at least one layer."""
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_VECTOR | gdal.OF_READONLY)
    except RuntimeError:
        return False
    return ds is not None and ds.GetLayerCount() > 0


def open_layer(path: PathLike, class_field: str) -> tuple[ogr.DataSource, ogr.Layer, int]:
    try:
        ds = ogr.Open(str(path))
    except RuntimeError as exc:
        raise DataError(f"cannot open vector labels {path}: {exc}") from exc
    if ds is None or ds.GetLayerCount() == 0:
        raise DataError(f"cannot open vector labels {path}: give an OGR-readable file with one polygon layer.")
    layer = ds.GetLayer(0)
    defn = layer.GetLayerDefn()
    index = defn.GetFieldIndex(class_field)
    if index < 0:
        names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
        raise DataError(f"{path} has no field {class_field!r}; its fields are {names}. Pass the class field.")
    return ds, layer, index


def _field_values(path: PathLike, class_field: str) -> tuple[bool, set[Any]]:
    """(is_integer_field, distinct non-null values) of ``class_field`` in the first layer of ``path``."""
    ds, layer, index = open_layer(path, class_field)
    ftype = layer.GetLayerDefn().GetFieldDefn(index).GetType()
    if ftype not in _INTEGER_FIELDS and ftype != ogr.OFTString:
        raise DataError(f"class field {class_field!r} of {path} must hold integers or names, not "
                        f"{ogr.GetFieldTypeName(ftype)}.")
    integer = ftype in _INTEGER_FIELDS
    values = {f.GetField(index) for f in layer if f.IsFieldSetAndNotNull(index)}
    del ds
    return integer, values


def class_mapping(vector_paths: Iterable[PathLike], class_field: str) -> dict[str, int]:
    """The class name -> id mapping shared by every vector file.

    Names (string fields) get ids 1..n in sorted order; integer fields keep their values, named by their
    decimal text. All files must use the same kind of field.
    """
    kinds: set[bool] = set()
    values: set[Any] = set()
    for path in vector_paths:
        integer, found = _field_values(path, class_field)
        kinds.add(integer)
        values |= found
    if len(kinds) > 1:
        raise DataError(f"class field {class_field!r} holds integers in some files and names in others.")
    if not values:
        raise DataError(f"no feature has a value in class field {class_field!r}.")
    if kinds == {True}:
        bad = sorted(v for v in values if not 1 <= v <= MAX_CLASS)
        if bad:
            raise DataError(f"integer classes must be 1..{MAX_CLASS} (0 means unlabelled); found {bad}.")
        return {str(v): int(v) for v in sorted(values)}
    return {name: i for i, name in enumerate(sorted(values), start=1)}


def _label_dtype(max_id: int) -> int:
    return gdal.GDT_Byte if max_id <= 255 else gdal.GDT_UInt16


def _mem_raster(grid: Grid, gdal_type: int) -> gdal.Dataset:
    ds = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal_type)
    ds.SetGeoTransform(grid.geotransform)
    ds.SetProjection(grid.wkt)
    return ds


def _transform(layer: ogr.Layer, grid: Grid, path: PathLike) -> Optional[osr.CoordinateTransformation]:
    src = layer.GetSpatialRef()
    if src is None:
        log.warning("%s has no CRS: its coordinates are taken to be in the image's CRS", path)
        return None
    src = src.Clone()
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = grid.srs()
    if not grid.wkt or src.IsSame(dst):
        return None
    return osr.CoordinateTransformation(src, dst)


def rasterize_polygons(path: PathLike, grid: Grid, class_field: str,
                       classes: Optional[Mapping[str, int]] = None) -> Labels:
    """Rasterise the polygons of ``path`` onto ``grid`` in memory, burning each feature's class id.

    ``classes`` fixes the name -> id mapping (pass the one from :func:`class_mapping` when several files must
    agree); by default it is this file's own mapping.
    """
    mapping = dict(classes) if classes is not None else class_mapping([path], class_field)
    ds, layer, index = open_layer(path, class_field)
    transform = _transform(layer, grid, path)
    mem = ogr.GetDriverByName("Memory").CreateDataSource("")
    burn = mem.CreateLayer("labels", srs=grid.srs() if grid.wkt else None, geom_type=ogr.wkbUnknown)
    burn.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    for feature in layer:
        geom = feature.GetGeometryRef()
        if geom is None or not feature.IsFieldSetAndNotNull(index):
            continue
        key = str(feature.GetField(index))
        if key not in mapping:
            raise DataError(f"class {key!r} of {path} is not in the class mapping {sorted(mapping)}.")
        geom = geom.Clone()
        if transform is not None:
            geom.Transform(transform)
        out = ogr.Feature(burn.GetLayerDefn())
        out.SetField("label", mapping[key])
        out.SetGeometry(geom)
        burn.CreateFeature(out)
    del ds
    raster = _mem_raster(grid, _label_dtype(max(mapping.values())))
    gdal.RasterizeLayer(raster, [1], burn, options=["ATTRIBUTE=label"])
    return Labels(raster.GetRasterBand(1).ReadAsArray(), mapping)


def _same_grid(ds: gdal.Dataset, grid: Grid) -> bool:
    other = grid_of(ds)
    if (other.width, other.height) != (grid.width, grid.height):
        return False
    pixel = abs(grid.geotransform[1])
    if any(abs(a - b) > 1e-6 * pixel for a, b in zip(other.geotransform, grid.geotransform)):
        return False
    if not other.wkt or not grid.wkt:  # a CRS missing on either side: the geotransforms decide
        return True
    return bool(other.srs().IsSame(grid.srs()))


def _category_names(band: gdal.Band, ids: Iterable[int]) -> dict[str, int]:
    names = band.GetCategoryNames() or []
    mapping: dict[str, int] = {}
    for v in ids:
        name = names[v] if v < len(names) and names[v] else str(v)
        mapping[name] = v
    return mapping


def read_label_raster(path: PathLike, grid: Grid) -> Labels:
    """Band 1 of a label raster on ``grid``: read as is when aligned, else warped with nearest neighbour.

    Nodata becomes 0 (unlabelled). Classes are named by the band's category names where it has them.
    """
    src = open_raster(path)
    band = src.GetRasterBand(1)
    if _same_grid(src, grid):
        values = band.ReadAsArray()
        nodata = band.GetNoDataValue()
    else:
        warped = gdal.Warp("", src, format="MEM", width=grid.width, height=grid.height,
                           outputBounds=grid.bounds(), dstSRS=grid.wkt or None, resampleAlg="near",
                           dstNodata=band.GetNoDataValue())
        values = warped.GetRasterBand(1).ReadAsArray()
        nodata = warped.GetRasterBand(1).GetNoDataValue()
    values = values.astype(np.float64)
    unlabelled = ~np.isfinite(values)
    if nodata is not None:
        unlabelled |= values == nodata
    values[unlabelled] = 0
    if np.any(values < 0) or np.any(values > MAX_CLASS) or np.any(values != np.round(values)):
        raise DataError(f"label raster {path} must hold integer class ids 0..{MAX_CLASS} (0 = unlabelled).")
    ids = values.astype(np.uint16)
    present = [int(v) for v in np.unique(ids) if v != 0]
    array = ids.astype(np.uint8) if not present or max(present) <= 255 else ids
    return Labels(array, _category_names(band, present))


def load_labels(path: PathLike, grid: Grid, class_field: Optional[str] = None,
                classes: Optional[Mapping[str, int]] = None) -> Labels:
    """Labels from ``path`` on ``grid``: polygons when OGR reads it as vector (needs ``class_field``), else a
    label raster."""
    if is_vector(path):
        if not class_field:
            raise DataError(f"{path} is a vector file: give the name of its class field.")
        return rasterize_polygons(path, grid, class_field, classes)
    return read_label_raster(path, grid)


def image_grid(path: PathLike) -> Grid:
    """The grid of the image at ``path``."""
    return grid_of(open_raster(path))
