"""The shipped terrain anomaly model (resources/models/anomaly_dem.onnx) through the plugin's engine on a real DEM
it never saw (the Minnesota 1 m lidar): it beats both baselines on planted anomalies, invents no relief at the
raster's border or beside nodata holes, and gives every valid cell a score."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from training.terrain_anomalies import plant_scene
from training.terrain_anomaly_data import load, pixel_auc, relative_relief, robust_z
from training.terrain_anomaly_report import holes, run, write_like

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "resources" / "models" / "anomaly_dem.onnx"
DEM = REPO / "training" / "datasets" / "minnesota_lidar" / "dem.tif"
CELLS = 16  # the card's default search distance in cells


@pytest.fixture(scope="module")
def dem():
    os.environ["GDAL_PAM_ENABLED"] = "NO"
    return load(str(DEM))


@pytest.fixture(scope="module")
def natural(dem):
    return run(MODEL, str(DEM))


def _threshold() -> float:
    from deepstrata.inference.engine.model import load_model

    spec = load_model(str(MODEL), "cpu").card.output.anomaly
    assert spec is not None
    return spec.threshold


def test_every_valid_cell_keeps_a_finite_score_and_residual(dem, natural):
    score, residual = natural
    valid = np.isfinite(dem.elevation)
    assert np.isfinite(score[valid]).all() and np.isfinite(residual[valid]).all()
    assert (score[valid] >= _threshold()).mean() <= 0.001  # natural terrain, the card's fixed threshold


def test_the_frame_is_not_flagged_more_than_the_interior(dem, natural):
    score = natural[0]
    frame = np.zeros(score.shape, bool)
    frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = True, True, True, True
    # at a threshold that flags 1 % of the interior, so both rates are measurable
    cut = np.quantile(score[~frame], 0.99)
    assert (score[frame] >= cut).mean() <= 1.5 * (score[~frame] >= cut).mean()
    at_default = (score[frame] >= _threshold()).mean()
    assert at_default <= max(1.5 * (score[~frame] >= _threshold()).mean(), 1 / frame.sum())


def test_nodata_holes_invent_no_relief_beside_them(dem, natural, tmp_path):
    punched = holes(dem.elevation.shape, seed=3, count=6)
    score = run(MODEL, write_like(tmp_path / "holes.tif", np.where(punched, np.nan, dem.elevation), str(DEM)))[0]
    assert np.isnan(score[punched]).all() and np.isfinite(score[~punched]).all()
    beside = ndimage.binary_dilation(punched, iterations=3) & ~punched
    frame = np.zeros(score.shape, bool)
    frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = True, True, True, True
    rest = ~punched & ~beside & ~frame
    cut = np.quantile(score[rest], 0.99)
    assert (score[beside] >= cut).mean() <= 1.5 * (score[rest] >= cut).mean()


def test_the_model_beats_both_baselines_on_planted_anomalies(dem, tmp_path):
    scene = plant_scene(dem.elevation, dem.cell, seed=5, per_kind=4)
    score = run(MODEL, write_like(tmp_path / "planted.tif", scene.elevation, str(DEM)))[0]
    pos, neg = scene.footprint, scene.normal
    search = CELLS * dem.cell[0]
    model = pixel_auc(score, pos, neg)
    relief = pixel_auc(relative_relief(scene.elevation, dem.cell, search), pos, neg)
    robust = pixel_auc(robust_z(scene.elevation, dem.cell, search), pos, neg)
    assert model >= 0.9 and model > max(relief, robust) + 0.03, (model, relief, robust)
