"""The engine is fully typed: mypy finds nothing in inference/ (STYLE.md: small files, real types)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / ".build" / "plugins"


def test_inference_is_mypy_clean() -> None:
    pytest.importorskip("mypy")
    done = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--follow-imports=silent",
                           "--no-error-summary", "deepstrata/inference"], cwd=PLUGINS, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
