"""Make the companion package importable as ``training`` (as ``python -m training`` sees it from the repo root),
and this folder's helpers (data_fixtures)."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
HERE = str(Path(__file__).resolve().parent)  # data_fixtures
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)
