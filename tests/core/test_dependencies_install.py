"""The installer for real: pip from PyPI into a temporary private folder, the offline path from a folder of
wheels built here, failures and cancel. The Python running the tests stands for QGIS's."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from deepstrata.dependencies import InstallCancelled, InstallFailed, install, prepare
from deepstrata.dependencies.pip import Plan
from deepstrata.dependencies.platforms import Facts, Gpu
from deepstrata.dependencies.requirements import ONNX, Requirement
from deepstrata.dependencies.runner import run_pip
from ds_testing.wheels import wheel

PINS = {"numpy": numpy.__version__}


def missing(name: str):
    def importer(module: str):
        if module == name:
            raise ImportError(f"No module named '{module}'")
        return __import__(module)
    return importer


def import_from(target: Path, module: str) -> str:
    """Import `module` in a fresh Python with `target` first on the path; its file."""
    code = f"import sys; sys.path.insert(0, {str(target)!r}); import {module}, numpy; print({module}.__file__, numpy.__file__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_real_install_from_pypi(tmp_path):
    """onnx from PyPI, with numpy pinned to the loaded version: onnx lands in the target, numpy does not."""
    setup = prepare(str(tmp_path / "profile"), requirements=(ONNX,), pins=PINS, gpu=Gpu(None),
                    importer=missing("onnx"))
    assert setup.plan.packages == ("onnx>=1.15",) and setup.plan.python == sys.executable
    target = Path(setup.plan.target)
    assert target == tmp_path / "profile" / "python" / "deepstrata-deps" / f"py{sys.version_info[0]}.{sys.version_info[1]}"
    lines: list[str] = []
    progress: list[float] = []
    try:
        result = install(setup, lines.append, progress.append)
    finally:
        sys.path[:] = [p for p in sys.path if p != str(target)]
    log = "\n".join(lines)
    assert f"numpy=={numpy.__version__}" in Path(setup.plan.constraints).read_text()
    assert "Successfully installed" in log and "--constraint" in lines[0]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert result.removed == ["numpy"]  # resolved at the pinned version, then removed: QGIS's own is used
    names = {p.name.split("-")[0].lower() for p in target.iterdir()}
    assert "onnx" in names and "numpy" not in names
    onnx_file, numpy_file = import_from(target, "onnx").split()
    assert onnx_file.startswith(str(target)) and not numpy_file.startswith(str(target))


def test_offline_install_from_a_folder_of_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "dstiny", "0.2", ("dstinydep>=1",))
    wheel(wheels, "dstinydep", "1.0")
    tiny = Requirement("dstiny", "dstiny", "0.1", "test package")
    setup = prepare(str(tmp_path / "profile"), wheels=str(wheels), requirements=(tiny,), pins={"dstinydep": "1.0"},
                    gpu=Gpu(None), importer=missing("dstiny"))
    assert setup.plan.command()[-4:] == ["--no-index", "--find-links", str(wheels), "dstiny>=0.1"]
    target = Path(setup.plan.target)
    try:
        result = install(setup)
        assert result.removed == ["dstinydep"]
        assert [s.describe() for s in result.after] == ["dstiny 0.2: ok"] and not result.restart_needed
    finally:
        sys.path[:] = [p for p in sys.path if p != str(target)]
        sys.modules.pop("dstiny", None)
    assert sorted(p.name for p in target.iterdir()) == ["dstiny", "dstiny-0.2.dist-info"]


def test_offline_failure_says_what_and_how(tmp_path):
    """No wheel in the folder: classified, with the manual command to run."""
    plan = Plan(sys.executable, str(tmp_path / "t"), os.devnull, ("dstiny-absent>=1",), str(tmp_path),
                python_version="3.11")
    with pytest.raises(InstallFailed) as caught:
        run_pip(plan)
    assert caught.value.kind == "no_wheel"
    assert "No ready-built package exists for this Python" in str(caught.value)
    assert "In a terminal, run:" in str(caught.value) and "--no-index" in str(caught.value)


def test_cancel_stops_pip(tmp_path):
    facts = Facts.here()
    plan = Plan(facts.executable, str(tmp_path / "t"), os.devnull, ("onnx>=1.15",), python_version="3.11")
    lines: list[str] = []
    with pytest.raises(InstallCancelled, match="cancelled"):
        run_pip(plan, lines.append, is_cancelled=lambda: len(lines) >= 1)
    assert not list((tmp_path / "t").glob("onnx*"))


def test_a_package_left_for_a_request_does_not_ask_for_a_restart(tmp_path):
    """The one-click install leaves dask-like packages (installed on request) out; that they are still missing
    afterwards is no reason to restart QGIS (it was, and the toolbar's install reported a failure)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "dstiny", "0.2")
    tiny = Requirement("dstiny", "dstiny", "0.1", "test package")
    later = Requirement("dslater", "dslater", "1.0", "a feature few use", optional=True, on_request=True)
    setup = prepare(str(tmp_path / "profile"), wheels=str(wheels), requirements=(tiny, later), pins={},
                    gpu=Gpu(None), importer=missing("dstiny"))
    assert setup.plan.packages == ("dstiny>=0.1",) and setup.installing == ("dstiny",)
    target = Path(setup.plan.target)
    try:
        result = install(setup)
        assert [s.describe() for s in result.after] == ["dstiny 0.2: ok", "dslater: missing (optional)"]
        assert not result.restart_needed
    finally:
        sys.path[:] = [p for p in sys.path if p != str(target)]
        sys.modules.pop("dstiny", None)
