"""What the engine writes: georeferencing, nodata, data types, band mapping, class metadata, styles."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from deepstrata.inference import RunOptions, run_model
from deepstrata.inference.engine.writer import FLOAT_NODATA
from ds_testing import models, rasters
from ds_testing.paths import DEM, LANDSAT


def _open(path: Path) -> gdal.Dataset:
    return gdal.Open(str(path))


def test_real_dem_values_georeferencing_and_nodata_survive_exactly(tmp_path: Path) -> None:
    """Identity model on the SRTM DEM (Int16, nodata 32767): output = input, same grid and CRS."""
    src = _open(DEM)
    dem = src.ReadAsArray().astype(np.float32)
    dem[10:20, 30:50] = 32767  # nodata patch in a copy of the real DEM
    raster = tmp_path / "dem.tif"
    gdal.Translate(str(raster), src)
    ds = gdal.Open(str(raster), gdal.GA_Update)
    ds.GetRasterBand(1).WriteArray(dem.astype(np.int16))
    ds = None
    model = models.identity_regressor(tmp_path / "id.onnx", bands=1, normalization={"method": "zscore",
                                                                                       "mean": [1000], "std": [50]})
    result = run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(tile_size=64))
    out = _open(tmp_path / "out.tif")
    assert out.GetGeoTransform() == src.GetGeoTransform()
    assert osr.SpatialReference(out.GetProjection()).IsSame(osr.SpatialReference(src.GetProjection()))
    band = out.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32 and band.GetNoDataValue() == pytest.approx(FLOAT_NODATA)
    values = band.ReadAsArray()
    nodata = dem == 32767
    assert (values[nodata] == np.float32(FLOAT_NODATA)).all()
    np.testing.assert_allclose(values[~nodata], (dem[~nodata] - 1000) / 50, rtol=1e-6)
    assert result.warnings == [] and result.provider == "CPUExecutionProvider"
    assert band.GetBlockSize() == [256, 256] and "DEFLATE" in str(out.GetMetadata("IMAGE_STRUCTURE"))


def test_class_output_has_colour_table_names_and_style(tmp_path: Path) -> None:
    classes = [{"value": i + 1, "name": n, "color": c}
               for i, (n, c) in enumerate(zip(["water", "forest", "urban"], ["#1f77b4", "#2ca02c", "#7f7f7f"]))]
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=3, output={"classes": classes},
                                  normalization={"method": "scale", "factor": 1e-4})
    result = run_model(model, str(LANDSAT), str(tmp_path / "out.tif"))
    ds = _open(tmp_path / "out.tif")
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert band.GetCategoryNames()[1:4] == ["water", "forest", "urban"]
    assert band.GetMetadataItem("CLASS_2") == "forest"
    table = band.GetColorTable()
    assert table.GetColorEntry(1)[:3] == (0x1f, 0x77, 0xb4) and table.GetColorEntry(0)[3] == 0
    assert set(np.unique(band.ReadAsArray())) <= {1, 2, 3}
    palette = ET.parse(result.style_path).getroot().find("pipe/rasterrenderer")
    assert palette.get("type") == "paletted"
    assert [e.get("label") for e in palette.iter("paletteEntry")] == ["water", "forest", "urban"]
    assert [c.name for c in result.classes] == ["water", "forest", "urban"]


def test_class_values_above_255_are_written_as_uint16(tmp_path: Path) -> None:
    classes = [{"name": "low", "value": 100, "color": "#0000ff"}, {"name": "high", "value": 1000, "color": "#ff0000"}]
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=2, layers=1, output={"classes": classes})
    run_model(model, str(DEM), str(tmp_path / "out.tif"), RunOptions(bands=[1]))
    ds = _open(tmp_path / "out.tif")
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_UInt16
    assert set(np.unique(band.ReadAsArray())) <= {100, 1000}


def test_bands_are_mapped_by_index_and_by_name(tmp_path: Path) -> None:
    array = np.stack([np.full((40, 50), v, np.float32) for v in (1, 2, 3)])
    raster = rasters.write_raster(tmp_path / "in.tif", array, descriptions=["blue", "green", "red"])
    named = models.identity_regressor(tmp_path / "named.onnx", bands=1, input={"bands": [{"name": "Red"}]})
    run_model(named, str(raster), str(tmp_path / "by_name.tif"))
    assert (_open(tmp_path / "by_name.tif").ReadAsArray() == 3).all()
    plain = models.identity_regressor(tmp_path / "plain.onnx", bands=2)
    result = run_model(plain, str(raster), str(tmp_path / "by_index.tif"), RunOptions(bands=[3, 1]))
    out = _open(tmp_path / "by_index.tif").ReadAsArray()
    assert (out[0] == 3).all() and (out[1] == 1).all() and result.bands == [3, 1]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_any_input_data_type(tmp_path: Path, dtype: type) -> None:
    array = (np.arange(30 * 40).reshape(1, 30, 40) % 200).astype(dtype)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.identity_regressor(tmp_path / "id.onnx")
    run_model(model, str(raster), str(tmp_path / "out.tif"))
    np.testing.assert_array_equal(_open(tmp_path / "out.tif").ReadAsArray(), array[0].astype(np.float32))


def test_mask_band_and_nan_become_nodata(tmp_path: Path) -> None:
    array = rasters.smooth_random(1, 60, 80, seed=2).astype(np.float32)
    array[0, 5, 5] = np.nan
    mask = np.ones((60, 80), np.uint8)
    mask[30:, :20] = 0
    raster = rasters.write_raster(tmp_path / "in.tif", array, mask=mask)
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=2, layers=1)
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(confidence_path=str(tmp_path / "c.tif")))
    out, conf = _open(tmp_path / "out.tif").ReadAsArray(), _open(tmp_path / "c.tif").ReadAsArray()
    assert (out[30:, :20] == 0).all() and out[5, 5] == 0
    assert (out[:30] > 0).sum() == 30 * 80 - 1
    assert (conf[30:, :20] == np.float32(FLOAT_NODATA)).all() and (conf[:30, 20:] >= 0.5).all()


def test_extent_writes_just_that_window_with_its_own_origin(tmp_path: Path) -> None:
    src = _open(DEM)
    gt = src.GetGeoTransform()
    # 100 x 50 pixels starting at column 40, row 60 (edges inside pixels are rounded outwards)
    extent = (gt[0] + 40.5 * 30, gt[3] - 109.5 * 30, gt[0] + 139.5 * 30, gt[3] - 60.5 * 30)
    model = models.regressor(tmp_path / "box.onnx", radius=2)
    run_model(model, str(DEM), str(tmp_path / "part.tif"), RunOptions(extent=extent, tile_size=32))
    run_model(model, str(DEM), str(tmp_path / "full.tif"), RunOptions(tile_size=32))
    part = _open(tmp_path / "part.tif")
    assert (part.RasterXSize, part.RasterYSize) == (100, 50)
    assert part.GetGeoTransform() == (gt[0] + 40 * 30, 30.0, 0.0, gt[3] - 60 * 30, 0.0, -30.0)
    full = _open(tmp_path / "full.tif").ReadAsArray()
    # tiles at the extent's edges read real context beyond it, so the part equals the same window of the full run
    np.testing.assert_allclose(part.ReadAsArray(), full[60:110, 40:140], atol=1e-3)


def test_classification_paints_tile_classes(tmp_path: Path) -> None:
    array = np.zeros((3, 64, 96), np.float32)
    array[0, :, :48] = 1.0  # band 1 high on the left half, band 2 on the right half
    array[1, :, 48:] = 1.0
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.patch_classifier(tmp_path / "cls.onnx", bands=3, classes=3, tile_size=16)
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(overlap=4))
    out = _open(tmp_path / "out.tif").ReadAsArray()
    assert (out[:, :40] == 1).all() and (out[:, 56:] == 2).all()


def test_deepness_model_runs_with_its_metadata(tmp_path: Path) -> None:
    model = models.deepness_segmenter(tmp_path / "dn.onnx", bands=3, classes=2)
    result = run_model(model, str(LANDSAT), str(tmp_path / "out.tif"))
    assert [c.name for c in result.classes] == ["background", "building"]
    assert result.tile_size == 64
    assert set(np.unique(_open(tmp_path / "out.tif").ReadAsArray())) <= {1, 2}


def test_sidecar_card_overrides_the_embedded_one(tmp_path: Path) -> None:
    import json
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=1, classes=2, layers=1)
    card = models.card("segmentation", ["elevation"], ["low", "high"], margin=1)
    Path(str(model) + ".json").write_text(json.dumps(card))
    result = run_model(model, str(DEM), str(tmp_path / "out.tif"))
    assert [c.name for c in result.classes] == ["low", "high"]


def test_progress_is_monotonic_and_ends_at_one(tmp_path: Path, smooth3) -> None:
    raster, _ = smooth3
    seen: list[float] = []
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    result = run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(tile_size=32),
                       on_progress=seen.append)
    assert result.tiles > 10 and len(seen) >= result.tiles // 4
    assert seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 1


def test_output_permissions_follow_umask_and_input_is_untouched(tmp_path: Path, smooth3) -> None:
    raster, _ = smooth3
    before = raster.read_bytes()
    run_model(models.conv_segmenter(tmp_path / "seg.onnx"), str(raster), str(tmp_path / "out.tif"))
    assert raster.read_bytes() == before
    assert (tmp_path / "out.tif").stat().st_mode & 0o044 == 0o044
    assert not list(tmp_path.glob(".*partial*"))


def test_default_overlap_follows_the_card(tmp_path: Path, smooth3) -> None:
    """A declared margin is trusted (0: no overlap at all); a card without one gets a safety overlap of 1/8."""
    raster, _ = smooth3
    exact = models.conv_segmenter(tmp_path / "exact.onnx", margin=2)
    assert run_model(exact, str(raster), str(tmp_path / "a.tif")).overlap == 4
    card = models.card("segmentation", 3, 4)
    del card["input"]["margin"]
    unknown = models.conv_segmenter(tmp_path / "unknown.onnx")
    models.save(__import__("onnx").load(str(unknown)), unknown, card)
    assert run_model(unknown, str(raster), str(tmp_path / "b.tif")).overlap == 64 // 8
    tpi = Path(__file__).resolve().parents[2] / "resources" / "models" / "landforms_tpi.onnx"
    dem = tmp_path / "dem.tif"
    dem.write_bytes(DEM.read_bytes())
    result = run_model(tpi, str(dem), str(tmp_path / "c.tif"))
    assert result.overlap == 0 and result.tiles == 2  # 320 x 240 px in output tiles of 256 - 2 x 8 = 240 px


def test_band_descriptions_are_short_for_the_legend(tmp_path: Path, smooth3) -> None:
    raster, _ = smooth3
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    run_model(model, str(raster), str(tmp_path / "c.tif"), RunOptions(confidence_path=str(tmp_path / "p.tif")))
    classes, confidence = _open(tmp_path / "c.tif"), _open(tmp_path / "p.tif")  # keep the datasets alive
    assert classes.GetRasterBand(1).GetDescription() == "class"
    assert confidence.GetRasterBand(1).GetDescription() == "confidence"


@pytest.mark.parametrize("elem,dtype", [(__import__("onnx").TensorProto.FLOAT16, np.float16),
                                        (__import__("onnx").TensorProto.UINT8, np.uint8)])
def test_models_taking_float16_or_uint8_inputs(tmp_path: Path, elem: int, dtype: type) -> None:
    from onnx import helper

    from ds_testing.graph import make_model

    graph = make_model([helper.make_node("Cast", ["input"], ["output"], to=1)],
                       [helper.make_tensor_value_info("input", elem, ["N", 1, "H", "W"])],
                       [helper.make_tensor_value_info("output", 1, ["N", 1, "H", "W"])])
    model = models.save(graph, tmp_path / "cast.onnx", models.card("regression", 1, margin=0,
                                                                      dtype=np.dtype(dtype).name))
    array = (np.arange(20 * 30).reshape(1, 20, 30) % 256).astype(np.float32) + 0.25
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    run_model(model, str(raster), str(tmp_path / "out.tif"))
    expected = np.clip(np.rint(array[0]), 0, 255) if dtype == np.uint8 else array[0].astype(np.float16)
    np.testing.assert_array_equal(_open(tmp_path / "out.tif").ReadAsArray(), expected.astype(np.float32))


@pytest.mark.parametrize("normalization,expected", [
    ({"method": "minmax", "min": [100, 0], "max": [300, 50]}, lambda a: (a - [[[100]], [[0]]]) / [[[200]], [[50]]]),
    ({"method": "scale", "factor": 0.5, "offset": -1}, lambda a: a * 0.5 - 1),
    ({"method": "zscore", "mean": 10, "std": 4}, lambda a: (a - 10) / 4),
])
def test_normalisations_at_run_time(tmp_path: Path, normalization: dict, expected) -> None:
    array = np.stack([np.linspace(100, 300, 24 * 36), np.linspace(0, 50, 24 * 36)]).reshape(2, 24, 36)
    raster = rasters.write_raster(tmp_path / "in.tif", array.astype(np.float32))
    model = models.identity_regressor(tmp_path / "id.onnx", bands=2, normalization=normalization)
    run_model(model, str(raster), str(tmp_path / "out.tif"))
    np.testing.assert_allclose(_open(tmp_path / "out.tif").ReadAsArray(), expected(array), rtol=1e-5, atol=1e-5)
