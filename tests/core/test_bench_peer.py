"""benchmarks/bench_peer.py runs end to end at a small size (the figures themselves go to benchmarks/RESULTS.md)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ds_testing import deepness_peer

REPO = Path(__file__).resolve().parents[2]


def test_the_peer_benchmark_runs_and_prints_its_ratios() -> None:
    why = deepness_peer.unavailable_reason()
    if why:
        pytest.skip(why)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_peer.py"), "--size", "600"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for mode in ("bare", "engine", "deepness"):
        assert re.search(rf"^{mode}\s+600 px  process\s+[\d.]+ s  inside\s+[\d.]+ s  peak RSS\s+[\d.]+ MiB", out,
                         re.M), out
    assert re.search(r"^bare\s.*4 tiles of 512 px, overlap 76, batch 4", out, re.M), out  # 2 x 2 tiles
    agreement = float(re.search(r"class agreement engine vs deepness: ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    assert agreement > 0.99, out
    for label in ("deepness/engine wall time, processes", "engine/deepness peak RSS", "bare loop / engine process"):
        assert re.search(rf"{re.escape(label)}: [\d.]+", out), out
