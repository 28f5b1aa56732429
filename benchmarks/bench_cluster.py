"""A run on a local Dask cluster against the same run on one machine (issue #15; docs/scale-out.md).

For each raster size it writes bench_engine's synthetic 3-band UInt16 raster and its small segmentation model
(3x3 convs 3 -> 16 -> 16 -> 4, tiles 256 px), then runs, each in a fresh subprocess so memory is per run:
  (a) one machine: run_model without a cluster;
  (b) the same run on a local cluster of N worker processes (`local:N`, one thread each, the cores shared).
It prints the times, one-machine/cluster, each worker's peak RSS (VmHWM of the worker process, reported by the
task that ran last on it), the client's peak RSS (the client's GDAL block cache, 5 % of RAM by default, included), whether the class maps are identical to (a), and last the workers' peak
RSS ratio between the largest and the smallest size (goal <= 1.2: flat in raster size).

    .venv/bin/python benchmarks/bench_cluster.py                        # 4096 and 16384, 1 and 2 workers
    .venv/bin/python benchmarks/bench_cluster.py --sizes 2048 --workers 2   # a smoke run
    .venv/bin/python benchmarks/bench_cluster.py --landforms --sizes 4096   # the bundled landform model on a DEM
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_engine import models, write_raster  # noqa: E402
from ds_testing import rasters  # noqa: E402  (it puts deepstrata and ds_testing on sys.path)
from osgeo import gdal  # noqa: E402

gdal.UseExceptions()


def write_dem(path: Path, size: int) -> Path:
    """A size x size Float32 DEM (30 m, UTM 11N) of ridges and valleys at several scales, strip by strip."""
    def terrain(b: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        height = sum(amp * np.sin(cols / wave + k) * np.cos(rows / (wave * 1.3) - k)
                     for k, (amp, wave) in enumerate([(400, 300.0), (120, 60.0), (40, 17.0), (12, 5.0)]))
        return (1200 + height + (cols + rows) * 0.05).astype(np.float32)

    return rasters.write_strips(path, size, terrain, gdal_type=gdal.GDT_Float32, strip=512, epsg=32611,
                                geotransform=(400000.0, 30.0, 0.0, 3800000.0, 0.0, -30.0),
                                options=("TILED=YES", "COMPRESS=LZW", "PREDICTOR=3", "BIGTIFF=IF_SAFER"))


def one_run(model: str, raster: str, output: str, workers: int, rows: int | None) -> dict[str, Any]:
    """One run (workers 0: one machine), timed in this process; its peak RSS and the workers'."""
    from deepstrata.inference import RunOptions
    from deepstrata.inference.engine.cluster.dispatch import ClusterFill
    from deepstrata.inference.engine.cluster.worker import peak_rss
    from deepstrata.inference.engine.execute import execute

    options = RunOptions(output_format="gtiff", search_m=300.0 if "landforms" in model else None)
    started = time.perf_counter()
    if workers:
        with ClusterFill(f"local:{workers}", rows) as fill:
            result = execute(model, raster, output, options, fill=fill)
            peaks, tasks = fill.peak_rss, fill.tasks
    else:
        result, peaks, tasks = execute(model, raster, output, options), {}, 0
    return {"seconds": time.perf_counter() - started, "client_rss": peak_rss(), "workers": peaks, "tasks": tasks,
            "provider": result.provider}


def _child(model: Path, raster: Path, output: Path, workers: int, rows: int | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", str(model), str(raster), str(output), str(workers), str(rows or 0)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same(a: Path, b: Path) -> bool:
    one, two = gdal.Open(str(a)), gdal.Open(str(b))
    return bool(np.array_equal(one.ReadAsArray(), two.ReadAsArray()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", type=int, default=0, help="rows per task (default: chosen)")
    parser.add_argument("--landforms", action="store_true",
                        help="the bundled landform model (resources/models/landforms_geomorphon.onnx) on a synthetic "
                             "30 m DEM instead of the tiny segmentation model")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, raster, output, workers, rows = args.one
        print(json.dumps(one_run(model, raster, output, int(workers), int(rows) or None)))
        return
    import distributed
    import onnxruntime

    print(f"# {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime "
          f"{onnxruntime.__version__}, dask.distributed {distributed.__version__}, GDAL {gdal.__version__}")
    peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        folder = Path(tmp)
        model = (REPO / "resources" / "models" / "landforms_geomorphon.onnx" if args.landforms
                 else models.benchmark_segmenter(folder / "model.onnx"))
        for size in args.sizes:
            raster = (write_dem if args.landforms else write_raster)(folder / f"in{size}.tif", size)
            alone = _child(model, raster, folder / "alone.tif", 0, None)
            print(f"{size} px, one machine: {alone['seconds']:.1f} s ({size * size / alone['seconds'] / 1e6:.2f} Mpx/s), "
                  f"peak RSS {alone['client_rss'] / 2**20:.0f} MiB")
            for workers in args.workers:
                out = folder / f"cluster{workers}.tif"
                run = _child(model, raster, out, workers, args.rows or None)
                rss = sorted(run["workers"].values())
                peaks[size] = max(peaks.get(size, 0), max(rss))
                print(f"{size} px, {workers} worker(s), {run['tasks']} tasks: {run['seconds']:.1f} s "
                      f"({size * size / run['seconds'] / 1e6:.2f} Mpx/s), one-machine/"
                      f"cluster {alone['seconds'] / run['seconds']:.2f}; workers' peak RSS "
                      f"{', '.join(f'{r / 2**20:.0f}' for r in rss)} MiB; client {run['client_rss'] / 2**20:.0f} MiB; "
                      f"identical: {_same(folder / 'alone.tif', out)}")
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        print(f"workers' peak RSS {large} px / {small} px: {peaks[large] / peaks[small]:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
