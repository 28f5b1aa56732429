"""``python -m training dem-anomaly`` at toy size: it fits, calibrates a fixed threshold, exports a card of the
terrain contract (NaN nodata, scale input, direct score) and reports every DEM it is asked about with both
baselines, through the plugin's engine."""
from __future__ import annotations

import json

import onnx
import pytest

from deepstrata.inference.engine.model import load_model
from training.dem_anomaly import main


def test_the_recipe_fits_calibrates_exports_and_reports(tmp_path):
    out, reports = tmp_path / "anomaly.onnx", tmp_path / "reports"
    assert main(["--output", str(out), "--reports", str(reports), "--train", "vermont_90m", "--seeds", "1",
                 "--steps", "60", "--per-kind", "2", "--evaluate", "vermont_90m"]) == 0
    model = load_model(str(out), "cpu")
    card = model.card
    spec = card.output.anomaly
    assert card.task == "anomaly" and spec is not None and spec.direct and not spec.calibrated
    assert card.input.nodata == "nan" and card.input.scale is not None and card.input.scale.input == "scale"
    assert card.input.normalization.method == "none" and card.input.margin >= 2 * card.input.scale.max_cells
    results = json.loads((reports / "results.json").read_text())
    assert results["threshold"] == spec.threshold
    (row,) = results["results"]
    assert row["name"] == "vermont_90m" and row["split"] == "training"
    assert set(row["auc"]) == {"model", "relative_relief", "robust_z"} and 0.5 < row["auc"]["model"] <= 1.0
    assert set(row["kinds"]) == {"pit", "mound", "quarry", "embankment", "spike", "void", "stripe"}
    raw = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["deepstrata"])
    assert raw["training"]["metrics"]["threshold"] == pytest.approx(spec.threshold)
    assert (reports / "tables.md").exists() and not list(reports.glob("*.jpg"))  # pictures only of the report's DEMs
