"""Static checks: the engine and the training tools are fully typed (mypy), and the whole tree is free of pyflakes/bugbear findings."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / ".build" / "plugins"


def test_engine_and_training_are_mypy_clean() -> None:
    pytest.importorskip("mypy")
    done = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--follow-imports=silent",
                           "--no-error-summary", "deepstrata/inference", "deepstrata/training",
                           "deepstrata/dependencies"], cwd=PLUGINS, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_lint_findings() -> None:
    pytest.importorskip("ruff")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F,E9,B",
                           "--line-length", "120", "--exclude", ".venv,.build", "."], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
