"""Engine overhead and memory benchmark: DeepStrata's run_model versus bare onnxruntime on the same tiles.

For each raster size it writes a synthetic 3-band UInt16 tiled GeoTIFF and a small segmentation model
(3x3 convs 3 -> 16 -> 16 -> 4, dynamic dims, card tile_size 256, margin 3), then times, each in a fresh
subprocess so that peak RSS is per run:

  (a) bare: the engine's own onnxruntime session over exactly the engine's tile grid and batches, with every
      batch cut and normalised in memory before the clock starts (pure model time);
  (b) engine: the whole run_model(...) from GeoTIFF to GeoTIFF.

It prints both times, engine/bare (target <= 1.15 on CPU) and, last, the engine's peak RSS ratio between the
largest and the smallest size (target <= 1.2: memory must not grow with the raster).

    .venv/bin/python benchmarks/bench_engine.py            # 4096 and 8192
    .venv/bin/python benchmarks/bench_engine.py --quick    # 1024 and 2048, a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # puts `deepstrata` and tests/ (ds_testing) on sys.path

from ds_testing import models  # noqa: E402
from osgeo import gdal  # noqa: E402

gdal.UseExceptions()
BANDS, HIDDEN = 3, 16  # the model: ds_testing.models.benchmark_segmenter


# ---------------------------------------------------------------------------------------------- fixtures

def write_raster(path: Path, size: int, seed: int = 0, strip: int = 512) -> Path:
    """A size x size 3-band UInt16 tiled GeoTIFF of smooth patterns plus noise, written strip by strip."""
    rng = np.random.default_rng(seed)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, BANDS, gdal.GDT_UInt16,
                                              ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=IF_SAFER"])
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 4100000.0, 0.0, -10.0))
    cols = np.arange(size, dtype=np.float32)[None, :]
    for y in range(0, size, strip):
        rows = np.arange(y, min(y + strip, size), dtype=np.float32)[:, None]
        for b in range(BANDS):
            pattern = np.sin(cols / (40.0 + 15 * b)) * np.cos(rows / (55.0 + 10 * b))
            noise = rng.integers(0, 800, size=(rows.shape[0], size))
            ds.GetRasterBand(b + 1).WriteArray((5000 + 3000 * pattern + noise).astype(np.uint16), 0, y)
    ds = None
    return path


def write_model(path: Path, tile_size: int, hidden: int = HIDDEN) -> Path:
    return models.benchmark_segmenter(path, tile_size=tile_size, hidden=hidden)


# ---------------------------------------------------------------------------------------------- children

def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB.

    Not getrusage's ru_maxrss: Linux keeps that across fork and exec, so a child would report its parent's peak
    (here the driver's, which grows with the raster it has just written).
    """
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024.0


def _options(args: argparse.Namespace) -> Any:
    from deepstrata.inference import RunOptions

    return RunOptions(device="cpu", tile_size=args.tile_size, batch_size=args.batch_size, threads=args.threads)


def _warm_up(model: Any, plan: Any) -> None:
    """One blank batch first, so both runs start with onnxruntime's allocations made."""
    model.run(np.zeros((plan.batch, BANDS) + plan.tile_in, dtype=np.float32))


def _plan(model: Any, raster: str, options: Any) -> tuple[Any, Any]:
    """The engine's own plan for the whole raster, and the raster's window."""
    from deepstrata.inference.engine.plan import make_plan
    from deepstrata.inference.engine.windows import Window

    ds = gdal.Open(raster)
    full = Window(0, 0, ds.RasterXSize, ds.RasterYSize)
    return make_plan(model, full, options, lambda message: None), full


def _bare_batches(model: Any, raster: str, plan: Any, full: Any) -> list[np.ndarray]:
    """The engine's tile grid over the whole raster, cut into the engine's batches from an in-memory copy."""
    from deepstrata.inference.engine.stream import normalize

    data = gdal.Open(raster).ReadAsArray().astype(np.float32)
    normalize(data, np.ones(data.shape[1:], dtype=bool), model.card.input.normalization)
    crop, batches = plan.crop, []
    for chunk in plan.chunks():
        window = plan.processing_window(chunk, full)
        grid = plan.grid(window)
        th, tw = grid.tile_h + 2 * crop, grid.tile_w + 2 * crop
        for y in grid.rows:
            top = window.y + y - crop
            tiles = list(grid.row_tiles(y))
            for i in range(0, len(tiles), plan.batch):
                cut = [data[:, top:top + th, window.x + t.x - crop:window.x + t.x - crop + tw]
                       for t in tiles[i:i + plan.batch]]
                batches.append(np.ascontiguousarray(np.stack(cut)))
    return batches


def child_bare(args: argparse.Namespace) -> dict[str, Any]:
    from deepstrata.inference import load_model

    model = load_model(args.model, "cpu", args.threads)
    plan, full = _plan(model, args.raster, _options(args))
    batches = _bare_batches(model, args.raster, plan, full)
    _warm_up(model, plan)
    session, name = model.session, model.input_name
    started = time.perf_counter()
    for batch in batches:
        session.run(None, {name: batch})
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tiles": sum(len(b) for b in batches), "tile": plan.tile_in[0],
            "overlap": plan.overlap, "batch": plan.batch, "rss_mb": _peak_rss_mb()}


def child_engine(args: argparse.Namespace) -> dict[str, Any]:
    from deepstrata.inference import load_model, run_model

    model = load_model(args.model, "cpu", args.threads)
    options = _options(args)
    _warm_up(model, _plan(model, args.raster, options)[0])
    started = time.perf_counter()
    result = run_model(model, args.raster, args.output, options)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tiles": result.tiles, "tile": result.tile_size, "overlap": result.overlap,
            "batch": result.batch_size, "rss_mb": _peak_rss_mb()}


# ---------------------------------------------------------------------------------------------- driver

def _spawn(mode: str, raster: Path, model: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--raster", str(raster), "--model", str(model),
               "--output", str(work / f"out_{mode}_{raster.stem}.tif"), "--threads", str(args.threads)]
    for flag, value in (("--tile-size", args.tile_size), ("--batch-size", args.batch_size)):
        if value:
            command += [flag, str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _best(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with the highest peak RSS of all repeats."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["rss_mb"] = max(r["rss_mb"] for r in runs)
    return best


def _versions() -> str:
    import onnxruntime

    return (f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, "
            f"GDAL {gdal.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")


def _line(label: str, size: int, r: dict[str, Any]) -> str:
    mpx = size * size / 1e6 / r["seconds"]
    return (f"{label:<7}{size:>6} px  {r['seconds']:8.2f} s  {mpx:6.2f} Mpx/s  peak RSS {r['rss_mb']:8.1f} MiB  "
            f"({r['tiles']} tiles of {r['tile']} px, overlap {r['overlap']}, batch {r['batch']})")


def run_benchmark(args: argparse.Namespace) -> None:
    sizes = [1024, 2048] if args.quick else args.sizes
    print(_versions())
    with tempfile.TemporaryDirectory(prefix="deepstrata-bench-") as tmp:
        work = Path(tmp)
        model = write_model(work / "segmenter.onnx", args.tile_size or 256, args.hidden)
        results: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        for size in sizes:
            raster = write_raster(work / f"synthetic_{size}.tif", size)
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], "engine": []}
            for _ in range(args.repeat):  # interleaved, so a burst of load elsewhere hits both alike
                for mode, kept in runs.items():
                    kept.append(_spawn(mode, raster, model, args, work))
            bare, engine = _best(runs["bare"]), _best(runs["engine"])
            print(_line("bare", size, bare), flush=True)
            print(_line("engine", size, engine), flush=True)
            results[size] = (bare, engine)
            raster.unlink()
        for size, (bare, engine) in results.items():
            print(f"time ratio engine/bare at {size}: {engine['seconds'] / bare['seconds']:.3f} (target <= 1.15)")
        small, large = min(results), max(results)
        if large != small:
            ratio = results[large][1]["rss_mb"] / results[small][1]["rss_mb"]
            print(f"engine peak RSS ratio {large}/{small}: {ratio:.3f} (target <= 1.2)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time DeepStrata's engine against bare onnxruntime.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192], help="raster edges in pixels")
    parser.add_argument("--quick", action="store_true", help="smoke run at 1024 and 2048")
    parser.add_argument("--tile-size", type=int, default=None, help="default: the card's (256)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the engine's choice")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    parser.add_argument("--hidden", type=int, default=HIDDEN,
                        help="channels of the model's hidden layers (a heavier model dilutes fixed costs)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    parser.add_argument("--child", choices=("bare", "engine"), help=argparse.SUPPRESS)
    for hidden in ("--raster", "--model", "--output"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = child_bare(args) if args.child == "bare" else child_engine(args)
        print(json.dumps(result))
    else:
        run_benchmark(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
