"""Tiling invariance: the stitched result equals whole-image inference, whatever the tiling."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import RunOptions, run_model
from ds_testing import models, rasters


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(0))
    return e / e.sum(0)


def _classes(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


@pytest.mark.parametrize("height,width", [(150, 210), (97, 131), (23, 41)])
@pytest.mark.parametrize("tile", [16, 37, 64, 512])
def test_segmentation_matches_whole_image(tmp_path: Path, height: int, width: int, tile: int) -> None:
    array = rasters.smooth_random(3, height, width, seed=height).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4, layers=3)
    result = run_model(model, str(raster), str(tmp_path / "out.tif"),
                       RunOptions(tile_size=tile, confidence_path=str(tmp_path / "conf.tif")))
    whole = _softmax(models.reference_run(model, array))
    same = (_classes(tmp_path / "out.tif") == whole.argmax(0) + 1).mean()
    assert same >= 0.999, f"only {same:.4%} of pixels match whole-image inference"
    np.testing.assert_allclose(_classes(tmp_path / "conf.tif"), whole.max(0), atol=1e-4)
    if tile >= max(height, width):  # a raster smaller than one tile is one tile
        assert result.tiles == 1


@pytest.mark.parametrize("tile,overlap", [(24, None), (40, 10), (64, 30)])
def test_regression_values_match_within_1e4(tmp_path: Path, tile: int, overlap: int | None) -> None:
    array = (rasters.smooth_random(1, 120, 170, seed=3) * 100 + 500).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "dem.tif", array)
    model = models.regressor(tmp_path / "box.onnx", bands=1, radius=3)
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(tile_size=tile, overlap=overlap))
    np.testing.assert_allclose(_classes(tmp_path / "out.tif"), models.reference_run(model, array)[0], atol=1e-4)


def test_cropping_model_covers_the_whole_raster(tmp_path: Path) -> None:
    crop = 4
    array = rasters.smooth_random(1, 90, 110, seed=5).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.cropping_segmenter(tmp_path / "crop.onnx", bands=1, classes=3, crop=crop)
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(tile_size=32))
    padded = np.pad(array, ((0, 0), (crop, crop), (crop, crop)), mode="reflect")
    whole = models.reference_run(model, padded)
    assert whole.shape[1:] == array.shape[1:]
    assert (_classes(tmp_path / "out.tif") == whole.argmax(0) + 1).mean() >= 0.999


def test_fixed_size_model_tiles_match_whole_image(tmp_path: Path) -> None:
    array = rasters.smooth_random(1, 70, 90, seed=7).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.fixed_size_segmenter(tmp_path / "fixed.onnx", size=32, bands=1, classes=2)
    dynamic = models.conv_segmenter(tmp_path / "dyn.onnx", bands=1, classes=2, layers=1, seed=0)
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(tile_size=100))  # ignored: fixed 32
    whole = models.reference_run(dynamic, array)  # same weights, any size
    assert (_classes(tmp_path / "out.tif") == whole.argmax(0) + 1).mean() >= 0.999


def test_fixed_size_model_runs_on_a_raster_smaller_than_its_tile(tmp_path: Path) -> None:
    array = rasters.smooth_random(1, 20, 25, seed=8).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.fixed_size_segmenter(tmp_path / "fixed.onnx", size=32, bands=1, classes=2)
    result = run_model(model, str(raster), str(tmp_path / "out.tif"))
    out = _classes(tmp_path / "out.tif")
    assert out.shape == (20, 25) and result.tiles == 1
    assert set(np.unique(out)) <= {1, 2}


def test_column_chunks_do_not_change_the_result(tmp_path: Path) -> None:
    array = rasters.smooth_random(3, 90, 700, seed=9).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "wide.tif", array)
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4, layers=2)
    run_model(model, str(raster), str(tmp_path / "a.tif"), RunOptions(tile_size=48))
    run_model(model, str(raster), str(tmp_path / "b.tif"), RunOptions(tile_size=48, chunk_width=256))
    a, b = _classes(tmp_path / "a.tif"), _classes(tmp_path / "b.tif")
    assert (a == b).mean() >= 0.999


def test_anomaly_scores_match_whole_image(tmp_path: Path) -> None:
    array = rasters.smooth_random(3, 80, 100, seed=11).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.autoencoder(tmp_path / "ae.onnx", bands=3)
    card = __import__("deepstrata.inference", fromlist=["load_model"]).load_model(model).card
    run_model(model, str(raster), str(tmp_path / "score.tif"), RunOptions(tile_size=24))
    recon = models.reference_run(model, array)
    error = np.square(recon - array).mean(0)
    spec = card.output.anomaly
    expected = (error - spec.median) / (1.4826 * spec.mad)
    np.testing.assert_allclose(_classes(tmp_path / "score.tif"), expected, atol=1e-4, rtol=1e-5)


def test_understated_margin_without_overlap_shows_seams(tmp_path: Path) -> None:
    """The control for the tests above: with no overlap and a margin of 0 the tile edges do show."""
    array = (rasters.smooth_random(1, 120, 170, seed=3) * 100 + 500).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "dem.tif", array)
    model = models.regressor(tmp_path / "box.onnx", bands=1, radius=3, input={"margin": 0})
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(tile_size=24, overlap=0))
    error = np.abs(_classes(tmp_path / "out.tif") - models.reference_run(model, array)[0])
    assert error.max() > 1.0


@pytest.mark.parametrize("height,width", [(1, 40), (40, 1), (1, 1), (2, 3)])
def test_degenerate_rasters_one_pixel_thin(tmp_path: Path, height: int, width: int) -> None:
    array = np.arange(height * width, dtype=np.float32).reshape(1, height, width)
    raster = rasters.write_raster(tmp_path / "thin.tif", array)
    model = models.identity_regressor(tmp_path / "id.onnx", size_multiple=4)
    run_model(model, str(raster), str(tmp_path / "out.tif"))
    np.testing.assert_array_equal(_classes(tmp_path / "out.tif").reshape(height, width), array[0])
