"""A model made for Deepness through `qgis_process run deepstrata:runmodel`: one with Deepness metadata runs as it
is; one with none runs once its task and class names are given, and without them says how to give them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ds_testing.deepness_models import MODELS, PEER

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "tools" / "qgis_process"
pytestmark = [pytest.mark.skipif(not Path("/usr/bin/qgis_process.bin").exists(), reason="qgis_process is missing"),
              pytest.mark.skipif(not MODELS.is_dir(), reason=f"the peer Deepness's test models are not at {MODELS}")]


def _run(*parameters: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WRAPPER), "--json", "run", "deepstrata:runmodel", "--", *parameters],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


@pytest.fixture(scope="module")
def fotomap(tmp_path_factory) -> Path:
    return Path(shutil.copy(PEER / "dummy_fotomap_small.tif", tmp_path_factory.mktemp("fotomap") / "fotomap.tif"))


def test_a_two_output_deepness_segmentor(fotomap: Path, tmp_path: Path) -> None:
    out = tmp_path / "drinks.tif"
    done = _run(f"INPUT={fotomap}", f"MODEL={MODELS / 'dummy_segmentation_models/two_outputs_softmax_bsx2x512x512.onnx'}",
                f"OUTPUT={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["results"]["OUTPUT"] == str(out)
    ds = gdal.Open(str(out))
    ds.GetGeoTransform()
    assert ds.RasterCount == 2
    assert [ds.GetRasterBand(b).GetCategoryNames()[1:3] for b in (1, 2)] == [["Coffee", "Tea"], ["Juice", "Beer"]]


def test_a_model_without_metadata_needs_its_task(fotomap: Path, tmp_path: Path) -> None:
    model = MODELS / "dummy_segmentation_models/dummy_model.onnx"
    out = tmp_path / "rgb.tif"
    refused = _run(f"INPUT={fotomap}", f"MODEL={model}", f"OUTPUT={out}")
    assert refused.returncode != 0
    assert "carries no DeepStrata card and no Deepness metadata" in refused.stdout + refused.stderr
    assert "set Task (segmentation or regression)" in refused.stdout + refused.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir()]
    done = _run(f"INPUT={fotomap}", f"MODEL={model}", f"OUTPUT={out}", "TASK=1", "CLASSES=red,green,blue",
                "THRESHOLD=0", "SMOOTHING=1")
    assert done.returncode == 0, done.stdout + done.stderr
    ds = gdal.Open(str(out))
    ds.GetGeoTransform()
    assert ds.GetRasterBand(1).GetCategoryNames()[1:4] == ["red", "green", "blue"]
    values = ds.GetRasterBand(1).ReadAsArray()
    source = gdal.Open(str(fotomap))  # kept while its bands are read
    red, green, blue = (source.GetRasterBand(b).ReadAsArray().astype(float) for b in (1, 2, 3))
    expected = np.argmax(np.stack([red, green, blue]) ** 8, axis=0) + 1  # the model is x^8 per channel
    assert (values == expected).mean() > 0.999
