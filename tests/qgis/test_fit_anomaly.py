"""deepstrata:fitanomaly and Detect anomalies' 'Fit a model to this raster' and per-scene threshold: files written
on the input's grid, the saved model reruns through Detect anomalies with the same scores, a clear message
without the `onnx` package."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from qgis.core import QgsProcessingException

from qgis_support import RecordingFeedback, read
from ds_testing import rasters

EPSG = 32633
GEOTRANSFORM = (500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0)


def run(alg: str, parameters: dict, feedback=None) -> dict:
    import processing

    return processing.run(f"deepstrata:{alg}", parameters, feedback=feedback)


@pytest.fixture
def stack(tmp_path):
    """5 bands, 90 x 80 px, two background materials and a planted 2 x 2 patch."""
    rng = np.random.default_rng(5)
    materials = rng.uniform(100, 200, (2, 5))
    share = rng.uniform(0, 1, 90 * 80)[:, None]
    cube = (share * materials[0] + (1 - share) * materials[1] + rng.normal(0, 2, (90 * 80, 5))).T
    cube = cube.reshape(5, 90, 80)
    cube[:, 30:32, 40:42] = np.array([150, 90, 210, 120, 160])[:, None, None]
    return rasters.write_raster(tmp_path / "stack.tif", cube.astype(np.float32), geotransform=GEOTRANSFORM,
                                epsg=EPSG)


def test_fit_writes_model_score_and_mask_on_the_input_grid(ds_provider, stack, tmp_path):
    feedback = RecordingFeedback()
    out = run("fitanomaly", {"INPUT": str(stack), "MODEL": str(tmp_path / "fitted"), "OUTPUT": str(tmp_path / "s.tif"),
                             "OUTPUT_MASK": str(tmp_path / "m.tif")}, feedback)
    assert out["MODEL"] == str(tmp_path / "fitted.onnx") and (tmp_path / "fitted.onnx").is_file()
    score, transform, crs, _ = read(tmp_path / "s.tif")
    mask = read(tmp_path / "m.tif")[0][0]
    assert transform == pytest.approx(GEOTRANSFORM) and "32633" in crs
    assert mask[30:32, 40:42].all()
    assert 0.05 <= out["ANOMALY_PERCENT"] <= 0.3
    assert any("numpy; no PyTorch" in line for line in feedback.infos)
    from deepstrata.inference import model_info

    card = model_info(out["MODEL"])["card"]
    assert card["training"]["command"].startswith("processing.run('deepstrata:fitanomaly', {'INPUT': ")
    assert [b["name"] for b in card["input"]["bands"]] == [f"band {i}" for i in range(1, 6)]

    # the saved model reruns through Detect anomalies with the same scores
    again = run("detectanomalies", {"INPUT": str(stack), "MODEL": out["MODEL"], "OUTPUT": str(tmp_path / "s2.tif")})
    assert np.allclose(read(tmp_path / "s2.tif")[0], score, atol=1e-5)
    assert again["ANOMALY_PIXELS"] == out["ANOMALY_PIXELS"]


def test_detect_anomalies_fits_on_request_with_the_chosen_bands(ds_provider, stack, tmp_path):
    feedback = RecordingFeedback()
    out = run("detectanomalies", {"INPUT": str(stack), "FIT": True, "BANDS": [1, 2, 3],
                                  "OUTPUT": str(tmp_path / "s.tif")}, feedback)
    assert 0.05 <= out["ANOMALY_PERCENT"] <= 0.3
    assert any("3 bands" in line and "Fitted" in line for line in feedback.infos)
    assert not feedback.warnings

    saved = run("fitanomaly", {"INPUT": str(stack), "OUTPUT": str(tmp_path / "s2.tif")})["MODEL"]
    run("detectanomalies", {"INPUT": str(stack), "FIT": True, "MODEL": saved, "OUTPUT": str(tmp_path / "s3.tif")},
        feedback)
    assert any("the model chosen for 'Model' is not used" in line for line in feedback.warnings)


def test_recalibrated_threshold_flags_the_share_asked(ds_provider, stack, tmp_path):
    feedback = RecordingFeedback()
    out = run("fitanomaly", {"INPUT": str(stack), "OUTPUT": str(tmp_path / "s.tif")})
    again = run("detectanomalies", {"INPUT": str(stack), "MODEL": out["MODEL"], "THRESHOLD_MODE": 1,
                                    "FLAG_PERCENT": 2.0, "OUTPUT": str(tmp_path / "s2.tif")}, feedback)
    assert again["ANOMALY_PERCENT"] == pytest.approx(2.0, abs=0.1)
    assert any("recalibrated on this scene" in line for line in feedback.infos)


def test_without_onnx_the_fit_says_how_to_install_it(ds_provider, stack, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(QgsProcessingException, match="Check and install dependencies"):
        run("fitanomaly", {"INPUT": str(stack), "MODEL": str(tmp_path / "m.onnx"), "OUTPUT": str(tmp_path / "s.tif")})
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "s.tif").exists()


def test_bundled_spectral_model_recalibrated_on_the_sample_flags_a_thousandth(ds_provider, tmp_path):
    """The bundled sample flags (almost) nothing at the fixed default; recalibrating on it flags 0.1 %."""
    import shutil
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2] / "resources" / "samples"
    for name in ("LC80200392015216LGN00_B2-B7_sample.tif", "LC80200392015216LGN00_MTL.txt"):
        shutil.copy(samples / name, tmp_path / name)
    feedback = RecordingFeedback()
    out = run("detectanomalies", {"INPUT": str(tmp_path / "LC80200392015216LGN00_B2-B7_sample.tif"),
                                  "THRESHOLD_MODE": 1, "OUTPUT": str(tmp_path / "s.tif")}, feedback)
    assert out["ANOMALY_PERCENT"] == pytest.approx(0.1, abs=0.01)
    assert any("Threshold recalibrated on this scene" in line and "the model's own threshold is" in line
               for line in feedback.infos)
