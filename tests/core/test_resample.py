"""Running a model at its own pixel size: ground pixel sizes, resample plans, and the warp round trip."""
from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal, osr

from deepstrata.inference import CancelledError, InputError, RunOptions, run_model
from deepstrata.inference.workflows import resample
from deepstrata.inference.engine.georef import ground_pixel_size
from deepstrata.inference.engine.writer import FLOAT_NODATA
from deepstrata.inference.workflows.resample import (plan_resample, run_at_model_resolution, warp_to_input_grid,
                                                     warp_to_model_grid)
from ds_testing import models, rasters
from ds_testing.paths import DEM

CLASSES = [{"value": 1, "name": "low", "color": "#0000ff"}, {"value": 2, "name": "mid", "color": "#00ff00"},
           {"value": 5, "name": "high", "color": "#ff0000"}]
DEM_NODATA = 32767


def _srs(epsg: int) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs


def _same_crs(wkt: str, epsg: int) -> bool:
    return bool(osr.SpatialReference(wkt=wkt).IsSame(_srs(epsg)))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dem4326(tmp_path: Path) -> Path:
    """The Big Tujunga DEM (EPSG:32611) warped to EPSG:4326, with a nodata patch."""
    path = tmp_path / "dem_4326.tif"
    gdal.Warp(str(path), str(DEM), dstSRS="EPSG:4326")
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(1).WriteArray(np.full((20, 30), DEM_NODATA, np.int16), 150, 90)
    ds = None
    return path


@pytest.fixture
def smooth10(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Smooth random field, 150 x 210 px of 10 m in EPSG:32633."""
    array = rasters.smooth_random(1, 150, 210, seed=3)
    return rasters.write_raster(tmp_path / "smooth10.tif", array), array[0]


# ---------------------------------------------------------------------------------------------- pixel sizes

def test_ground_pixel_size_projected_uses_linear_units(tmp_path: Path) -> None:
    assert ground_pixel_size(gdal.Open(str(DEM))) == (30.0, 30.0)
    feet = rasters.write_raster(tmp_path / "ft.tif", np.ones((4, 4), np.float32), epsg=2229,
                                geotransform=(6_400_000.0, 3.0, 0.0, 1_900_000.0, 0.0, -3.0))
    x, y = ground_pixel_size(gdal.Open(str(feet)))
    assert x == pytest.approx(3 * 1200 / 3937) and y == pytest.approx(3 * 1200 / 3937)  # US survey feet
    no_crs = rasters.write_raster(tmp_path / "nocrs.tif", np.ones((4, 4), np.float32), epsg=None)
    assert ground_pixel_size(gdal.Open(str(no_crs))) is None


def test_ground_pixel_size_geographic_matches_geodesic_distances(dem4326: Path) -> None:
    """Against the distance from the centre pixel to its neighbours, measured in an azimuthal equidistant
    projection centred on it (distances from the centre are true geodesic distances there)."""
    ds = gdal.Open(str(dem4326))
    gt = ds.GetGeoTransform()
    col, row = ds.RasterXSize / 2, ds.RasterYSize / 2
    lon, lat = gdal.ApplyGeoTransform(gt, col, row)
    aeqd = osr.SpatialReference()
    aeqd.ImportFromProj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    geographic = _srs(4326)
    for srs in (aeqd, geographic):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_aeqd = osr.CoordinateTransformation(geographic, aeqd)
    east = to_aeqd.TransformPoint(*gdal.ApplyGeoTransform(gt, col + 1, row))
    south = to_aeqd.TransformPoint(*gdal.ApplyGeoTransform(gt, col, row + 1))
    x, y = ground_pixel_size(ds)
    assert x == pytest.approx(math.hypot(east[0], east[1]), rel=0.005)
    assert y == pytest.approx(math.hypot(south[0], south[1]), rel=0.005)
    assert y / x == pytest.approx(1 / math.cos(math.radians(lat)), rel=0.01)  # degrees are not square


# ---------------------------------------------------------------------------------------------- plans

def test_no_plan_when_the_raster_already_fits(tmp_path: Path) -> None:
    ds = gdal.Open(str(DEM))  # 30 m, EPSG:32611
    assert plan_resample(ds, str(DEM), None) is None
    assert plan_resample(ds, str(DEM), 30.0) is None
    assert plan_resample(ds, str(DEM), 35.0) is None  # within 25 %
    assert plan_resample(ds, str(DEM), 35.0, tolerance=0.1) is not None
    no_crs = rasters.write_raster(tmp_path / "nocrs.tif", np.ones((4, 4), np.float32), epsg=None)
    assert plan_resample(gdal.Open(str(no_crs)), str(no_crs), 10.0) is None


def test_plan_for_a_10m_raster_and_a_30m_model(smooth10: tuple[Path, np.ndarray]) -> None:
    path = smooth10[0]
    plan = plan_resample(gdal.Open(str(path)), str(path), 30.0)
    assert plan is not None
    assert _same_crs(plan.crs_wkt, 32633) and plan.crs_label == "EPSG:32633"
    assert plan.resolution == 30.0 and (plan.width, plan.height) == (70, 50)
    assert plan.bounds == (500000.0, 4098500.0, 502100.0, 4100000.0)  # the raster's own bounds: 210 x 150 px
    assert plan.resampling == "average" and plan.source_pixel_m == (10.0, 10.0)
    assert "10 x 10 m pixels" in plan.reason and "trained at 30 m" in plan.reason
    finer = plan_resample(gdal.Open(str(DEM)), str(DEM), 10.0)
    assert finer is not None and finer.resampling == "bilinear" and (finer.width, finer.height) == (960, 720)


def test_geographic_rasters_go_to_the_utm_zone_of_their_centre(dem4326: Path, tmp_path: Path) -> None:
    ds = gdal.Open(str(dem4326))
    plan = plan_resample(ds, "dem_4326.tif", 30.0)
    assert plan is not None and _same_crs(plan.crs_wkt, 32611)
    assert plan.crs_label == "EPSG:32611 (UTM 11N)" and plan.resolution == 30.0
    assert plan.reason.startswith("'dem_4326.tif' is in EPSG:4326 with about 28.3 x 34.1 m pixels; resampling to "
                                  "30 m in EPSG:32611 (UTM 11N)")
    src = gdal.Open(str(DEM)).GetGeoTransform()  # the UTM extent of the original DEM lies inside the plan
    assert plan.bounds[0] <= src[0] and plan.bounds[2] >= src[0] + 320 * 30
    assert plan.bounds[1] <= src[3] - 240 * 30 and plan.bounds[3] >= src[3]
    assert all(v % 30 == 0 for v in plan.bounds)
    # even at the model's own pixel size: geographic pixels are not square on the ground
    assert plan_resample(ds, "dem_4326.tif", 31.0) is not None

    arcsec = 1 / 3600
    sydney = rasters.write_raster(tmp_path / "sydney.tif", np.ones((50, 50), np.float32), epsg=4326,
                                  geotransform=(151.2, arcsec, 0.0, -33.8, 0.0, -arcsec))
    south = plan_resample(gdal.Open(str(sydney)), str(sydney), 30.0)
    assert south is not None and _same_crs(south.crs_wkt, 32756) and south.crs_label.endswith("(UTM 56S)")
    arctic = rasters.write_raster(tmp_path / "arctic.tif", np.ones((50, 50), np.float32), epsg=4326,
                                  geotransform=(10.0, 0.01, 0.0, 86.0, 0.0, -0.01))
    polar = plan_resample(gdal.Open(str(arctic)), str(arctic), 100.0)
    assert polar is not None and "Lambert azimuthal equal-area" in polar.crs_label
    assert "+proj=laea" in osr.SpatialReference(wkt=polar.crs_wkt).ExportToProj4()


def test_a_rotated_raster_that_needs_resampling_is_refused(tmp_path: Path) -> None:
    path = rasters.write_raster(tmp_path / "rotated.tif", np.ones((10, 10), np.float32),
                                geotransform=(500000.0, 10.0, 1.0, 4100000.0, 1.0, -10.0))
    with pytest.raises(InputError, match="not north-up.*Warp it north-up first"):
        plan_resample(gdal.Open(str(path)), str(path), 30.0)


# ---------------------------------------------------------------------------------------------- round trips

def test_warp_to_model_grid_keeps_nodata(dem4326: Path, tmp_path: Path) -> None:
    plan = plan_resample(gdal.Open(str(dem4326)), str(dem4326), 30.0)
    assert plan is not None
    ds = gdal.Open(warp_to_model_grid(str(dem4326), plan, str(tmp_path / "utm.tif")))
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32 and band.GetNoDataValue() == DEM_NODATA
    assert (ds.RasterXSize, ds.RasterYSize) == (plan.width, plan.height) and band.GetBlockSize() == [256, 256]
    assert ds.GetGeoTransform() == (plan.bounds[0], 30.0, 0.0, plan.bounds[3], 0.0, -30.0)
    values = band.ReadAsArray()
    dem = gdal.Open(str(DEM)).ReadAsArray()
    valid = values[values != DEM_NODATA]
    assert valid.min() >= dem.min() - 1 and valid.max() <= dem.max() + 1  # no nodata averaged into values
    assert (values == DEM_NODATA).sum() > 100  # the patch, and the corners outside the footprint



def test_class_model_on_a_geographic_dem_lands_exactly_on_the_input_grid(dem4326: Path, tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=3, layers=1, pixel_size_m=30,
                                  normalization={"method": "zscore", "mean": [1200], "std": [300]},
                                  output={"classes": CLASSES})
    out = tmp_path / "out"
    out.mkdir()
    before = _digest(dem4326)
    done = run_at_model_resolution(model, str(dem4326), str(out / "landforms.tif"),
                                   RunOptions(confidence_path=str(out / "confidence.tif")))
    assert done.plan is not None and done.plan.crs_label == "EPSG:32611 (UTM 11N)"
    result = done.result
    assert (result.output_path, result.confidence_path) == (str(out / "landforms.tif"), str(out / "confidence.tif"))
    assert (result.style_path, result.confidence_style_path) == (str(out / "landforms.qml"), str(out / "confidence.qml"))
    assert _files(out) == ["confidence.qml", "confidence.tif", "landforms.qml", "landforms.tif",
                           "landforms.tif.aux.xml"]  # no temp folder, no partial files
    assert _digest(dem4326) == before

    src = gdal.Open(str(dem4326))
    dem = src.ReadAsArray()
    nodata = dem == DEM_NODATA
    assert nodata[90:110, 150:180].all() and nodata.sum() > 600
    ds = gdal.Open(str(out / "landforms.tif"))
    assert ds.GetGeoTransform() == src.GetGeoTransform()  # exactly, not approximately
    assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize) == (result.width, result.height)
    assert osr.SpatialReference(wkt=ds.GetProjection()).IsSame(osr.SpatialReference(wkt=src.GetProjection()))
    band = ds.GetRasterBand(1)
    classes = band.ReadAsArray()
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert (classes[nodata] == 0).all()
    assert set(np.unique(classes[~nodata]).tolist()) <= {0, 1, 2, 5}  # nearest: class values only, none blended
    assert len(set(np.unique(classes[~nodata]).tolist()) - {0}) >= 2
    assert (classes[~nodata] == 0).mean() < 0.005  # a few valid pixels on the footprint's edge may get nodata
    assert band.GetCategoryNames()[:6] == ["", "low", "mid", "", "", "high"]
    assert band.GetMetadataItem("CLASS_5") == "high" and ds.GetMetadataItem("DEEPSTRATA_TASK") == "segmentation"
    assert band.GetColorTable().GetColorEntry(5)[:3] == (255, 0, 0)
    assert band.GetRasterColorInterpretation() == gdal.GCI_PaletteIndex
    labels = [e.get("label") for e in ET.parse(result.style_path).getroot().iter("paletteEntry")]
    assert labels == ["low", "mid", "high"]

    conf = gdal.Open(str(out / "confidence.tif"))
    assert conf.GetGeoTransform() == src.GetGeoTransform()
    cband = conf.GetRasterBand(1)
    values = cband.ReadAsArray()
    assert cband.DataType == gdal.GDT_Float32 and cband.GetNoDataValue() == pytest.approx(FLOAT_NODATA)
    assert cband.GetDescription() == "confidence"
    assert (values[nodata] == np.float32(FLOAT_NODATA)).all()
    scored = values[classes != 0]
    assert scored.min() >= 1 / 3 - 1e-6 and scored.max() <= 1 + 1e-6  # bilinear between winning probabilities


def test_warp_to_input_grid_keeps_what_the_engine_writes(dem4326: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's class output on the 30 m UTM DEM, warped onto the EPSG:4326 grid by itself: the classes
    (category names, colours, CLASS_n items) come from the band, and column chunks join seamlessly."""
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=3, layers=1, output={"classes": CLASSES},
                                  normalization={"method": "zscore", "mean": [1200], "std": [300]})
    run_model(model, str(DEM), str(tmp_path / "utm.tif"))
    warp_to_input_grid(str(tmp_path / "utm.tif"), str(dem4326), str(tmp_path / "whole.tif"), categorical=True)
    monkeypatch.setattr(resample, "CHUNK_COLUMNS", 100)
    warp_to_input_grid(str(tmp_path / "utm.tif"), str(dem4326), str(tmp_path / "chunked.tif"), categorical=True)
    engine, whole = gdal.Open(str(tmp_path / "utm.tif")), gdal.Open(str(tmp_path / "whole.tif"))
    np.testing.assert_array_equal(whole.ReadAsArray(), gdal.Open(str(tmp_path / "chunked.tif")).ReadAsArray())
    assert whole.GetGeoTransform() == gdal.Open(str(dem4326)).GetGeoTransform()
    a, b = engine.GetRasterBand(1), whole.GetRasterBand(1)
    assert (b.DataType, b.GetNoDataValue(), b.GetDescription()) == (a.DataType, a.GetNoDataValue(), "class")
    assert b.GetCategoryNames() == a.GetCategoryNames() and b.GetMetadata() == a.GetMetadata()
    assert whole.GetMetadataItem("DEEPSTRATA_TASK") == "segmentation"
    table_a, table_b = a.GetColorTable(), b.GetColorTable()
    assert [table_b.GetColorEntry(v) for v in range(6)] == [table_a.GetColorEntry(v) for v in range(6)]
    assert set(np.unique(whole.ReadAsArray()).tolist()) <= {0, 1, 2, 5}
    assert not list(tmp_path.glob(".*partial*"))


def test_projected_raster_runs_at_the_model_pixel_size(smooth10: tuple[Path, np.ndarray], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An identity model with a 30 m card on a 10 m raster: the model sees 30 m pixels, the output is on the
    10 m grid, and equals the input up to the 3x3 averaging and the bilinear return."""
    path, array = smooth10
    seen: list[tuple[Any, ...]] = []
    real = resample.run_model

    def spy(model: Any, input_path: str, *args: Any, **kwargs: Any) -> Any:
        ds = gdal.Open(input_path)
        seen.append((ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize))
        return real(model, input_path, *args, **kwargs)

    monkeypatch.setattr(resample, "run_model", spy)
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=30)
    done = run_at_model_resolution(model, str(path), str(tmp_path / "out.tif"))
    assert seen == [((500000.0, 30.0, 0.0, 4100000.0, 0.0, -30.0), 70, 50)]
    out = gdal.Open(str(tmp_path / "out.tif"))
    src = gdal.Open(str(path))
    assert out.GetGeoTransform() == src.GetGeoTransform() and (out.RasterXSize, out.RasterYSize) == (210, 150)
    assert _same_crs(out.GetProjection(), 32633) and done.result.warnings == []
    values = out.GetRasterBand(1).ReadAsArray()
    assert (values != np.float32(FLOAT_NODATA)).all()
    # The field is smooth at a scale of 8 px (80 m) and spans [0, 1]: a 30 m box filter and a bilinear return
    # change it by about 1 % (measured: mean 0.003, max 0.018 inside, 0.045 on the first and last rows and
    # columns, where the return extrapolates half a 30 m pixel). A model run at 10 m would give exactly 0.
    error = np.abs(values - array)
    assert error.mean() < 0.006 and error[3:-3, 3:-3].max() < 0.03 and error.max() < 0.08
    assert error.max() > 1e-3


def test_a_10m_checkerboard_is_averaged_to_grey_at_30m(tmp_path: Path) -> None:
    board = (np.indices((60, 90)).sum(axis=0) % 2).astype(np.float32)
    path = rasters.write_raster(tmp_path / "board.tif", board)
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=30)
    steps: list[float] = []
    run_at_model_resolution(model, str(path), str(tmp_path / "out.tif"), on_progress=steps.append)
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert any(0.09 < f <= 0.1 for f in steps) and any(0.89 < f <= 0.9 for f in steps)  # 10 % in, 80 %, 10 %
    values = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    assert values.min() >= 4 / 9 - 1e-6 and values.max() <= 5 / 9 + 1e-6  # 3x3 means of 0/1, then bilinear


def test_masked_input_pixels_are_nodata_in_the_output(smooth10: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, array = smooth10
    mask = np.ones(array.shape, np.uint8)
    mask[40:70, 60:100] = 0
    masked = rasters.write_raster(tmp_path / "masked.tif", array, mask=mask)
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=30)
    run_at_model_resolution(model, str(masked), str(tmp_path / "out.tif"))
    values = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    assert (values[mask == 0] == np.float32(FLOAT_NODATA)).all()
    valid = values[mask == 1]
    assert (valid != np.float32(FLOAT_NODATA)).mean() > 0.97 and valid[valid > -1].min() >= 0


def test_extent_is_warped_with_context_and_returns_the_engines_window(smooth10: tuple[Path, np.ndarray],
                                                                      tmp_path: Path) -> None:
    path = smooth10[0]
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=30)
    extent = (500_405.0, 4_098_795.0, 501_203.0, 4_099_512.0)
    done = run_at_model_resolution(model, str(path), str(tmp_path / "part.tif"), RunOptions(extent=extent))
    run_model(model, str(path), str(tmp_path / "engine.tif"), RunOptions(extent=extent))
    part, engine = gdal.Open(str(tmp_path / "part.tif")), gdal.Open(str(tmp_path / "engine.tif"))
    assert part.GetGeoTransform() == engine.GetGeoTransform()
    assert (part.RasterXSize, part.RasterYSize) == (engine.RasterXSize, engine.RasterYSize)
    assert (done.result.width, done.result.height) == (engine.RasterXSize, engine.RasterYSize)
    error = np.abs(part.ReadAsArray() - engine.ReadAsArray())  # the identity at 10 m vs at 30 m and back
    assert error.mean() < 0.01 and error.max() < 0.06


def test_without_a_plan_it_is_run_model(tmp_path: Path) -> None:
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=30)
    done = run_at_model_resolution(model, str(DEM), str(tmp_path / "out.tif"))
    assert done.plan is None
    out = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    np.testing.assert_array_equal(out, gdal.Open(str(DEM)).ReadAsArray().astype(np.float32))


@pytest.mark.parametrize("at", [0.0, 0.5, 0.95])  # while warping in, while the model runs, while warping back
def test_cancel_leaves_no_output_and_no_temp_folder(dem4326: Path, tmp_path: Path, at: float) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=3, layers=1, pixel_size_m=30)
    out = tmp_path / "out"
    out.mkdir()
    before = _digest(dem4326)
    reached = [0.0]

    def progress(fraction: float) -> None:
        reached[0] = max(reached[0], fraction)

    with pytest.raises(CancelledError):
        run_at_model_resolution(model, str(dem4326), str(out / "classes.tif"),
                                RunOptions(confidence_path=str(out / "confidence.tif"), tile_size=32),
                                on_progress=progress, is_cancelled=lambda: reached[0] >= at)
    assert reached[0] < 1.0
    assert _files(out) == []
    assert _digest(dem4326) == before


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs a folder nobody can write to (/proc)")
def test_edge_fill_does_not_need_a_writable_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL's FillNodata writes work files into CPL_TMPDIR, by default the current directory (QGIS's may be
    read-only): they go beside the warped raster instead, and every input pixel next to the data is filled."""
    array = np.full((50, 60), 100.0, np.float32)
    array[:, :10] = -9999.0
    path = rasters.write_raster(tmp_path / "warped.tif", array, nodata=-9999.0)
    monkeypatch.chdir("/proc")
    resample._grow_edges(str(path))
    filled, _, _, _ = rasters.read_raster(path)
    assert (filled[0][:, 8:] == 100.0).all() and (filled[0][:, :8] == -9999.0).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warped.tif"]
