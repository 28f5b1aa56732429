"""``python -m training anomaly``: spatial cross-validation against RX with known anomalies, and a fitted,
calibrated, exported model without them; the engine runs what it writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data_fixtures import write_raster
from deepstrata.inference import load_model
from training.custom import anomaly


def _scene(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """64 x 64 px, 4 correlated bands; 12 planted 2 x 2 patches whose spectra break the correlation (RX sees
    them too), and their truth raster."""
    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, (64, 64))
    data = np.stack([base + rng.normal(0, 0.1, (64, 64)) for _ in range(4)]).astype(np.float32) * 10 + 100
    truth = np.zeros((64, 64), np.uint8)
    for k in range(12):
        y, x = 4 + (k // 4) * 20, 4 + (k % 4) * 15
        data[:, y:y + 2, x:x + 2] += np.array([8.0, -8.0, 8.0, -8.0], np.float32)[:, None, None]
        truth[y:y + 2, x:x + 2] = 1
    return write_raster(tmp_path / "scene.tif", data), write_raster(tmp_path / "truth.tif", truth), truth


def test_known_anomalies_score_the_model_against_rx_on_held_out_blocks(tmp_path: Path) -> None:
    image, labels, truth = _scene(tmp_path)
    out = tmp_path / "model.onnx"
    argv = ["--image", str(image), "--labels", str(labels), "--out", str(out), "--block", "16", "--folds", "2",
            "--seeds", "1", "--epochs", "2", "--rounds", "1", "--components", "4", "--chip", "8"]
    assert anomaly.main(argv) == 0
    report = json.loads((tmp_path / "model.report" / "report.json").read_text())
    assert {r["fold"] for r in report["rows"]} == {1, 2}
    assert sum(r["anomalous"] for r in report["rows"]) == int(truth.sum())  # every known anomaly held out once
    assert report["summary"]["rx_auc"]["mean"] > 0.9  # the planted spectra are far out: RX finds them
    assert report["summary"]["network_auc"]["mean"] > 0.9
    assert report["paired"]["pairs"] == 2 and "sign_test_p" in report["paired"]
    card = load_model(str(out)).card
    assert card.task == "anomaly" and "cv_roc_auc" in card.training["metrics"]
    assert "differ from PyTorch's by at most" in report["engine"]
    readme = (tmp_path / "model.report" / "README.md").read_text()
    assert "RX (Reed & Yu), same training pixels" in readme and "sign test p" in readme


def test_without_known_anomalies_the_model_is_fitted_and_the_report_says_it_is_not_validated(tmp_path: Path) -> None:
    image, _, _ = _scene(tmp_path)
    out = tmp_path / "plain.onnx"
    assert anomaly.main(["--image", str(image), "--out", str(out), "--epochs", "1", "--rounds", "1",
                         "--components", "4", "--chip", "8", "--report", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "rows" not in report and "nothing could be scored" in report["verdict"]
    assert load_model(str(out)).card.output.anomaly is not None


def test_a_fold_without_anomalies_is_reported(tmp_path: Path) -> None:
    image, _, truth = _scene(tmp_path)
    one_block = truth.copy()
    one_block[32:] = 0
    one_block[:, 32:] = 0  # known anomalies in one 32 px block only: the other fold holds none
    labels = write_raster(tmp_path / "top.tif", one_block)
    argv = ["--image", str(image), "--labels", str(labels), "--out", str(tmp_path / "m.onnx"), "--block", "32",
            "--folds", "2", "--seeds", "1", "--epochs", "1", "--rounds", "1", "--components", "4", "--chip", "8"]
    assert anomaly.main(argv) == 0
    report = json.loads((tmp_path / "m.report" / "report.json").read_text())
    assert [f["message"] for f in report["findings"] if f["code"] == "fold_one_class"] != []
    assert len(report["rows"]) == 1
