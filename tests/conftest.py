"""Test-wide set-up: import this checkout as the package ``deepstrata`` whatever its folder is called."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _expose_package() -> None:
    plugins = REPO / ".build" / "plugins"
    link = plugins / "deepstrata"
    if not link.exists():
        try:
            plugins.mkdir(parents=True, exist_ok=True)
            link.symlink_to(REPO, target_is_directory=True)
        except OSError:  # read-only checkout: fall back to a private folder
            plugins = Path(tempfile.mkdtemp(prefix="deepstrata-path-"))
            (plugins / "deepstrata").symlink_to(REPO, target_is_directory=True)
    for path in (str(plugins), str(TESTS)):
        if path not in sys.path:
            sys.path.insert(0, path)


_expose_package()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session", autouse=True)
def inputs_are_never_modified():
    """Every test together must leave the sample data exactly as it was: no rewrites, no .aux.xml beside it."""
    folders = [TESTS / "data", REPO / "resources" / "samples", REPO / "training" / "datasets"]
    before = [_snapshot(f) for f in folders]
    yield
    for folder, was in zip(folders, before):
        now = _snapshot(folder)
        assert now == was, f"the test run modified {folder}: {sorted(set(now.items()) ^ set(was.items()))}"
