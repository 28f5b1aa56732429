"""The plugin under Qt 6: no Qt 6 build of QGIS installs here (Debian 13's QGIS 3.40 is Qt 5), so a fresh
interpreter imports every shipped module under PyQt6 from PyPI through a small `qgis.PyQt` shim, with QGIS
stand-ins, loads the provider and its algorithms and starts the toolbar (tests/ds_testing/qt6_check.py).
metadata.txt's `supportsQt6` must say whether that works.
"""
from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ds_testing.shipped import REPO

CHECK = REPO / "tests" / "ds_testing" / "qt6_check.py"
WORKFLOWS = {"ClassifyLandformsAlgorithm", "MapGeologyAlgorithm", "DetectAnomaliesAlgorithm", "RunModelAlgorithm",
             "ModelInfoAlgorithm"}


@pytest.fixture(scope="module")
def qt6(tmp_path_factory) -> dict:
    if importlib.util.find_spec("PyQt6") is None:
        pytest.skip("PyQt6 is not installed: pip install -r requirements-dev.txt")
    spec = importlib.util.find_spec("deepstrata")
    assert spec is not None and spec.origin is not None
    plugins = Path(spec.origin).parent.parent  # the folder holding the package `deepstrata` (a link to REPO)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-I", str(CHECK), str(tmp_path_factory.mktemp("qt6") / "shim"),
                           str(plugins)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_plugin_loads_under_pyqt6(qt6: dict) -> None:
    assert qt6["problems"] == [], "Under PyQt6:\n" + "\n\n".join(qt6["problems"])
    checked = qt6["checked"]
    assert checked["qt"] == ["PyQt6"]  # PyQt5 never loaded
    assert checked["qgis"][0].endswith("shim/qgis")
    for module in ("deepstrata.plugin", "deepstrata.compat", "deepstrata.processing_provider.provider",
                   "deepstrata.processing_provider.class_outputs", "deepstrata.ui.toolbar"):
        assert module in checked["modules"]
    assert WORKFLOWS <= set(checked["algorithms"])  # each built its parameters
    assert checked["toolbar"] == ["DeepStrataLandforms", "DeepStrataGeology", "DeepStrataAnomalies",
                                  "DeepStrataFitAnomaly", "DeepStrataRunModel", "DeepStrataModelInfo"]


def test_metadata_claims_qt6_only_while_the_plugin_loads_under_pyqt6(qt6: dict) -> None:
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(REPO / "metadata.txt", encoding="utf-8")
    claimed = metadata.get("general", "supportsQt6", fallback="False").strip().lower() == "true"
    works = not qt6["problems"]
    assert claimed == works, (f"metadata.txt says supportsQt6={claimed}, but under PyQt6 the plugin "
                              + ("loads" if works else "fails:\n" + "\n\n".join(qt6["problems"])))
