"""``python -m training regress`` end to end, and the training loop's regression task (masked MSE, RMSE)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")  # the random-forest baseline (training/requirements.txt)

from custom_fixtures import named_raster, stripes
from data_fixtures import write_raster
from deepstrata.inference import load_model
from training.custom import cli
from training.nets import UNet
from training.train import TrainConfig, train, validate
from training.workflow import engine_output


def test_regress_end_to_end(tmp_path: Path) -> None:
    data = stripes(seed=2)
    image = named_raster(tmp_path / "scene.tif", data)
    target = (3.0 * data[0] + 100.0).astype(np.float32)
    target[:6, :6] = -1.0                                     # nodata in the label raster: unlabelled
    labels = write_raster(tmp_path / "target.tif", target, nodata=-1.0)
    out = tmp_path / "value.onnx"
    assert cli.regress_main(["--image", str(image), "--labels", str(labels), "--out", str(out), "--folds", "2",
                             "--seeds", "1", "--epochs", "2", "--width", "4", "--report", str(tmp_path / "r")]) == 0
    card = load_model(str(out)).card
    assert card.task == "regression" and list(card.output.names) == ["value"] and card.output.classes == ()
    assert {"cv_rmse", "cv_mae", "cv_r2", "cv_rmse_std", "mean_rmse", "random_forest_rmse"} <= set(card.training["metrics"])
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {r["method"] for r in report["rows"]} == {"network", "mean", "random_forest"}
    assert report["summary"]["random_forest"]["r2"]["mean"] > 0.5             # band 1 carries the target
    assert report["summary"]["mean"]["rmse"]["mean"] > report["summary"]["random_forest"]["rmse"]["mean"]
    assert report["inputs"]["labels"]["labelled_pixels"] == 48 * 48 - 36
    output, _ = engine_output(out, image)
    assert output.shape == (48, 48) and report["final"]["engine"]["relative"] < 1e-3
    assert 50 < float(np.nanmean(output)) < 150                                # values in the target's units
    assert (tmp_path / "r" / "network_scatter.png").exists()


def test_the_loop_trains_regression_on_labelled_pixels_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = (2.0 * x[:, 0]).astype(np.float32)
    y[:, :2] = np.nan                                                          # unlabelled rows: no loss
    model = UNet(1, 1, width=4, depth=1)
    config = TrainConfig(epochs=15, batch_size=8, lr=0.02, weight_decay=0.0, patience=None, threads=1)
    result = train(model, (x, y), (x, y), config, "regression")
    assert result.metric == "rmse" and result.best_metric < 0.6 * result.val_metric[0]
    assert np.isfinite(result.train_loss).all()
    with torch.no_grad():
        predicted = model(torch.from_numpy(x))[:, 0].numpy()
    labelled = np.isfinite(y)
    expected = float(np.sqrt(np.mean((predicted[labelled] - y[labelled]) ** 2)))
    assert abs(validate(model, x, y, "regression", 5) - expected) < 1e-5
