"""The test fixtures themselves: every analytic model loads in onnxruntime and behaves as documented."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from ds_testing import models, rasters

ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidProtobuf)


def _meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _card(path: Path) -> dict:
    return json.loads(_meta(path)["deepstrata"])


def test_conv_segmenter_shape_card_and_receptive_radius(tmp_path: Path) -> None:
    path = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4, layers=2)
    image = rasters.smooth_random(3, 40, 50, seed=1)
    out = models.reference_run(path, image)
    assert out.shape == (4, 40, 50)
    card = _card(path)
    assert card["input"]["margin"] == 2 and card["output"]["activation"] == "softmax"
    assert [c["value"] for c in card["output"]["classes"]] == [1, 2, 3, 4]
    assert len({c["color"] for c in card["output"]["classes"]}) == 4
    # a change at one pixel reaches exactly `layers` pixels away, no further
    spiked = image.copy()
    spiked[:, 20, 25] += 5.0
    changed = np.abs(models.reference_run(path, spiked) - out).max(axis=0) > 1e-6
    rows, cols = np.nonzero(changed)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (18, 22, 23, 27)


def test_same_seed_same_model(tmp_path: Path) -> None:
    a = models.conv_segmenter(tmp_path / "a.onnx", seed=3)
    b = models.conv_segmenter(tmp_path / "b.onnx", seed=3)
    c = models.conv_segmenter(tmp_path / "c.onnx", seed=4)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_probability_and_binary_segmenters(tmp_path: Path) -> None:
    image = rasters.smooth_random(3, 16, 16, seed=2)
    probs = models.reference_run(models.probability_segmenter(tmp_path / "p.onnx", classes=5), image)
    assert probs.shape == (5, 16, 16)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    binary = models.binary_segmenter(tmp_path / "b.onnx", bands=1)
    assert models.reference_run(binary, image[:1]).shape == (1, 16, 16)
    card = _card(binary)
    assert card["output"]["activation"] == "sigmoid" and len(card["output"]["classes"]) == 2


def test_cropping_segmenter_output_is_smaller(tmp_path: Path) -> None:
    path = models.cropping_segmenter(tmp_path / "crop.onnx", bands=1, classes=3, crop=4)
    assert models.reference_run(path, np.zeros((1, 30, 20))).shape == (3, 22, 12)
    card = _card(path)
    assert card["output"]["crop"] == 4 and card["input"]["margin"] == 0


def test_fixed_size_segmenter_rejects_other_sizes(tmp_path: Path) -> None:
    path = models.fixed_size_segmenter(tmp_path / "fixed.onnx", size=32)
    assert models.reference_run(path, np.zeros((1, 32, 32))).shape == (2, 32, 32)
    with pytest.raises(ORT_ERRORS, match="[Ii]nvalid dimensions|[Gg]ot invalid"):
        models.reference_run(path, np.zeros((1, 40, 40)))
    assert _card(path)["input"]["tile_size"] == 32


def test_patch_classifier_picks_brightest_band(tmp_path: Path) -> None:
    path = models.patch_classifier(tmp_path / "cls.onnx", bands=3, classes=3)
    image = np.full((3, 24, 24), 0.2, dtype=np.float32)
    image[1] = 0.9
    logits = models.reference_run(path, image)
    assert logits.shape == (3,) and int(np.argmax(logits)) == 1
    assert _card(path)["task"] == "classification"


def test_regressor_is_a_box_mean(tmp_path: Path) -> None:
    path = models.regressor(tmp_path / "reg.onnx", bands=1, radius=1)
    image = rasters.smooth_random(1, 12, 12, seed=5)
    out = models.reference_run(path, image)
    np.testing.assert_allclose(out[0, 5, 7], image[0, 4:7, 6:9].mean(), rtol=1e-5)
    assert _card(path)["input"]["margin"] == 1


def test_identity_regressor_returns_its_input(tmp_path: Path) -> None:
    image = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    out = models.reference_run(models.identity_regressor(tmp_path / "id.onnx", bands=2), image)
    np.testing.assert_array_equal(out, image)


def test_autoencoder_scores_spikes_above_threshold(tmp_path: Path) -> None:
    path = models.autoencoder(tmp_path / "ae.onnx", bands=3, seed=0)
    spec = _card(path)["output"]["anomaly"]
    cal = spec["calibration"]
    image = rasters.smooth_random(3, 64, 64, seed=9)
    image[:, 30, 30] += 1.0
    error = ((models.reference_run(path, image) - image) ** 2).mean(axis=0)
    score = (error - cal["median"]) / (1.4826 * cal["mad"])
    assert score[30, 30] > 100 * spec["threshold"]
    far = np.ones_like(score, dtype=bool)
    far[28:33, 28:33] = False
    assert np.mean(score[far] > spec["threshold"]) < 0.2


def test_deepness_and_bare_models_have_no_card(tmp_path: Path) -> None:
    meta = _meta(models.deepness_segmenter(tmp_path / "deep.onnx"))
    assert "deepstrata" not in meta and meta["model_type"] == "segmentor"
    assert json.loads(meta["class_names"]) == {"0": "background", "1": "building"}
    assert _meta(models.no_card_model(tmp_path / "bare.onnx")) == {}


def test_broken_files_do_not_load(tmp_path: Path) -> None:
    for path in (models.write_corrupt_model(tmp_path / "corrupt.onnx"), models.write_not_onnx(tmp_path / "t.onnx")):
        with pytest.raises(ORT_ERRORS):
            models.reference_run(path, np.zeros((1, 8, 8)))


def test_every_card_passes_the_engine_validator(tmp_path: Path) -> None:
    card_module = pytest.importorskip("deepstrata.inference.engine.card")
    builders = [models.conv_segmenter, models.probability_segmenter, models.binary_segmenter,
                models.cropping_segmenter, models.fixed_size_segmenter, models.patch_classifier,
                models.regressor, models.identity_regressor, models.autoencoder]
    for builder in builders:
        parsed = card_module.parse_card(_card(builder(tmp_path / f"{builder.__name__}.onnx")))
        assert parsed.task in card_module.TASKS


def test_write_and_read_raster_roundtrip(tmp_path: Path) -> None:
    array = (rasters.smooth_random(2, 20, 30, seed=4) * 1000).astype(np.uint16)
    mask = np.ones((20, 30), dtype=bool)
    mask[:5, :5] = False
    path = rasters.write_raster(tmp_path / "r.tif", array, nodata=0, mask=mask, descriptions=["B4", "B3"])
    back, gt, wkt, nodata = rasters.read_raster(path)
    np.testing.assert_array_equal(back, array)
    assert gt == rasters.GEOTRANSFORM and "32633" in wkt and nodata == [0.0, 0.0]
    np.testing.assert_array_equal(rasters.read_mask(path), mask)
