"""Polygon labels, audited before use: NULL or empty class values (counted per value, and which map units they
take away), missing geometries, the layer's CRS (reprojected on the fly), features outside the rasters and
overlapping features; then rasterised onto each raster's grid (pixel centres inside a polygon; the later
feature wins where they overlap)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
from osgeo import gdal, ogr, osr

from ..data.grid import Grid
from ..data.labels import open_layer
from .findings import Findings, Refused

ogr.UseExceptions()

_INTEGER = (ogr.OFTInteger, ogr.OFTInteger64)
_NUMBER = _INTEGER + (ogr.OFTReal,)
#: Field names that usually name a map unit, preferred when describing what NULL-class features are.
UNIT_FIELDS = ("unitname", "unit_name", "unit", "code", "formation", "name")


@dataclass
class Feature:
    value: Any                  # the class name (str) or number; never NULL or empty
    geometry: ogr.Geometry      # in the first raster's CRS


@dataclass
class VectorFile:
    path: str
    class_field: str
    numeric: bool                                   # the field holds numbers (integer or real)
    features: list[Feature] = field(default_factory=list)
    total: int = 0
    null: int = 0
    empty: int = 0
    no_geometry: int = 0
    per_value: dict[str, int] = field(default_factory=dict)
    full_fields: list[str] = field(default_factory=list)   # other fields set on every feature (alternatives)


def _clean(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _transform(layer: ogr.Layer, grid: Grid, path: str, findings: Findings,
               count: int) -> Optional[osr.CoordinateTransformation]:
    src = layer.GetSpatialRef()
    if src is None:
        findings.add("crs", f"{path} has no CRS: its coordinates are taken to be in the raster's CRS", count,
                     "reported", labels=path)
        return None
    src = src.Clone()
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if not grid.wkt or src.IsSame(grid.srs()):
        return None
    name = f"EPSG:{src.GetAuthorityCode(None)}" if src.GetAuthorityCode(None) else src.GetName()
    target = grid.srs()
    to = f"EPSG:{target.GetAuthorityCode(None)}" if target.GetAuthorityCode(None) else target.GetName()
    findings.add("crs", f"{path} is in {name}, the rasters in {to}: its {count} features are reprojected on the "
                        "fly", count, "reprojected", labels=path, crs=name, to=to)
    return osr.CoordinateTransformation(src, target)


def _group_field(rows: list[dict[str, Any]], class_field: str) -> Optional[str]:
    """A field that names map units, set on every feature, to say what NULL-class features are."""
    full = _full_fields(rows, class_field)
    preferred = [f for name in UNIT_FIELDS for f in full if f.lower() == name]
    if preferred:
        return preferred[0]
    counts = {f: len({r[f] for r in rows}) for f in full}
    return max(full, key=lambda f: counts[f]) if full else None


def _full_fields(rows: list[dict[str, Any]], class_field: str) -> list[str]:
    if not rows:
        return []
    out = []
    for name in rows[0]:
        values = [r[name] for r in rows]
        if name == class_field or any(v is None or v == "" for v in values):
            continue
        if 2 <= len(set(values)) < len(rows):  # some value repeats: not a per-feature identifier
            out.append(name)
    return out


def read_vector(path: str, class_field: str, grid: Grid, findings: Findings, numeric: bool = False) -> VectorFile:
    """Every feature of the first layer, with its class value, in ``grid``'s CRS; NULL / empty values and
    missing geometries are dropped and reported (see the module docstring)."""
    ds, layer, index = open_layer(path, class_field)
    ftype = layer.GetLayerDefn().GetFieldDefn(index).GetType()
    if numeric and ftype not in _NUMBER:
        raise Refused(f"the value field {class_field!r} of {path} holds {ogr.GetFieldTypeName(ftype)}, not numbers.")
    if not numeric and ftype not in _INTEGER and ftype != ogr.OFTString:
        raise Refused(f"the class field {class_field!r} of {path} holds {ogr.GetFieldTypeName(ftype)}; give a text "
                      "or integer field.")
    out = VectorFile(path, class_field, ftype in _NUMBER)
    transform = _transform(layer, grid, path, findings, layer.GetFeatureCount())
    rows: list[dict[str, Any]] = []
    defn = layer.GetLayerDefn()
    names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())
             if defn.GetFieldDefn(i).GetType() in _INTEGER + (ogr.OFTString,) or i == index]
    missing: list[dict[str, Any]] = []
    for feature in layer:
        out.total += 1
        row = {n: _clean(feature.GetField(n)) if feature.IsFieldSetAndNotNull(n) else None for n in names}
        rows.append(row)
        value = _clean(feature.GetField(index)) if feature.IsFieldSetAndNotNull(index) else None
        if value is None or value == "":
            out.null += value is None
            out.empty += value == ""
            missing.append(row)
            continue
        geom = feature.GetGeometryRef()
        if geom is None or geom.IsEmpty():
            out.no_geometry += 1
            continue
        geom = geom.Clone()
        if transform is not None:
            geom.Transform(transform)
        out.features.append(Feature(value, geom))
    del ds
    out.per_value = {str(k): v for k, v in sorted(Counter(f.value for f in out.features).items())}
    out.full_fields = _full_fields(rows, class_field)
    _report_missing(out, rows, missing, findings)
    return out


def _report_missing(out: VectorFile, rows: list[dict[str, Any]], missing: list[dict[str, Any]],
                    findings: Findings) -> None:
    if out.no_geometry:
        findings.add("no_geometry", f"{out.no_geometry} features of {out.path} have no geometry: dropped",
                     out.no_geometry, "dropped", labels=out.path)
    if not missing:
        return
    group = _group_field(rows, out.class_field)
    details: dict[str, Any] = {"labels": out.path, "null": out.null, "empty": out.empty,
                               "per_value": {**out.per_value, "NULL": out.null, "(empty)": out.empty}}
    message = (f"{len(missing)} of {out.total} features of {out.path} have no {out.class_field!r} value (NULL {out.null}, "
               f"empty {out.empty}): dropped, their area is left unlabelled")
    if group:
        by_group = Counter(str(r[group]) for r in missing)
        kept = Counter(str(r[group]) for r in rows if r[out.class_field] not in (None, ""))
        lost = sorted(g for g in by_group if kept[g] == 0)
        details.update(group_field=group, by_group=dict(sorted(by_group.items())), lost=lost)
        message += f". By {group}: " + ", ".join(f"{g} {n}" for g, n in sorted(by_group.items()))
        if lost:
            message += (f". Whole {group} classes lost (no feature of theirs keeps a {out.class_field!r} value, so the "
                        f"model never sees them): {', '.join(lost)}")
    distinct = {f: len({r[f] for r in rows}) for f in out.full_fields}
    alternatives = [f for f in out.full_fields if f != group and distinct[f] <= len(rows) // 2][:6] + \
        ([group] if group else [])
    if alternatives:
        message += f". Fields set on every feature: {', '.join(alternatives)}"
    findings.add("null_class", message, len(missing), "dropped", **details)


def outside(files: Sequence[VectorFile], grids: Sequence[Grid], findings: Findings) -> None:
    """Count features wholly outside every raster, and the labelled area of those partly outside (in pixels of
    the first raster); the rasters share the first raster's CRS (see :func:`training.custom.inputs.align`)."""
    boxes = ogr.Geometry(ogr.wkbMultiPolygon)
    for g in grids:
        x0, y0, x1, y1 = g.bounds()
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        box = ogr.Geometry(ogr.wkbPolygon)
        box.AddGeometry(ring)
        boxes.AddGeometry(box)
    union = boxes.UnionCascaded()
    pixel_area = abs(grids[0].geotransform[1] * grids[0].geotransform[5])
    for vf in files:
        whole, partly, area_out = 0, 0, 0.0
        for feature in vf.features:
            geom = feature.geometry if feature.geometry.IsValid() else feature.geometry.MakeValid()
            if not geom.Intersects(union):
                whole += 1
                area_out += geom.GetArea()
            elif not geom.Within(union):
                partly += 1
                area_out += geom.GetArea() - geom.Intersection(union).GetArea()
        if whole or partly:
            pixels = int(round(area_out / pixel_area))
            findings.add("outside", f"{vf.path}: {whole} features lie wholly outside the raster(s) and {partly} "
                                    f"partly; about {pixels} px of labelled area fall outside and are ignored",
                         whole + partly, "dropped", labels=vf.path, wholly=whole, partly=partly, pixels=pixels)


def rasterise(features: Sequence[Feature], values: Sequence[float], grid: Grid,
              numeric: bool) -> tuple[np.ndarray, int]:
    """(H, W) burnt values (class ids as int64 with 0 = none, or float32 values with NaN = none) and the number of
    pixels under two or more features (where the later feature wins)."""
    mem = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = mem.CreateLayer("labels", srs=grid.srs() if grid.wkt else None, geom_type=ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTReal))
    for feature, value in zip(features, values):
        out = ogr.Feature(layer.GetLayerDefn())
        out.SetField("value", float(value))
        out.SetGeometry(feature.geometry)
        layer.CreateFeature(out)

    def raster(gdal_type: int, fill: float) -> gdal.Dataset:
        ds = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal_type)
        ds.SetGeoTransform(grid.geotransform)
        ds.SetProjection(grid.wkt)
        ds.GetRasterBand(1).Fill(fill)
        return ds

    burnt = raster(gdal.GDT_Float32 if numeric else gdal.GDT_UInt16, float("nan") if numeric else 0.0)
    gdal.RasterizeLayer(burnt, [1], layer, options=["ATTRIBUTE=value"])
    counts = raster(gdal.GDT_UInt16, 0.0)
    gdal.RasterizeLayer(counts, [1], layer, burn_values=[1], options=["MERGE_ALG=ADD"])
    array = burnt.GetRasterBand(1).ReadAsArray()
    overlaps = int((counts.GetRasterBand(1).ReadAsArray() > 1).sum())
    return (array.astype(np.float32) if numeric else array.astype(np.int64)), overlaps
