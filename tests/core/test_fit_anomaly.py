"""The numpy anomaly fitter (inference/workflows/fit_anomaly.py), its ONNX graph and the per-scene threshold:
the engine's score for the written model equals the numpy reference, the card says what was fitted, the
calibration flags about 0.1 % of the scene, planted anomalies stand out, and a missing `onnx` says how to fix it."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import RunOptions, load_model, run_model
from deepstrata.inference.engine.errors import DependencyError, InputError
from deepstrata.inference.workflows.anomaly_threshold import scene_threshold
from deepstrata.inference.workflows.fit_anomaly import FitConfig, FitError, fit_raster, read_sample
from ds_testing import rasters

FAST = FitConfig(em_iterations=10, restarts=2)
PLANTED = (slice(40, 43), slice(50, 53))  # a 3 x 3 patch of an unusual spectrum


def planted_scene(path: Path, descriptions=None) -> tuple[Path, np.ndarray]:
    """8 bands, 120 x 100 px: three background materials mixed with noise, and one planted anomaly."""
    rng = np.random.default_rng(3)
    materials = rng.uniform(500, 3000, (3, 8))
    share = rng.dirichlet(np.ones(3) * 0.5, 120 * 100)
    cube = (share @ materials + rng.normal(0, 20, (120 * 100, 8))).T.reshape(8, 120, 100)
    cube[:, PLANTED[0], PLANTED[1]] = (materials.mean(axis=0) + np.linspace(-600, 600, 8))[:, None, None]
    return rasters.write_raster(path, cube.astype(np.float32), descriptions=descriptions), cube


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    raster, cube = planted_scene(folder / "scene.tif", descriptions=["blue", "", "red"] + [""] * 5)
    result = fit_raster(str(raster), str(folder / "model.onnx"), config=FAST, command="a test command")
    score = folder / "score.tif"
    run_model(str(result.path), str(raster), str(score), RunOptions(device="cpu"))
    return raster, cube, result, gdal.Open(str(score)).ReadAsArray()


def test_engine_scores_equal_the_numpy_reference(fitted):
    raster, cube, result, engine = fitted
    card = result.card
    x = (cube.reshape(8, -1).T - np.asarray(card["input"]["normalization"]["mean"])) / \
        card["input"]["normalization"]["std"]
    cal = result.calibration
    reference = ((result.model.score(x) - cal.median) / (1.4826 * cal.mad)).reshape(engine.shape)
    assert np.allclose(engine, reference, rtol=1e-4, atol=2e-3 * max(1.0, np.abs(reference).max() / 100))


def test_calibration_flags_about_a_thousandth_and_finds_the_planted_patch(fitted):
    _, _, result, engine = fitted
    flagged = engine >= result.calibration.threshold
    assert 0.0005 <= flagged.mean() <= 0.002
    assert flagged[PLANTED].all()
    assert abs(np.median(engine)) < 0.05  # calibrated on the scene: about 0 is ordinary


def test_card_names_the_bands_and_records_the_fit(fitted):
    raster, _, result, _ = fitted
    model = load_model(str(result.path), "cpu")
    card = model.card
    assert card.task == "anomaly" and card.output.anomaly.direct and card.output.anomaly.calibrated
    assert [b.name for b in card.input.bands] == ["blue", "band 2", "red"] + [f"band {i}" for i in range(4, 9)]
    assert card.output.anomaly.threshold == pytest.approx(result.calibration.threshold, abs=1e-3)
    training = result.card["training"]
    assert training["command"] == "a test command" and "no PyTorch" in training["created_by"]
    assert training["config"]["components_kept"] == 8 and training["config"]["bands"] == list(range(1, 9))
    assert result.card["input"]["pixel_size_m"] > 0


def test_bands_subset_and_errors(tmp_path):
    raster, _ = planted_scene(tmp_path / "s.tif")
    assert read_sample(str(raster), [3, 1]).pixels.shape == (12000, 2)
    decimated = read_sample(str(raster), max_pixels=3000)
    assert 2500 <= len(decimated.pixels) <= 3000 and decimated.step == pytest.approx(2.0)
    with pytest.raises(FitError, match="Band 9 is not in 's.tif', which has 8 band"):
        read_sample(str(raster), [9])
    with pytest.raises(FitError, match="'shrink' is a share"):
        FitConfig(shrink=1.5).check()
    empty = rasters.write_raster(tmp_path / "empty.tif", np.zeros((2, 5, 5), np.float32), nodata=0)
    with pytest.raises(FitError, match="0 valid pixels"):
        fit_raster(str(empty), str(tmp_path / "m.onnx"), config=FAST)


def test_one_band_and_three_band_rasters_fit(tmp_path):
    for bands in (1, 3):
        array = rasters.smooth_random(bands, 40, 50, seed=bands).astype(np.float32)
        raster = rasters.write_raster(tmp_path / f"b{bands}.tif", array)
        result = fit_raster(str(raster), str(tmp_path / f"b{bands}.onnx"), config=FAST)
        assert result.model.components == bands
        assert load_model(str(result.path), "cpu").card.input.bands[0].name == "band 1"


def test_missing_onnx_names_the_fix(tmp_path, monkeypatch):
    raster, _ = planted_scene(tmp_path / "s.tif")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(DependencyError, match="Check and install dependencies"):
        fit_raster(str(raster), str(tmp_path / "m.onnx"), config=FAST)
    assert not (tmp_path / "m.onnx").exists()


def test_scene_threshold_flags_the_share_asked(tmp_path):
    values = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    values[0, :10] = -9999
    score = rasters.write_raster(tmp_path / "score.tif", values, nodata=-9999)
    threshold = scene_threshold(str(score), 0.01)
    valid = values[values != -9999]
    assert (valid >= threshold).sum() == pytest.approx(0.01 * valid.size, abs=1)
    with pytest.raises(InputError, match="between 0 and 1"):
        scene_threshold(str(score), 0.0)
