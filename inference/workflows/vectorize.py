"""Polygons from rasters, streamed: one polygon per connected patch of equal values, with attributes per feature.

gdal.Polygonize reads the raster block by block and writes every patch into a scratch GeoPackage; the patches are
then copied, one feature at a time, into the output with their attributes (class name, area...). Nothing holds the
raster, or all the polygons, in memory. The output is staged (engine/vector_writer.py): it appears under its name
only when the run commits, and a failed or cancelled run leaves nothing behind.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from osgeo import gdal, ogr, osr

from ..engine.card import ClassInfo
from ..engine.destinations import Destination, Read, check_destinations, parse_vector_destination
from ..engine.errors import CancelledError, InputError, OutputError
from ..engine.progress import Cancelled, Progress, doing, never_cancelled, no_progress
from ..engine.raster import open_raster
from ..engine.staging import Staging, staged
from ..engine.vector_writer import VectorWriter
from ..engine.windows import to_map

gdal.UseExceptions()
ogr.UseExceptions()

# Per patch: its pixel value and geometry (in the raster's CRS) -> its field values, or None to drop it.
Attributes = Callable[[int, ogr.Geometry], "dict[str, Any] | None"]

class AreaMeter:
    """Areas in square metres of geometries in a raster's CRS.

    Projected CRS: the planar area times the square of the CRS's linear unit (metres, feet...). Geographic CRS:
    the geometry is densified to the pixel size and projected to a Lambert azimuthal equal-area projection centred
    on the raster, on the CRS's own ellipsoid; that projection preserves areas, so this is the ellipsoidal area of
    the patch (pixel edges follow meridians and parallels). No CRS: the area in the raster's map units, squared.
    """

    def __init__(self, projection: str, geotransform: Sequence[float], width: int, height: int) -> None:
        self.factor, self.transform, self.step = 1.0, None, 0.0
        if not projection:
            return
        srs = osr.SpatialReference(wkt=projection)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if srs.IsGeographic():
            gt = geotransform
            lon, lat = to_map(gt, width / 2, height / 2)
            laea = osr.SpatialReference()
            laea.CopyGeogCSFrom(srs)
            laea.SetProjCS("DeepStrata local equal-area")
            laea.SetLAEA(max(-90.0, min(90.0, lat)), lon, 0.0, 0.0)
            laea.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            self.transform = osr.CoordinateTransformation(srs, laea)
            self.step = min(abs(gt[1]), abs(gt[5])) or 0.0
        else:
            self.factor = float(srs.GetLinearUnits()) ** 2

    def area(self, geometry: ogr.Geometry) -> float:
        if self.transform is None:
            return float(geometry.GetArea()) * self.factor
        local = geometry.Clone()
        if self.step:
            local.Segmentize(self.step)
        local.Transform(self.transform)
        return float(local.GetArea())


def _scratch_layer(ds: Any, projection: str) -> Any:
    srs = osr.SpatialReference(wkt=projection) if projection else None
    layer = ds.CreateLayer("patches", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    return layer


def write_polygons(band: gdal.Band, mask: gdal.Band | None, projection: str, out_path: str, layer_name: str,
                   fields: Sequence[tuple[str, int]], attributes: Attributes, connectedness: int = 4,
                   staging: Staging | None = None, is_cancelled: Cancelled | None = None,
                   on_progress: Progress | None = None, reads: Sequence[Read] = ()) -> int:
    """Polygonise `band` where `mask` is non-zero into `out_path` with `fields` filled by `attributes`.

    `out_path` is a file (replaced when the run commits) or ``ogr:dbname='x.gpkg' table="name"`` for a layer of
    a GeoPackage whose other layers are kept. Returns the number of features written. Polygonising is the first
    half of the progress, the attributes the second; a cancel (checked from GDAL's progress callback and on every
    feature) raises CancelledError and leaves no output.
    """
    doing("Writing polygons")
    if connectedness not in (4, 8):
        raise InputError(f"Connectedness must be 4 or 8 (neighbouring pixels that join a patch), not "
                         f"{connectedness}.")
    path, layer = parse_vector_destination(out_path)
    check_destinations([Destination(path, "the polygon output", "vector", layer)], reads)
    cancelled = is_cancelled or never_cancelled
    progress = on_progress or no_progress
    with staged(staging, cancelled) as stage, VectorWriter(stage, out_path, layer_name) as out:
        scratch_ds: Any = ogr.GetDriverByName("GPKG").CreateDataSource(
            os.path.join(stage.folder(path, "scratch"), "patches.gpkg"))
        try:
            scratch = _scratch_layer(scratch_ds, projection)

            def callback(complete: float, message: Any, data: Any) -> int:
                progress(0.5 * complete)
                return 0 if cancelled() else 1

            options = ["8CONNECTED=8"] if connectedness == 8 else []
            scratch_ds.StartTransaction()  # one transaction for all the patches: ten times faster than one each
            try:
                gdal.Polygonize(band, mask, scratch, 0, options, callback=callback)
            except RuntimeError as exc:
                if cancelled():
                    raise CancelledError() from exc
                raise OutputError(f"Polygonising into '{path}' failed: {str(exc).strip()}. Check the disk space "
                                  "and the output path.") from exc
            scratch_ds.CommitTransaction()
            count = _copy(scratch, out.layer(projection, ogr.wkbPolygon, fields), out.ds, attributes, cancelled,
                          progress)
        finally:
            scratch = scratch_ds = None  # closed before the scratch folder goes
    progress(1.0)
    return count


def _copy(scratch: Any, layer: Any, ds: Any, attributes: Attributes, cancelled: Cancelled,
          progress: Progress) -> int:
    total = max(1, scratch.GetFeatureCount())
    transaction = bool(ds.TestCapability(ogr.ODsCTransactions))
    if transaction:
        ds.StartTransaction()
    definition = layer.GetLayerDefn()
    done, count = 0, 0
    for patch in scratch:
        if cancelled():
            raise CancelledError()
        geometry = patch.GetGeometryRef()
        values = attributes(int(patch.GetField(0)), geometry)
        done += 1
        if done % 256 == 0:
            progress(0.5 + 0.5 * done / total)
        if values is None:
            continue
        feature = ogr.Feature(definition)
        feature.SetGeometry(geometry)
        for name, value in values.items():
            if value is None:
                feature.SetFieldNull(name)
            else:
                feature.SetField(name, value)
        layer.CreateFeature(feature)
        count += 1
    if transaction:
        ds.CommitTransaction()
    return count


def class_names(band: gdal.Band, classes: Sequence[ClassInfo] | None = None) -> dict[int, str]:
    """Class value -> name: from `classes`, else the band's category names or CLASS_n metadata (engine outputs)."""
    if classes:
        return {c.value: c.name for c in classes}
    names = {i: n for i, n in enumerate(band.GetCategoryNames() or []) if n}
    for key, value in (band.GetMetadata() or {}).items():
        if key.startswith("CLASS_") and key[6:].isdigit():
            names.setdefault(int(key[6:]), value)
    return names


def polygonize_classes(class_path: str, out_path: str, classes: Sequence[ClassInfo] | None = None,
                       layer_name: str = "classes", is_cancelled: Cancelled | None = None,
                       on_progress: Progress | None = None, connectedness: int = 4,
                       staging: Staging | None = None) -> int:
    """One polygon per patch of a class raster (band 1; nodata and masked pixels are left out).

    Writes `out_path` (GeoPackage, Shapefile, GeoJSON or FlatGeobuf, by extension) in the raster's CRS with the
    fields ``value`` (the class value), ``class_name`` (from `classes`, else the raster's category names; empty
    where unknown) and ``area_m2`` (see AreaMeter). `connectedness` 4 joins pixels sharing an edge, 8 also
    diagonal ones. The output is staged (see write_polygons). Returns the number of polygons.
    """
    ds = open_raster(staging.current(class_path) if staging is not None else class_path)
    band = ds.GetRasterBand(1)
    if gdal.GetDataTypeName(band.DataType).startswith(("Float", "CFloat")):
        raise InputError(f"'{os.path.basename(class_path)}' holds floating-point values, not classes. Polygonise a "
                         "class raster (integer values), e.g. the output of a segmentation model.")
    names = class_names(band, classes)
    projection = str(ds.GetProjection() or "")
    geotransform = ds.GetGeoTransform(can_return_null=False)
    meter = AreaMeter(projection, geotransform, ds.RasterXSize, ds.RasterYSize)
    mask = None if band.GetMaskFlags() & gdal.GMF_ALL_VALID else band.GetMaskBand()

    def attributes(value: int, geometry: ogr.Geometry) -> dict[str, Any]:
        return {"value": value, "class_name": names.get(value), "area_m2": meter.area(geometry)}

    fields = [("value", ogr.OFTInteger), ("class_name", ogr.OFTString), ("area_m2", ogr.OFTReal)]
    return write_polygons(band, mask, projection, out_path, layer_name, fields, attributes, connectedness,
                          staging, is_cancelled, on_progress, [Read(class_path, "the class raster")])
