"""The installer in the real QGIS desktop (Xvfb), in a fresh profile whose Python has no onnxruntime: the
message bar's Install..., a real pip run from PyPI into the profile's private folder, then Classify landforms."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "gui_install_check.sh"


@pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("qgis")), reason="needs qgis and xvfb-run")
def test_one_click_install_then_a_workflow_runs(tmp_path):
    done = subprocess.run([str(SCRIPT), str(tmp_path / "run")], capture_output=True, text=True, timeout=1500)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "onnxruntime importable at start: False" in report and "offer: True" in report
    assert "onnxruntime build: onnxruntime" in report and "--constraint" in report
    assert "Ready: no restart needed." in report and "offer removed: True" in report
    assert "toolbar device label: Device: CPU" in report
    assert "landforms.tif exists: True" in report
    target = tmp_path / "run" / "profiles" / "default" / "python" / "deepstrata-deps"
    assert f"onnxruntime from: {target}" in report
    assert not list(target.glob("py3.*/numpy")), "numpy must stay QGIS's own"
    assert (tmp_path / "run" / "installer_dialog.png").stat().st_size > 10_000
