"""The command line: python -m deepstrata.inference run | info | providers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from osgeo import gdal

from ds_testing import models
from ds_testing.paths import DEM, LANDSAT


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=":".join(sys.path))
    return subprocess.run([sys.executable, "-m", "deepstrata.inference", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_run_writes_the_output_and_reports_the_provider(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4)
    out = tmp_path / "out.tif"
    done = cli("run", "--model", str(model), "--input", str(LANDSAT), "--output", str(out), "--bands", "1,2,3",
               "--tile-size", "48", "--batch-size", "2", "--confidence", str(tmp_path / "conf.tif"))
    assert done.returncode == 0, done.stderr
    assert "on CPUExecutionProvider" in done.stdout and "256x256 px" in done.stdout
    assert "100%" in done.stderr  # the progress bar
    classes = gdal.Open(str(out)).ReadAsArray()
    assert classes.shape == (256, 256) and set(np.unique(classes)) <= {1, 2, 3, 4}
    assert (tmp_path / "conf.tif").exists() and (tmp_path / "out.qml").exists()


def test_errors_are_one_line_with_a_non_zero_exit(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4)
    done = cli("run", "--model", str(model), "--input", str(DEM), "--output", str(tmp_path / "o.tif"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The model takes 3 bands")
    assert not (tmp_path / "o.tif").exists()
    done = cli("run", "--model", str(tmp_path / "none.onnx"), "--input", str(DEM), "--output", str(tmp_path / "o.tif"))
    assert done.returncode == 1 and done.stderr.strip().startswith("error: Model file not found")
    done = cli("run", "--model", str(model), "--input", str(LANDSAT), "--output", str(tmp_path / "o.tif"),
               "--bands", "x")
    assert done.returncode == 2 and "is not a comma-separated list of band numbers" in done.stderr


def test_info_prints_the_card(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4)
    done = cli("info", "--model", str(model))
    assert done.returncode == 0 and "Task: segmentation" in done.stdout and "4: class_4" in done.stdout
    info = json.loads(cli("info", "--model", str(model), "--json").stdout)
    assert info["card"]["task"] == "segmentation" and info["provider"] == "CPUExecutionProvider"
    assert cli("providers").stdout.strip().splitlines()[-1] == "CPUExecutionProvider"
