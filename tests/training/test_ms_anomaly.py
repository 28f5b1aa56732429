"""The multispectral anomaly recipe: planting materials, the compressed score, and the shipped model run by the
plugin's engine on the real Landsat 8 crop with a planted patch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from osgeo import gdal

from deepstrata.inference.engine.model import model_info

from training import ms_anomaly
from training.fit_anomaly import WhitenedAutoencoder, pixel_errors, whitening
from training.sensors import calibrate, to_oli_dn, write_raster
from training.workflow import engine_output

gdal.UseExceptions()

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "resources" / "models" / "anomaly_multispectral.onnx"


def test_plant_mixes_materials_into_square_patches_inside_the_mask_only() -> None:
    rng = np.random.default_rng(0)
    data = np.full((6, 60, 60), 9000.0)
    where = np.zeros((60, 60), dtype=bool)
    where[10:50, 10:50] = True
    planted, truth, sites = ms_anomaly.plant(data, where, 6, sun=None, rng=rng)
    assert len(sites) == 6 and not truth[~where].any()
    assert [s[0] for s in sites] == list(ms_anomaly.MATERIALS)  # one of each, in turn
    np.testing.assert_array_equal(planted[:, ~truth], data[:, ~truth])
    for material, y, x, half in sites:
        patch = planted[:, y - half:y + half + 1, x - half:x + half + 1]
        assert truth[y - half:y + half + 1, x - half:x + half + 1].all()
        target = to_oli_dn(np.array(ms_anomaly.MATERIALS[material]))
        abundance = (patch[:, 0, 0] - 9000.0) / (target - 9000.0)
        np.testing.assert_allclose(abundance, abundance[0], rtol=1e-9)  # one mixture for every band
        assert 0.3 <= abundance[0] <= 1.0


def test_compressed_model_scores_log1p_of_the_whitened_error() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 6, 12, 12)).astype(np.float32)
    mean, basis, scale = whitening(x[0].reshape(6, -1).T.astype(np.float64), components=6, trim=0.0)
    torch.manual_seed(0)
    plain = pixel_errors(WhitenedAutoencoder(mean, basis, scale), x)
    torch.manual_seed(0)
    compressed = pixel_errors(WhitenedAutoencoder(mean, basis, scale, compress=True), x)
    np.testing.assert_allclose(compressed, np.log1p(plain), rtol=1e-4, atol=1e-6)


def test_shipped_model_flags_a_planted_gossan_on_the_real_landsat_scene(tmp_path: Path) -> None:
    card = model_info(str(SHIPPED))["card"]
    assert [b["name"] for b in card["input"]["bands"]] == ["B2", "B3", "B4", "B5", "B6", "B7"]
    anomaly = card["output"]["anomaly"]
    assert anomaly["calibration"]["mad"] > 0 and anomaly["threshold"] > 3
    assert card["training"]["metrics"]["roc_auc"] > 0.9 and card["training"]["command"].endswith("ms-anomaly")
    scene = calibrate(ms_anomaly.SCENES[0])  # the Landsat 8 crop, OLI DN
    data = scene.model_input[:, :128, :128].astype(np.float64)
    box = (slice(None), slice(60, 65), slice(60, 65))
    data[box] = to_oli_dn(np.array(ms_anomaly.MATERIALS["hematite gossan"])[:, None, None], scene.sun_elevation)
    path = write_raster(tmp_path / "gossan.tif", data, scene, ms_anomaly.OLI_BANDS)
    scores, run = engine_output(SHIPPED, path, threads=1)
    assert run.task == "anomaly" and scores.shape == (128, 128)
    assert np.nanmin(scores[60:65, 60:65]) >= anomaly["threshold"]
    assert np.nanmedian(scores) < 3  # ordinary pixels score like the calibration's normal pixels
