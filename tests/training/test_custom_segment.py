"""``python -m training segment`` end to end on a tiny synthetic scene: it cross-validates against both baselines
with the paired tests, exports a model the plugin's engine runs, with a complete card, and writes the report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the random-forest baseline (training/requirements.txt)

from custom_fixtures import CLASSES, named_raster, stripe_polygons, stripes
from deepstrata.inference import load_model
from training.custom import cli
from training.data import band_stats
from training.workflow import engine_output

FAST = ["--folds", "2", "--seeds", "1", "--epochs", "2", "--width", "4", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("segment")
    image = named_raster(tmp / "scene.tif", stripes())
    labels = stripe_polygons(tmp / "map.geojson")
    out = tmp / "model.onnx"
    assert cli.segment_main(["--image", str(image), "--labels", str(labels), "--class-field", "class",
                             "--out", str(out), *FAST]) == 0
    return out, json.loads((tmp / "model.report" / "report.json").read_text())


def test_the_model_runs_in_the_plugin_and_its_card_is_complete(run: tuple[Path, dict]) -> None:
    out, report = run
    image = out.parent / "scene.tif"
    card = load_model(str(out)).card
    assert card.task == "segmentation" and [b.name for b in card.input.bands] == ["red", "nir"]
    assert [c.name for c in card.output.classes] == list(CLASSES) and len({c.color for c in card.output.classes}) == 3
    assert card.input.pixel_size_m == 30.0 and card.input.size_multiple == 4 and card.input.margin is not None
    assert card.input.normalization.method == "zscore"
    metrics = card.training["metrics"]
    assert {"cv_overall_accuracy", "cv_macro_f1", "cv_macro_f1_std", "majority_macro_f1",
            "random_forest_macro_f1"} <= set(metrics)
    assert card.training["command"].startswith("python -m training segment --image")
    assert card.training["data"][0]["sha256"] and card.training["labels"]["field"] == "class"
    output, _ = engine_output(out, image)
    assert output.shape == (48, 48) and set(np.unique(output)) <= {1, 2, 3}
    assert report["final"]["engine"]["agreement"] > 0.98


def test_the_card_normalisation_is_the_training_chips_statistics(run: tuple[Path, dict]) -> None:
    out, _ = run
    card = load_model(str(out)).card
    expected = band_stats(stripes()[None]).card()  # every pixel of the scene lies in a training chip here
    np.testing.assert_allclose(card.input.normalization.mean, expected["mean"], rtol=0.05, atol=0.2)
    np.testing.assert_allclose(card.input.normalization.std, expected["std"], rtol=0.1)


def test_report_has_both_baselines_the_tests_and_the_choices(run: tuple[Path, dict]) -> None:
    out, report = run
    assert {r["method"] for r in report["rows"]} == {"network", "majority", "random_forest"}
    assert len(report["rows"]) == 2 * 3 and {r["fold"] for r in report["rows"]} == {1, 2}
    for comparison in report["paired"]:
        assert comparison["baseline"] in ("majority", "random_forest")
        assert 0 <= comparison["runs"]["sign_test_p"] <= 1 and "wilcoxon_p" in comparison["runs"]
    summary = report["summary"]["random_forest"]["macro_f1"]
    assert summary["min"] <= summary["mean"] <= summary["max"] and summary["runs"] == 2
    assert report["summary"]["random_forest"]["overall_accuracy"]["mean"] > 0.8  # band 1 tells the stripes apart
    assert {"block", "chip", "epochs", "folds", "seeds", "width", "final_epochs", "margin"} <= set(report["choices"])
    assert report["choices"]["folds"]["why"] == "given on the command line"
    folder = out.parent / "model.report"
    readme = (folder / "README.md").read_text()
    assert "per-pixel random forest" in readme and "sign test p" in readme and "## Findings" in readme
    assert readme.index("## Findings") < readme.index("## Held-out scores")
    assert (folder / "network_confusion.png").stat().st_size > 0
