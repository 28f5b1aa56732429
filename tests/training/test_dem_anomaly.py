"""The terrain anomaly recipe (training/dem_anomaly.py) at toy size, the planted anomalies it is scored on
(training/terrain_anomalies.py) and the relief autoencoder (training/nets.py)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from deepstrata.inference.engine.model import load_model
from training.dem_anomaly import main, relief_score
from training.nets import ReliefAutoencoder
from training.terrain_anomalies import KINDS, plant, sites_in
from training.workflow import engine_output

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "bigtujunga" / "bigtujunga_320x240.tif"


def test_planted_anomalies_change_the_dem_only_in_their_footprint():
    rng = np.random.default_rng(0)
    dem = np.fromfunction(lambda r, c: 100 + 2.0 * r + 0.5 * c, (60, 60))
    dem[0, 0] = np.nan
    sites = np.array([[10, 10], [10, 40], [40, 10], [40, 40]])
    z, footprint, planted = plant(dem, sites, rng)
    assert [p.kind for p in planted] == list(KINDS)
    changed = ~np.isclose(z, dem, equal_nan=True)
    assert not (changed & ~footprint).any() and changed[footprint].mean() > 0.8
    assert z[10, 10] < dem[10, 10] - 10 and z[10, 40] > dem[10, 40] + 10    # pit down, mound up
    quarry = z[38:43, 8:13][footprint[38:43, 8:13]]
    assert np.ptp(quarry) == 0 and quarry[0] < np.nanmin(dem[38:43, 8:13])  # flat floor below the rim
    assert footprint[40, 40] and footprint.sum() > 4 and np.isnan(z[0, 0])


def test_sites_keep_their_distance_and_stay_inside_the_mask():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:90] = True
    sites = sites_in(mask, 50, spacing=12, rng=np.random.default_rng(1), edge=5)
    assert 5 <= len(sites) <= 50
    assert (sites[:, 0] >= 25).all() and (sites[:, 0] < 75).all() and (sites[:, 1] >= 35).all()
    gaps = np.abs(sites[:, None] - sites[None]).max(axis=2) + np.eye(len(sites), dtype=int) * 99
    assert gaps.min() >= 12


def test_relief_autoencoder_ignores_absolute_elevation_and_keeps_the_input_shape():
    torch.manual_seed(0)
    net = ReliefAutoencoder(radius=3, scale=20.0, width=4, depth=2).eval()
    z = torch.from_numpy(np.random.default_rng(2).normal(800, 30, (2, 1, 32, 32)).astype(np.float32))
    with torch.no_grad():
        out, shifted = net(z), net(z + 500.0)
    assert out.shape == z.shape
    torch.testing.assert_close(shifted - 500.0, out, atol=1e-2, rtol=0)
    assert net.size_multiple == 4 and net.encoder is net.autoencoder.encoder


def test_relief_score_is_the_absolute_tpi():
    dem = np.zeros((9, 9))
    dem[4, 4] = 9.0
    score = relief_score(dem, 1)
    assert score[4, 4] == pytest.approx(8.0) and score[4, 5] == pytest.approx(1.0) and score[0, 0] == 0.0


def test_dem_anomaly_recipe_calibrates_exports_and_scores_planted_anomalies(tmp_path):
    dem = tmp_path / "dem.tif"
    shutil.copy(SAMPLE, dem)
    out, reports = tmp_path / "anomaly.onnx", tmp_path / "reports"
    assert main(["--dem", str(dem), "--output", str(out), "--reports", str(reports), "--epochs", "1",
                 "--width", "4", "--chip", "32", "--stride", "32", "--block", "64", "--planted", "8",
                 "--threads", "1"]) == 0
    card = load_model(str(out), "cpu").card
    spec = card.output.anomaly
    assert card.task == "anomaly" and spec is not None and spec.error == "mae"
    assert spec.mad > 0 and spec.threshold > 0 and card.input.margin >= 10
    raw = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["deepstrata"])
    planted = json.loads((reports / "planted.json").read_text())
    assert raw["training"]["metrics"]["roc_auc"] == pytest.approx(planted["roc_auc"], abs=1e-4)
    assert planted["positives"] > 0 and planted["planted"] >= 4 and (reports / "planted_roc.png").exists()
    # The engine's score on normal terrain is centred by the calibration: its median is near 0.
    scores, result = engine_output(out, dem)
    assert result.task == "anomaly" and scores.shape == (240, 320)
    assert abs(float(np.nanmedian(scores))) < 1.5
