"""The engine against bare onnxruntime on a GPU (issue #14): throughput on the same tiles, without GDAL.

Made for the lent GPU machine (no GDAL, no QGIS there; benchmarks/README.md says how to run it there), and runs
anywhere with `--device cpu`. For each model, on a synthetic array of --size x --size pixels in memory:

  bare             the model's own onnxruntime session (session.run) over exactly the engine's batches: the
                   engine's plan and reader (pipeline.tile_rows over an ArraySource) cut every batch before the
                   clock starts, so only the model runs; pure model time, the limit on that grid;
  bare_iobinding   the same with IOBinding (the input copied to the device once, the outputs bound on the device
                   and copied back), on CUDA and TensorRT only;
  engine           deepstrata.inference.run_array: reading, normalising, batching on the reader thread, the model,
                   the class decision, blending and the head, into the arrays run_model would write.

Models: `landforms` (resources/models/landforms_geomorphon.onnx: a DEM of 30 m cells, its scale input set from
the cell size the engine's way, pipeline.set_scale) and `tiny` (ds_testing.models.benchmark_segmenter, the
model of bench_engine.py). Each timing follows a warm-up (one engine run on a small array, which also builds the
session with the class decision appended, and one bare batch); --repeat keeps the fastest.

Lines to read (and parse): `versions ...`, `device ...`, `plan ...`, one `RESULT model=... device=... mode=...
seconds=... mpx_s=...` per run and one `RATIO model=... device=... engine/bare=... engine/bare_iobinding=...
engine/best_bare=... goal=0.8 met=yes|no` per model and device (throughput ratios: 1.0 is bare's speed).

    python3 benchmarks/bench_gpu.py                          # cuda (and tensorrt where the build has it), 8192 px
    .venv/bin/python benchmarks/bench_gpu.py --device cpu --size 1024
"""
from __future__ import annotations

import argparse
import os
import platform
import runpy
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # puts `deepstrata` and tests/ (ds_testing) on sys.path

GOAL = 0.8  # engine throughput at least this share of bare onnxruntime's (issue #14)
LANDFORMS = REPO / "resources" / "models" / "landforms_geomorphon.onnx"
CELL_M = 30.0  # the synthetic DEM's cells
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


# ---------------------------------------------------------------------------------------------- inputs

def synthetic_dem(size: int, seed: int = 0) -> np.ndarray:
    """(1, size, size) float32 metres: ridges and valleys at a few wavelengths, plus noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(size, dtype=np.float32)[None, :]
    y = np.arange(size, dtype=np.float32)[:, None]
    dem = 300.0 * np.sin(x / 310.0) * np.cos(y / 420.0) + 800.0
    dem += 90.0 * np.sin(x / 47.0 + y / 83.0)
    dem += 25.0 * np.cos(x / 13.0 - y / 19.0)
    dem += rng.normal(0.0, 2.0, size=(size, size)).astype(np.float32)
    return dem[None].astype(np.float32)


def synthetic_bands(size: int, seed: int = 0) -> np.ndarray:
    """(3, size, size) float32 of UInt16-like values (bench_engine.py's pattern: smooth fields plus noise)."""
    rng = np.random.default_rng(seed)
    cols = np.arange(size, dtype=np.float32)[None, :]
    rows = np.arange(size, dtype=np.float32)[:, None]
    out = np.empty((3, size, size), dtype=np.float32)
    for b in range(3):
        out[b] = 5000 + 3000 * np.sin(cols / (40.0 + 15 * b)) * np.cos(rows / (55.0 + 10 * b))
        out[b] += rng.integers(0, 800, size=(size, size))
    return out


# ---------------------------------------------------------------------------------------------- runs

def versions() -> str:
    import onnxruntime

    try:
        import onnx
        onnx_version = onnx.__version__
    except ImportError:
        onnx_version = "not installed (class decision in numpy)"
    try:
        from osgeo import gdal
        gdal_version = gdal.__version__
    except ImportError:
        gdal_version = "not importable (not needed)"
    return (f"versions python {platform.python_version()}, numpy {np.__version__}, onnxruntime "
            f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())}), onnx {onnx_version}, "
            f"GDAL {gdal_version}, {os.cpu_count()} CPUs, {platform.platform()}")


def device_names() -> str:
    import onnxruntime

    gpu = "none (nvidia-smi not found)"
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
            gpu = done.stdout.strip().replace("\n", "; ") or done.stderr.strip()[:200]
        except (OSError, subprocess.SubprocessError) as exc:
            gpu = f"failed ({exc})"
    return f"device onnxruntime {onnxruntime.get_device()}; nvidia-smi: {gpu}; cpu: {platform.processor() or '?'}"


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def engine_batches(model: Any, plan: Any, array: np.ndarray) -> list[np.ndarray]:
    """Every batch the engine runs over `array`, cut by the engine's own reader (no copy of its logic)."""
    from deepstrata.inference.engine.batches import Batch, tile_rows
    from deepstrata.inference.engine.progress import never_cancelled
    from deepstrata.inference.engine.strips import ArraySource
    from deepstrata.inference.engine.windows import Window

    source, raster, out = ArraySource(array), Window(0, 0, array.shape[2], array.shape[1]), []
    for chunk in plan.chunks():
        window = plan.processing_window(chunk, raster)
        for item in tile_rows(source, plan, window, plan.grid(window), model, never_cancelled):
            if isinstance(item, Batch):
                out.append(np.ascontiguousarray(item.array))
    return out


def bare(model: Any, batches: Sequence[np.ndarray], binding: bool) -> None:
    """onnxruntime alone over the batches: session.run, or IOBinding with the outputs on the device."""
    session, names = model.session, model.output_names
    feeds: dict[str, Any] = {} if model.scale is None else {model.card.input.scale.input: model.scale}
    if not binding:
        for batch in batches:
            session.run(names, {model.input_name: batch, **feeds})
        return
    for batch in batches:
        io = session.io_binding()
        for name, value in {model.input_name: batch, **feeds}.items():
            io.bind_cpu_input(name, value)
        for name in names:
            io.bind_output(name, "cuda")
        session.run_with_iobinding(io)
        io.copy_outputs_to_cpu()


def result(model: str, device: str, provider: str, mode: str, size: int, seconds: float) -> float:
    mpx = size * size / 1e6 / seconds
    print(f"RESULT model={model} device={device} provider={provider} mode={mode} size={size} "
          f"seconds={seconds:.4f} mpx_s={mpx:.3f}", flush=True)
    return mpx


def measure(name: str, path: Path, array: np.ndarray, device: str, args: argparse.Namespace) -> None:
    from deepstrata.inference import RunOptions, load_model, run_array
    from deepstrata.inference.engine.pipeline import set_scale
    from deepstrata.inference.engine.plan import make_plan
    from deepstrata.inference.engine.providers import BINDS_IO
    from deepstrata.inference.engine.windows import Window

    model = load_model(path, device, args.threads)
    for warning in model.warnings:
        print(f"note {name} {device}: {warning}")
    provider = model.provider
    if provider != PROVIDERS[device]:
        print(f"note {name} {device}: {PROVIDERS[device]} did not start; measured on {provider} instead (fallback)")
    options = RunOptions(device=device, batch_size=args.batch_size, threads=args.threads)
    cells = (CELL_M, CELL_M) if model.card.input.scale else None
    set_scale(model, cells, None, "the synthetic DEM")  # what run_array does: the bare runs need the scale too
    size = array.shape[1]
    plan = make_plan(model, Window(0, 0, size, size), options, lambda m: print(f"note {name}: {m}"))
    th, tw = plan.tile_in
    warm = array[:, :min(size, th), :min(size, tw)]
    run_array(model, warm, options, cell_size=cells)  # builds the decision session, warms the provider
    decided = any(s is not None for s in model.decisions.values())
    batches = engine_batches(model, plan, array)
    tiles = sum(len(b) for b in batches)
    print(f"plan model={name} device={device} provider={provider} size={size} tiles={tiles} tile={th} "
          f"overlap={plan.overlap} batch={plan.batch} batches={len(batches)} "
          f"decision={'graph' if decided else 'numpy'} threads={args.threads}", flush=True)
    speeds: dict[str, float] = {}
    modes = ["bare"] + (["bare_iobinding"] if provider in BINDS_IO else [])
    for mode in modes:
        binding = mode == "bare_iobinding"
        bare(model, batches[:1], binding)  # warm-up
        seconds = _best(lambda: bare(model, batches, binding), args.repeat)  # noqa: B023 (called at once)
        speeds[mode] = result(name, device, provider, mode, size, seconds)
    batches.clear()  # the engine's run below needs the memory more
    seconds = _best(lambda: run_array(model, array, options, cell_size=cells), args.repeat)
    engine = result(name, device, provider, "engine", size, seconds)
    best = max(speeds.values())
    ratios = " ".join(f"engine/{mode}={engine / speed:.3f}" for mode, speed in speeds.items())
    print(f"RATIO model={name} device={device} provider={provider} size={size} {ratios} "
          f"engine/best_bare={engine / best:.3f} goal={GOAL} met={'yes' if engine / best >= GOAL else 'no'}",
          flush=True)


def devices(requested: str) -> list[str]:
    """The devices to measure: the one asked for, and TensorRT too after CUDA where this build has it."""
    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    chosen = [requested]
    if requested == "cuda":
        chosen.append("tensorrt")
    kept = []
    for device in chosen:
        if PROVIDERS[device] in available:
            kept.append(device)
        elif device == "tensorrt":
            print("note tensorrt: TensorrtExecutionProvider is not in this onnxruntime build; skipped")
        else:
            print(f"note {device}: {PROVIDERS[device]} is not in this onnxruntime build; the engine falls back "
                  "to CPUExecutionProvider, measured as such")
            kept.append(device)
    return kept


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The engine (run_array) against bare onnxruntime, no GDAL.")
    parser.add_argument("--device", choices=sorted(PROVIDERS), default="cuda",
                        help="cuda (then tensorrt too where the build has it), tensorrt or cpu")
    parser.add_argument("--size", type=int, default=8192, help="raster edge in pixels (default 8192)")
    parser.add_argument("--models", nargs="+", choices=("landforms", "tiny"), default=["landforms", "tiny"])
    parser.add_argument("--batch-size", type=int, default=None, help="default: the engine's choice per provider")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per measurement; the fastest is kept")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from ds_testing import models

    args = parse_args(argv)
    print(versions())
    print(device_names(), flush=True)
    chosen = devices(args.device)
    with tempfile.TemporaryDirectory(prefix="deepstrata-bench-gpu-") as tmp:
        for name in args.models:
            if name == "landforms":
                path, array = LANDFORMS, synthetic_dem(args.size)
            else:
                path, array = models.benchmark_segmenter(Path(tmp) / "tiny.onnx"), synthetic_bands(args.size)
            for device in chosen:
                measure(name, path, array, device, args)
            del array
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
