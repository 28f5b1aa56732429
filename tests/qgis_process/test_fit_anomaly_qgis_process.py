"""qgis_process run deepstrata:fitanomaly, as docs/workflows/anomalies.md shows it: the model file, the score on the
input's grid, about 0.1 % flagged; the saved model reruns through deepstrata:detectanomalies with the same scores."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from osgeo import gdal

from qgis_process.test_qgis_process import BINARY, REPO, enabled, qgis_process  # noqa: F401 (a fixture)

SAMPLE = REPO / "resources" / "samples" / "LC80200392015216LGN00_B2-B7_sample.tif"

pytestmark = [pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} (QGIS's qgis_process) is not installed"),
              pytest.mark.usefixtures("enabled")]


def run(algorithm: str, **parameters: object) -> dict:
    done = qgis_process("--json", "run", algorithm, "--", *(f"{k}={v}" for k, v in parameters.items()))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.find("{"):])["results"]


def test_fit_then_reuse_the_model(tmp_path):
    scene = tmp_path / SAMPLE.name
    shutil.copy(SAMPLE, scene)
    fitted = run("deepstrata:fitanomaly", INPUT=scene, MODEL=tmp_path / "scene_anomaly.onnx",
                 OUTPUT=tmp_path / "score.tif")
    assert fitted["MODEL"] == str(tmp_path / "scene_anomaly.onnx")
    assert fitted["ANOMALY_PERCENT"] == pytest.approx(0.1, abs=0.02)
    score = gdal.Open(str(tmp_path / "score.tif"))
    assert score.GetGeoTransform() == gdal.Open(str(scene)).GetGeoTransform()
    again = run("deepstrata:detectanomalies", INPUT=scene, MODEL=fitted["MODEL"], OUTPUT=tmp_path / "again.tif")
    assert again["ANOMALY_PIXELS"] == fitted["ANOMALY_PIXELS"]
    assert np.allclose(gdal.Open(str(tmp_path / "again.tif")).ReadAsArray(), score.ReadAsArray(), atol=1e-5)
