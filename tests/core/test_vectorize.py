"""Class rasters to polygons: counts, class names, areas (projected, feet and geographic CRSs), formats, cancel."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from deepstrata.inference import CancelledError, ClassInfo, InputError, OutputError
from deepstrata.inference.workflows.vectorize import polygonize_classes
from ds_testing import rasters

CLASSES = [ClassInfo(1, "granite", "#ff0000"), ClassInfo(2, "basalt", "#0000ff")]


def _classes(path: Path, **kwargs: Any) -> Path:
    """40 x 50 px, nodata 0: a 10 x 10 square of class 1 and a 10 x 15 rectangle of class 2 with a 3 x 3 hole."""
    array = np.zeros((40, 50), np.uint8)
    array[5:15, 5:15] = 1
    array[20:30, 20:35] = 2
    array[22:25, 25:28] = 0
    return rasters.write_raster(path, array, nodata=0, **kwargs)


def _features(path: Path) -> list[dict[str, Any]]:
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    out = [{**f.items(), "geometry": f.GetGeometryRef().ExportToWkt()} for f in layer]
    ds = None
    return sorted(out, key=lambda f: f.get("value") or 0)


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_two_classes_with_a_hole(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "classes.tif")
    count = polygonize_classes(str(raster), str(tmp_path / "out.gpkg"), CLASSES)
    assert count == 2
    ds = ogr.Open(str(tmp_path / "out.gpkg"))
    layer = ds.GetLayer(0)
    assert layer.GetName() == "classes"
    srs = layer.GetSpatialRef()
    assert srs.GetAuthorityCode(None) == str(rasters.EPSG)
    defn = layer.GetLayerDefn()
    kinds = {defn.GetFieldDefn(i).GetName(): defn.GetFieldDefn(i).GetType() for i in range(defn.GetFieldCount())}
    assert kinds == {"value": ogr.OFTInteger, "class_name": ogr.OFTString, "area_m2": ogr.OFTReal}
    ds = None
    square, rectangle = _features(tmp_path / "out.gpkg")
    assert (square["value"], square["class_name"], square["area_m2"]) == (1, "granite", 100 * 100.0)
    assert (rectangle["value"], rectangle["class_name"]) == (2, "basalt")
    assert rectangle["area_m2"] == pytest.approx((150 - 9) * 100.0)  # the nodata hole is not polygonised
    assert ogr.CreateGeometryFromWkt(rectangle["geometry"]).GetGeometryCount() == 2  # outer ring + hole
    x0, y0 = rasters.GEOTRANSFORM[0], rasters.GEOTRANSFORM[3]
    assert ogr.CreateGeometryFromWkt(square["geometry"]).GetEnvelope() == (x0 + 50, x0 + 150, y0 - 150, y0 - 50)


def test_class_names_from_the_raster_and_unknown_ones(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "classes.tif")
    ds = gdal.Open(str(raster), gdal.GA_Update)
    ds.GetRasterBand(1).SetMetadataItem("CLASS_2", "schist")  # how the engine labels its class outputs
    ds = None
    polygonize_classes(str(raster), str(tmp_path / "out.geojson"))
    names = [(f["value"], f["class_name"]) for f in _features(tmp_path / "out.geojson")]
    assert names == [(1, None), (2, "schist")]


def test_connectedness(tmp_path: Path) -> None:
    array = np.zeros((6, 6), np.uint8)
    array[1, 1] = array[2, 2] = array[3, 3] = 1  # a diagonal line of class 1
    raster = rasters.write_raster(tmp_path / "diag.tif", array, nodata=0)
    assert polygonize_classes(str(raster), str(tmp_path / "four.gpkg")) == 3
    assert polygonize_classes(str(raster), str(tmp_path / "eight.gpkg"), connectedness=8) == 1
    with pytest.raises(InputError, match="Connectedness must be 4 or 8"):
        polygonize_classes(str(raster), str(tmp_path / "six.gpkg"), connectedness=6)


def _quadrangle_area(lat1: float, lat2: float, dlon: float) -> float:
    """Area (m2) of a latitude/longitude quadrangle on the WGS84 ellipsoid (authalic latitude formula)."""
    a, f = 6378137.0, 1 / 298.257223563
    e = math.sqrt(f * (2 - f))

    def q(lat: float) -> float:
        s = math.sin(math.radians(lat))
        return (1 - e * e) * (s / (1 - e * e * s * s) - math.log((1 - e * s) / (1 + e * s)) / (2 * e))

    return a * a * math.radians(dlon) / 2 * abs(q(lat2) - q(lat1))


@pytest.mark.parametrize("top", [0.01, 45.01, 70.01])
def test_geographic_crs_areas_are_ellipsoidal(tmp_path: Path, top: float) -> None:
    array = np.zeros((20, 30), np.uint8)
    array[2:12, 3:13] = 1  # 10 x 10 pixels of 0.001 degree
    array[15:17, 20:28] = 2
    raster = rasters.write_raster(tmp_path / "geo.tif", array, nodata=0, epsg=4326,
                                  geotransform=(10.0, 0.001, 0.0, top, 0.0, -0.001))
    polygonize_classes(str(raster), str(tmp_path / "geo.gpkg"))
    square, strip = _features(tmp_path / "geo.gpkg")
    assert square["area_m2"] == pytest.approx(_quadrangle_area(top - 0.002, top - 0.012, 0.010), rel=1e-7)
    assert strip["area_m2"] == pytest.approx(_quadrangle_area(top - 0.015, top - 0.017, 0.008), rel=1e-7)


def test_long_edges_follow_parallels(tmp_path: Path) -> None:
    """A 10-degree-wide strip: its polygon has 4 corners, but its area is that of the quadrangle along parallels."""
    array = np.zeros((20, 1000), np.uint8)
    array[5:15] = 1
    raster = rasters.write_raster(tmp_path / "wide.tif", array, nodata=0, epsg=4326,
                                  geotransform=(0.0, 0.01, 0.0, 60.1, 0.0, -0.01))
    polygonize_classes(str(raster), str(tmp_path / "wide.gpkg"))
    assert _features(tmp_path / "wide.gpkg")[0]["area_m2"] == pytest.approx(_quadrangle_area(60.05, 59.95, 10.0),
                                                                             rel=1e-7)


def test_projected_crs_in_feet(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "feet.tif", epsg=2263)  # NAD83 / New York Long Island (ftUS)
    assert osr.SpatialReference(gdal.Open(str(raster)).GetProjection()).GetLinearUnits() != 1.0
    polygonize_classes(str(raster), str(tmp_path / "feet.shp"))
    square = _features(tmp_path / "feet.shp")[0]
    assert square["area_m2"] == pytest.approx(100 * 100.0 * (1200 / 3937) ** 2)


@pytest.mark.parametrize("name", ["out.shp", "out.geojson", "out.fgb", "out.tab"])
def test_formats_by_extension(tmp_path: Path, name: str) -> None:
    raster = _classes(tmp_path / "classes.tif")
    folder = tmp_path / "out"
    folder.mkdir()
    assert polygonize_classes(str(raster), str(folder / name), CLASSES) == 2
    assert [(f["value"], f["class_name"]) for f in _features(folder / name)] == [(1, "granite"), (2, "basalt")]
    assert [f["area_m2"] for f in _features(folder / name)] == pytest.approx([10000.0, 14100.0])
    assert not [n for n in os.listdir(folder) if n.startswith(".")]  # no staging folder or scratch file left


def test_cancel_leaves_nothing(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "classes.tif")
    before = _files(tmp_path)
    with pytest.raises(CancelledError):
        polygonize_classes(str(raster), str(tmp_path / "out.gpkg"), is_cancelled=lambda: True)
    assert _files(tmp_path) == before
    calls = [0]

    def count() -> bool:
        calls[0] += 1
        return False

    polygonize_classes(str(raster), str(tmp_path / "full.gpkg"), is_cancelled=count)
    total, calls[0] = calls[0], 0

    def late() -> bool:  # cancels on the last feature, after polygonising
        calls[0] += 1
        return calls[0] >= total
    before = _files(tmp_path)
    with pytest.raises(CancelledError):
        polygonize_classes(str(raster), str(tmp_path / "late.shp"), is_cancelled=late)
    assert _files(tmp_path) == before


def test_progress_reaches_one(tmp_path: Path) -> None:
    seen: list[float] = []
    polygonize_classes(str(_classes(tmp_path / "c.tif")), str(tmp_path / "o.gpkg"), on_progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_output_checks_and_replacing(tmp_path: Path) -> None:
    raster = _classes(tmp_path / "classes.tif")
    with pytest.raises(OutputError, match="unsupported extension.*gpkg"):
        polygonize_classes(str(raster), str(tmp_path / "out.xyz"))
    with pytest.raises(OutputError, match="The folder of the polygon output, '.*nowhere', does not exist"):
        polygonize_classes(str(raster), str(tmp_path / "nowhere" / "out.gpkg"))
    readonly = Path("/proc/self") if os.geteuid() == 0 else tmp_path / "ro"
    if readonly != Path("/proc/self"):
        readonly.mkdir()
        readonly.chmod(0o555)
    with pytest.raises(OutputError, match="Cannot write into .* for the polygon output .*Choose a folder you can"):
        polygonize_classes(str(raster), str(readonly / "out.gpkg"))
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"old")  # an earlier file is replaced whole, as Processing does, when the run commits
    assert polygonize_classes(str(raster), str(out)) == 2
    assert len(_features(out)) == 2
    with pytest.raises(InputError, match="floating-point values, not classes"):
        polygonize_classes(str(rasters.write_raster(tmp_path / "f.tif", np.ones((4, 4), np.float32))),
                           str(tmp_path / "f.gpkg"))
