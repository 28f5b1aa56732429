"""The plugin through `qgis_process` (what scripts and CI use): JSON results, GeoTIFF output, errors, no onnxruntime."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from ds_testing import models, rasters

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "tools" / "qgis_process"
BINARY = Path("/usr/bin/qgis_process.bin")
DEM = REPO / "tests" / "data" / "bigtujunga" / "bigtujunga_320x240.tif"
INSTALL = "Check and install dependencies"  # the installer; then the manual pip command

pytestmark = pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} (QGIS's qgis_process) is not installed")


def qgis_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [str(WRAPPER), *args] if env is None else [str(BINARY), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})})


@pytest.fixture(scope="module")
def enabled():
    listing = qgis_process("plugins").stdout
    if "* deepstrata" not in listing:  # `make setup` enables it; a fresh QGIS profile may not have it yet
        assert qgis_process("plugins", "enable", "deepstrata").returncode == 0
    return True


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("qgis_process")
    shutil.copy(DEM, folder / DEM.name)  # QGIS may write .aux.xml statistics beside inputs
    models.conv_segmenter(folder / "seg.onnx", bands=1, classes=3, normalization={"method": "zscore",
                          "mean": [1000.0], "std": [250.0]}, name="qgis_process test model")
    models.conv_segmenter(folder / "rgb.onnx", bands=3, classes=3)
    return folder


def test_plugins_lists_deepstrata_as_loaded(enabled):
    result = qgis_process("plugins")
    assert result.returncode == 0
    assert "* deepstrata" in result.stdout.splitlines()


def test_list_shows_the_algorithms(enabled):
    listing = qgis_process("list").stdout
    assert "deepstrata:runmodel\tRun ONNX model on raster" in listing
    assert "deepstrata:modelinfo\tModel info" in listing
    assert "deepstrata:dependencies\tCheck and install dependencies" in listing


def test_run_model_json(enabled, work):
    out = work / "classes.tif"
    result = qgis_process("--json", "run", "deepstrata:runmodel", "--", f"INPUT={work / DEM.name}",
                          f"MODEL={work / 'seg.onnx'}", f"OUTPUT={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["results"]["OUTPUT"] == str(out)
    assert report["results"]["PROVIDER"] == "CPUExecutionProvider"
    assert report["algorithm_details"]["id"] == "deepstrata:runmodel"
    assert any("qgis_process test model" in line for line in report["log"]["info"])

    source, gt_in, wkt_in, _ = rasters.read_raster(work / DEM.name)
    classes, gt_out, wkt_out, nodata = rasters.read_raster(out)
    assert gt_out == pytest.approx(gt_in)
    assert osr.SpatialReference(wkt_out).GetAuthorityCode(None) == "32611"
    assert nodata == [0] and gdal.Open(str(out)).GetRasterBand(1).DataType == gdal.GDT_Byte
    logits = models.reference_run(work / "seg.onnx", (source.astype(np.float32) - 1000.0) / 250.0)
    assert float((classes[0] == logits.argmax(axis=0) + 1).mean()) >= 0.999


def test_run_model_without_model_uses_the_bundled_one(enabled, work):
    out = work / "landforms.tif"
    result = qgis_process("--json", "run", "deepstrata:runmodel", "--", f"INPUT={work / DEM.name}", f"OUTPUT={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any("landforms_geomorphon.onnx" in line for line in json.loads(result.stdout)["log"]["info"])
    ds = gdal.Open(str(out))
    forms = ds.ReadAsArray()
    assert set(np.unique(forms)) <= set(range(1, 11))  # the ten geomorphon forms
    assert {3, 6, 9} <= set(np.unique(forms))           # ridges, slopes and valleys in these mountains


def test_model_info_json(enabled, work):
    result = qgis_process("--json", "run", "deepstrata:modelinfo", "--", f"MODEL={work / 'rgb.onnx'}")
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(result.stdout)["results"]
    assert results["TASK"] == "segmentation" and results["BANDS"] == "b1, b2, b3"
    assert results["CLASSES"] == "1: class_1, 2: class_2, 3: class_3"


def test_bad_input_exits_non_zero_with_the_message(enabled, work):
    out = work / "never.tif"
    result = qgis_process("run", "deepstrata:runmodel", "--", f"INPUT={work / DEM.name}",
                          f"MODEL={work / 'rgb.onnx'}", f"OUTPUT={out}")
    assert result.returncode != 0
    assert "The model takes 3 bands (b1, b2, b3) but 'bigtujunga_320x240.tif' has 1 band" in \
        result.stdout + result.stderr
    assert not out.exists()


def test_without_onnxruntime(enabled, work, tmp_path):
    """An `onnxruntime` that fails to import, first on the path: the provider loads, running explains."""
    fake = tmp_path / "fake" / "onnxruntime"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('simulated: onnxruntime is not installed')\n")
    site = next((REPO / ".venv" / "lib").glob("python3*/site-packages"), None)
    path = os.pathsep.join(str(p) for p in (fake.parent, REPO / ".build" / "plugins", site) if p)
    env = {"PYTHONPATH": path, "QGIS_PLUGINPATH": str(REPO / ".build" / "plugins")}

    listing = qgis_process("list", env=env)
    assert "deepstrata:runmodel" in listing.stdout, listing.stderr
    out = work / "never.tif"
    result = qgis_process("run", "deepstrata:runmodel", "--", f"INPUT={work / DEM.name}",
                          f"MODEL={work / 'seg.onnx'}", f"OUTPUT={out}", env=env)
    assert result.returncode != 0
    assert INSTALL in result.stdout + result.stderr
    assert "simulated: onnxruntime is not installed" in result.stdout + result.stderr
    assert not out.exists()
    assert "-m pip install" in result.stdout + result.stderr

    report = qgis_process("--json", "run", "deepstrata:dependencies", env=env)
    assert report.returncode == 0, report.stdout + report.stderr
    results = json.loads(report.stdout)["results"]
    assert "onnxruntime: installed but does not import (simulated" in results["REPORT"]
    assert results["READY"] is False and "--target" in results["COMMAND"]
    version = f"py{sys.version_info[0]}.{sys.version_info[1]}"  # the Python of this QGIS
    assert results["TARGET"].endswith(os.path.join("python", "deepstrata-deps", version))
