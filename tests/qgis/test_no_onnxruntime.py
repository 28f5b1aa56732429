"""Without onnxruntime the provider still loads, and every way of running says how to install it."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from qgis.core import QgsProcessingException

INSTALL = "Check and install dependencies"  # the installer; the manual pip command follows it
MANUAL = "-m pip install --disable-pip-version-check --no-input --upgrade --target"


@pytest.fixture
def without_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError


def test_algorithms_explain_what_is_missing(ds_provider, without_onnxruntime, dem_segmenter, dem, tmp_path):
    import processing

    assert INSTALL in ds_provider.warningMessage()
    for algorithm in ds_provider.algorithms():
        ok, message = algorithm.canExecute()
        if algorithm.name() == "dependencies":  # the installer itself runs without onnxruntime
            assert ok
            continue
        assert not ok and INSTALL in message and MANUAL in message and "restart QGIS" in message
        assert "deepstrata-deps" in message and "numpy==" in message
    out = tmp_path / "o.tif"
    with pytest.raises(QgsProcessingException, match=INSTALL):
        processing.run("deepstrata:runmodel", {"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out)})
    with pytest.raises(QgsProcessingException, match=INSTALL):
        processing.run("deepstrata:modelinfo", {"MODEL": str(dem_segmenter)})
    assert not out.exists()


def test_device_summary_without_onnxruntime(without_onnxruntime):
    from deepstrata.ui.device import device_summary

    summary = device_summary()
    assert summary.label == "No onnxruntime" and summary.provider is None
    assert INSTALL in summary.tooltip


SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["onnxruntime"] = None
    from qgis.core import QgsApplication
    app = QgsApplication([], False)
    app.initQgis()
    import deepstrata
    plugin = deepstrata.classFactory(None)
    plugin.initProcessing()
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("deepstrata")
    print("ALGS", sorted(a.id() for a in provider.algorithms()))
    print("CAN", registry.algorithmById("deepstrata:runmodel").canExecute()[0])
    print("DEPS", registry.algorithmById("deepstrata:dependencies").canExecute()[0])
    print("LOADED", "onnxruntime" in sys.modules and sys.modules["onnxruntime"] is not None)
    plugin.unload()
    print("AFTER", registry.providerById("deepstrata"))
""")


def test_fresh_python_without_onnxruntime_loads_the_provider(tmp_path):
    """A clean interpreter (no module imported yet) where onnxruntime cannot be imported at all."""
    import deepstrata

    plugins = os.path.dirname(os.path.dirname(os.path.abspath(deepstrata.__file__)))  # the folder holding it
    path = os.pathsep.join([plugins] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line[:3] in ("ALG", "CAN", "LOA", "AFT", "DEP"))
    assert lines["ALGS"] == ("['deepstrata:classifylandforms', 'deepstrata:dependencies', 'deepstrata:detectanomalies', "
                             "'deepstrata:fitanomaly', 'deepstrata:mapgeology', 'deepstrata:modelinfo', "
                             "'deepstrata:runmodel']")
    assert lines["CAN"] == "False" and lines["DEPS"] == "True"
    assert lines["LOADED"] == "False"
    assert lines["AFTER"] == "None"
