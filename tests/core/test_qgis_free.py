"""inference/ must stay QGIS-free: it runs from a CLI, on the GPU machine and in a distributed engine."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

INFERENCE = Path(__file__).resolve().parents[2] / "inference"


def test_no_qgis_or_qt_import_in_the_source() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(qgis|PyQt5|PyQt6|PySide\d?|sip)\b", re.MULTILINE)
    offenders = [p.name for p in INFERENCE.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_importing_and_running_the_engine_loads_no_qgis_module(tmp_path: Path) -> None:
    code = ("import sys, deepstrata.inference as e, deepstrata.inference.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('qgis', 'PyQt5', 'PyQt6')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": ":".join(sys.path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
