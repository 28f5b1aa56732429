"""benchmarks/bench_gpu.py works the first time it meets a GPU: here on the CPU provider, where GDAL cannot be
imported (as on the lent GPU machine), printing lines whose figures and ratios parse."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ds_testing.no_gdal import script_without_gdal

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"
FIELD = re.compile(r"(\S+)=(\S+)")


def _records(output: str, kind: str) -> list[dict[str, str]]:
    return [dict(FIELD.findall(line)) for line in output.splitlines() if line.startswith(kind + " ")]


@pytest.mark.parametrize("model, size", [("tiny", 512), ("landforms", 256)])
def test_bench_gpu_runs_on_cpu_without_gdal_and_prints_ratios(model: str, size: int) -> None:
    done = script_without_gdal(str(BENCH), ["--device", "cpu", "--size", str(size), "--models", model])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^versions .*onnxruntime \d+\.\d+.*GDAL not importable", out, re.MULTILINE), out
    assert re.search(r"^device onnxruntime CPU; nvidia-smi: ", out, re.MULTILINE), out
    plan = _records(out, "plan")
    assert len(plan) == 1 and plan[0]["model"] == model and int(plan[0]["tiles"]) >= 1
    results = _records(out, "RESULT")
    assert [r["mode"] for r in results] == ["bare", "engine"]  # IOBinding only on CUDA and TensorRT
    for r in results:
        assert r["model"] == model and r["device"] == "cpu" and r["provider"] == "CPUExecutionProvider"
        assert int(r["size"]) == size and float(r["seconds"]) > 0 and float(r["mpx_s"]) > 0
    ratio = _records(out, "RATIO")
    assert len(ratio) == 1 and ratio[0]["met"] in ("yes", "no") and float(ratio[0]["goal"]) == 0.8
    engine, bare = (float(r["mpx_s"]) for r in results[::-1])
    assert float(ratio[0]["engine/bare"]) == pytest.approx(engine / bare, rel=0.01)
    assert float(ratio[0]["engine/best_bare"]) == pytest.approx(engine / bare, rel=0.01)
