"""Anomaly models that output their score directly (card output.anomaly.error "score"): card parsing and its
errors, the score raster (band 1 score, band 2 signed residual), and the polygons' depression/rise field."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from osgeo import gdal, ogr

from deepstrata.inference import RunOptions, run_model
from deepstrata.inference.engine.card import parse_card
from deepstrata.inference.engine.errors import CardError, ModelError
from deepstrata.inference.engine.model import load_model
from deepstrata.inference.workflows.anomaly_outputs import anomaly_polygons, relief_of, write_mask
from ds_testing import models, rasters

OFFSET = 6.0


def _card(**anomaly) -> dict:
    return models.card("anomaly", ["elevation"], activation="none", anomaly=anomaly)


def test_score_mode_parses_with_or_without_a_calibration():
    direct = parse_card(_card(error="score", threshold=2.5)).output.anomaly
    assert direct is not None and direct.direct and not direct.calibrated and direct.threshold == 2.5
    calibrated = parse_card(_card(error="score", threshold=2.5, calibration={"median": -1.0, "mad": 0.5})).output.anomaly
    assert calibrated is not None and calibrated.calibrated and calibrated.median == -1.0  # logits may be negative
    legacy = parse_card(_card(error="mae", calibration={"median": 1.0, "mad": 0.5})).output.anomaly
    assert legacy is not None and not legacy.direct and legacy.calibrated


@pytest.mark.parametrize("anomaly, message", [
    ({"error": "mse"}, "output.anomaly.calibration: is required for error 'mse'.*only error 'score'"),
    ({"error": "sigma"}, "output.anomaly.error.*'sigma' is not one of mse, mae, score"),
    ({"error": "mae", "calibration": {"median": -1.0, "mad": 1.0}}, "median.*at least 0"),
    ({"error": "score", "calibration": {"median": 0.0, "mad": 0.0}}, "mad.*greater than 0"),
    ({"error": "score", "threshold": "high"}, "threshold.*must be"),
])
def test_bad_anomaly_cards_name_the_field_and_the_fix(anomaly, message):
    with pytest.raises(CardError, match=message):
        parse_card(_card(**anomaly))


def _direct_model(path: Path, channels: int = 2, threshold: float = 3.0) -> Path:
    """Score = the input; signed residual = input - OFFSET (channel 2); a third channel when asked."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, "H", "W"])
    offset = helper.make_tensor("offset", TensorProto.FLOAT, [], [OFFSET])
    nodes = [helper.make_node("Sub", ["input", "offset"], ["residual"]),
             helper.make_node("Concat", ["input", "residual", "input"][:channels], ["output"], axis=1)]
    graph = helper.make_graph(nodes, "direct", [x], [y], [offset])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return models.save(model, path, _card(error="score", threshold=threshold))


def _scene(tmp_path: Path) -> tuple[Path, np.ndarray]:
    z = np.zeros((60, 80), np.float32)
    z[10:16, 10:20] = 10.0  # score 10, residual +4: a rise
    z[40:45, 50:60] = 4.0  # score 4, residual -2: a depression
    z[30, 5] = np.nan
    return rasters.write_raster(tmp_path / "dem.tif", z, nodata=float("nan")), z


def test_direct_scores_and_signed_residual_reach_the_raster_and_the_polygons(tmp_path: Path):
    model = _direct_model(tmp_path / "direct.onnx")
    dem, z = _scene(tmp_path)
    score_path = str(tmp_path / "score.tif")
    run_model(str(model), str(dem), score_path, RunOptions(device="cpu"))
    ds = gdal.Open(score_path)
    assert ds.RasterCount == 2
    assert [ds.GetRasterBand(i).GetDescription() for i in (1, 2)] == ["anomaly score", "signed residual"]
    score, residual = ds.GetRasterBand(1).ReadAsArray(), ds.GetRasterBand(2).ReadAsArray()
    valid = np.isfinite(z)
    np.testing.assert_allclose(score[valid], z[valid])  # uncalibrated: the graph's score as it is
    np.testing.assert_allclose(residual[valid], z[valid] - OFFSET)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    assert score[30, 5] == pytest.approx(nodata)
    ds = None
    stats = write_mask(score_path, 3.0, str(tmp_path / "mask.tif"))
    assert stats.flagged == 60 + 50
    out = str(tmp_path / "patches.gpkg")
    assert anomaly_polygons(str(tmp_path / "mask.tif"), score_path, out) == 2
    vector = ogr.Open(out)
    found = sorted((f["pixels"], f["relief"], round(f["mean_residual"], 4)) for f in vector.GetLayer(0))
    assert found == [(50, "depression", -2.0), (60, "rise", 4.0)]


def test_reconstruction_models_keep_one_band_and_no_relief_field(tmp_path: Path):
    model = models.autoencoder(tmp_path / "ae.onnx", bands=1, threshold=0.5)
    dem, _ = _scene(tmp_path)
    run_model(str(model), str(dem), str(tmp_path / "score.tif"), RunOptions(device="cpu"))
    assert gdal.Open(str(tmp_path / "score.tif")).RasterCount == 1
    write_mask(str(tmp_path / "score.tif"), 0.5, str(tmp_path / "mask.tif"))
    anomaly_polygons(str(tmp_path / "mask.tif"), str(tmp_path / "score.tif"), str(tmp_path / "p.gpkg"))
    vector = ogr.Open(str(tmp_path / "p.gpkg"))
    names = [d.GetName() for d in vector.GetLayer(0).schema]
    assert names == ["area_m2", "pixels", "peak_score", "mean_score"]


def test_a_score_model_with_too_many_channels_is_refused(tmp_path: Path):
    with pytest.raises(ModelError, match="error 'score' outputs the score.*but it outputs 3 channels"):
        load_model(str(_direct_model(tmp_path / "three.onnx", channels=3)), "cpu")


def test_relief_names():
    assert [relief_of(v) for v in (-0.5, 0.25, 0.0, None, float("nan"))] == ["depression", "rise", "", "", ""]


def test_shipped_terrain_model_card_is_a_scaled_nan_score_model():
    path = Path(__file__).resolve().parents[2] / "resources" / "models" / "anomaly_dem.onnx"
    card = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["deepstrata"])
    parsed = parse_card(card)
    assert parsed.input.nodata == "nan" and parsed.input.scale is not None and parsed.input.scale.input == "scale"
    assert parsed.output.anomaly is not None and parsed.output.anomaly.direct
    assert parsed.input.margin >= 2 * parsed.input.scale.max_cells
