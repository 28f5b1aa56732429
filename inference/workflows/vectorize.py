"""Polygons from rasters, streamed: one polygon per connected patch of equal values, with attributes per feature.

gdal.Polygonize reads the raster block by block and writes every patch into a scratch GeoPackage; the patches are
then copied, one feature at a time, into the output with their attributes (class name, area...). Nothing holds the
raster, or all the polygons, in memory. The output is written in a hidden folder beside its target and moved to
its name only when complete, so a failed or cancelled run leaves nothing behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from osgeo import gdal, ogr, osr

from ..engine.card import ClassInfo
from ..engine.errors import CancelledError, InputError, OutputError
from ..engine.progress import Cancelled, Progress
from ..engine.raster import open_raster
from ..engine.writer import check_output_folder

gdal.UseExceptions()
ogr.UseExceptions()

# Per patch: its pixel value and geometry (in the raster's CRS) -> its field values, or None to drop it.
Attributes = Callable[[int, ogr.Geometry], "dict[str, Any] | None"]

DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".fgb": "FlatGeobuf"}
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd")


def _driver(suffix: str) -> str | None:
    """The vector driver writing files ending in `suffix`: ours first, else any GDAL driver that creates them."""
    if suffix in DRIVERS:
        return DRIVERS[suffix]
    for i in range(gdal.GetDriverCount() if suffix else 0):
        meta = gdal.GetDriver(i).GetMetadata() or {}
        extensions = (meta.get("DMD_EXTENSIONS") or meta.get("DMD_EXTENSION") or "").lower().split()
        if meta.get("DCAP_VECTOR") == "YES" and meta.get("DCAP_CREATE") == "YES" and suffix[1:] in extensions:
            return str(gdal.GetDriver(i).ShortName)
    return None


def check_vector_output(path: str, overwrite: bool = False) -> str:
    """The OGR driver for `path` (by its extension); OutputError before any work if it cannot be written."""
    target = Path(path)
    driver = _driver(target.suffix.lower())
    if driver is None:
        raise OutputError(f"Output '{path}' has an unsupported extension: use one of "
                          f"{', '.join(sorted(set(DRIVERS)))}, or another GDAL vector format (a GeoPackage, .gpkg, "
                          "unless you need another format).")
    if target.exists() and not overwrite:
        raise OutputError(f"Output '{path}' already exists. Choose a new file name, or remove the old file first.")
    check_output_folder(path)
    return driver


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
            lon, lat = gdal.ApplyGeoTransform(list(gt), width / 2, height / 2)
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


class _Staged:
    """A vector dataset written in a hidden folder beside `path`, moved to `path` by commit()."""

    def __init__(self, path: str, driver: str, overwrite: bool) -> None:
        self.path, self.overwrite = path, overwrite
        target = Path(path)
        self.folder = tempfile.mkdtemp(dir=target.parent if str(target.parent) else ".",
                                       prefix=f".{target.stem}.partial-")
        self.tmp = os.path.join(self.folder, target.name)
        self.ds: Any = None
        try:
            self.ds = ogr.GetDriverByName(driver).CreateDataSource(self.tmp)
        except RuntimeError as exc:
            self.abort()
            raise OutputError(f"Cannot create '{path}': {str(exc).strip()}. Check the disk space and the output "
                              "path.") from exc

    def commit(self) -> None:
        self.ds = None  # closes and flushes the file
        target = Path(self.path)
        if self.overwrite:
            stale = [target.with_suffix(s) for s in _SHAPEFILE_PARTS] if target.suffix.lower() == ".shp" else \
                [Path(f"{target}-wal"), Path(f"{target}-shm")]
            for old in stale:
                if old.exists():
                    old.unlink()
        for name in sorted(os.listdir(self.folder)):
            if not name.startswith(".scratch"):
                os.replace(os.path.join(self.folder, name), target.with_name(name))
        shutil.rmtree(self.folder, ignore_errors=True)

    def abort(self) -> None:
        self.ds = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _new_layer(ds: Any, name: str, projection: str, fields: Sequence[tuple[str, int]]) -> Any:
    srs = osr.SpatialReference(wkt=projection) if projection else None
    layer = ds.CreateLayer(name, srs, ogr.wkbPolygon)
    for field, kind in fields:
        layer.CreateField(ogr.FieldDefn(field, kind))
    return layer


def write_polygons(band: gdal.Band, mask: gdal.Band | None, projection: str, out_path: str, layer_name: str,
                   fields: Sequence[tuple[str, int]], attributes: Attributes, connectedness: int = 4,
                   overwrite: bool = False, is_cancelled: Cancelled | None = None,
                   on_progress: Progress | None = None) -> int:
    """Polygonise `band` where `mask` is non-zero into `out_path` with `fields` filled by `attributes`.

    Returns the number of features written. Polygonising is the first half of the progress, the attributes the
    second; a cancel (checked from GDAL's progress callback and on every feature) raises CancelledError and
    leaves no output.
    """
    if connectedness not in (4, 8):
        raise InputError(f"Connectedness must be 4 or 8 (neighbouring pixels that join a patch), not "
                         f"{connectedness}.")
    driver = check_vector_output(out_path, overwrite)
    cancelled = is_cancelled or (lambda: False)
    progress = on_progress or (lambda fraction: None)
    staged = _Staged(out_path, driver, overwrite)
    scratch_ds: Any = None
    scratch: Any = None
    try:
        scratch_ds = ogr.GetDriverByName("GPKG").CreateDataSource(os.path.join(staged.folder, ".scratch.gpkg"))
        scratch = _new_layer(scratch_ds, "patches", projection, [("value", ogr.OFTInteger)])

        def callback(complete: float, message: Any, data: Any) -> int:
            progress(0.5 * complete)
            return 0 if cancelled() else 1

        options = ["8CONNECTED=8"] if connectedness == 8 else []
        scratch_ds.StartTransaction()  # one transaction for all the patches: ten times faster than one per patch
        try:
            gdal.Polygonize(band, mask, scratch, 0, options, callback=callback)
        except RuntimeError as exc:
            if cancelled():
                raise CancelledError() from exc
            raise OutputError(f"Polygonising into '{out_path}' failed: {str(exc).strip()}. Check the disk space "
                              "and the output path.") from exc
        scratch_ds.CommitTransaction()
        layer = _new_layer(staged.ds, layer_name, projection, fields)
        count = _copy(scratch, layer, staged.ds, attributes, cancelled, progress)
        layer = scratch = scratch_ds = None
        staged.commit()
    except BaseException:
        scratch = scratch_ds = None  # close the scratch file before its folder is removed
        staged.abort()
        raise
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
                       overwrite: bool = False) -> int:
    """One polygon per patch of a class raster (band 1; nodata and masked pixels are left out).

    Writes `out_path` (GeoPackage, Shapefile, GeoJSON or FlatGeobuf, by extension) in the raster's CRS with the
    fields ``value`` (the class value), ``class_name`` (from `classes`, else the raster's category names; empty
    where unknown) and ``area_m2`` (see AreaMeter). `connectedness` 4 joins pixels sharing an edge, 8 also
    diagonal ones. An existing output is replaced only with `overwrite`. Returns the number of polygons.
    """
    ds = open_raster(class_path)
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
                          overwrite, is_cancelled, on_progress)
