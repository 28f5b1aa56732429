"""What writing outputs as Cloud-Optimized GeoTIFFs costs: time and peak memory of the engine's RasterWriter into a
Staging in each output format ('gtiff': the streamed tiled GeoTIFF; 'cog': the same, rewritten with overviews at
the commit), for a Byte class raster and a Float32 score raster, at each size.

Each measurement runs in a fresh subprocess so that its peak RSS (`VmHWM`) is its own. The rasters are written
block row by block row as the engine writes them (smooth patterns plus noise, so they compress like real outputs
rather than like constants). Printed last: cog/gtiff time per raster and size, and the peak RSS ratio between the
largest and the smallest size in COG (target <= 1.2: the conversion must not hold the raster in memory).

    .venv/bin/python benchmarks/bench_cog.py                      # 4096 and 16384 px
    .venv/bin/python benchmarks/bench_cog.py --sizes 1024 2048    # a smoke run
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
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # puts `deepstrata` on sys.path

from osgeo import gdal  # noqa: E402

gdal.UseExceptions()
KINDS = ("classes", "scores")
CHUNK = 4096  # columns written at once (RunOptions.chunk_width)


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(kind: str, size: int, fmt: str, folder: str) -> dict[str, Any]:
    """Write one size x size raster of `kind` through RasterWriter into a Staging of `fmt`; time the writing and
    the commit (where the COG is made) apart."""
    from deepstrata.inference.engine.card import ClassInfo
    from deepstrata.inference.engine.staging import Staging
    from deepstrata.inference.engine.writer import BLOCK, FLOAT_NODATA, RasterTarget, RasterWriter

    classes = [ClassInfo(v, f"class {v}", "#%02x%02x%02x" % (40 * v, 255 - 40 * v, 128)) for v in range(1, 7)]
    path = os.path.join(folder, f"{kind}_{size}_{fmt}.tif")
    if kind == "classes":
        target = RasterTarget(path, np.dtype(np.uint8), 0, ["class"], [classes])
    else:
        target = RasterTarget(path, np.dtype(np.float32), FLOAT_NODATA, ["score"])
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    stage = Staging(output_format=fmt)
    with RasterWriter(stage, target, size, size, (500000.0, 10.0, 0.0, 4100000.0, 0.0, -10.0), "") as writer:
        for x in range(0, size, CHUNK):  # column chunks, as the engine writes (its memory does not grow either)
            cols = np.arange(x, min(x + CHUNK, size), dtype=np.float32)[None, :]
            for y in range(0, size, BLOCK):
                rows = np.arange(y, y + BLOCK, dtype=np.float32)[:, None]
                field = np.sin(cols / 97.0) * np.cos(rows / 61.0) + 0.5 * np.sin((cols + rows) / 23.0)
                if kind == "classes":
                    values = np.clip((field + 1.5) * 2 + rng.normal(0, 0.3, field.shape), 1, 6).astype(np.uint8)
                else:
                    values = (field + rng.normal(0, 0.02, field.shape)).astype(np.float32)
                writer.write(x, y, values[None])
    written = time.perf_counter()
    stage.commit()
    done = time.perf_counter()
    ds = gdal.Open(path)
    overviews = ds.GetRasterBand(1).GetOverviewCount()
    ds = None
    return {"write_s": written - started, "commit_s": done - written, "total_s": done - started,
            "rss_mib": peak_rss_mib(), "mib": os.path.getsize(path) / 2**20, "overviews": overviews}


def child(args: argparse.Namespace) -> None:
    print(json.dumps(measure(args.kind, args.size, args.format, args.folder)))


def run_child(kind: str, size: int, fmt: str, folder: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--kind", kind, "--size", str(size), "--format", fmt,
               "--folder", folder]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=("cog", "gtiff"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"python {platform.python_version()}, numpy {np.__version__}, GDAL {gdal.__version__}, "
          f"{os.cpu_count()} CPUs, GDAL cache {gdal.GetCacheMax() >> 20} MiB by default")
    results: dict[tuple[str, int, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_cog_") as folder:
        for kind in KINDS:
            for size in args.sizes:
                for fmt in ("gtiff", "cog"):
                    r = run_child(kind, size, fmt, folder)
                    results[(kind, size, fmt)] = r
                    print(f"{kind:8s} {size:6d} px  {fmt:5s}  write {r['write_s']:6.2f} s  commit {r['commit_s']:6.2f} s"
                          f"  total {r['total_s']:6.2f} s  peak RSS {r['rss_mib']:7.1f} MiB  {r['mib']:8.1f} MiB on "
                          f"disk  {r['overviews']} overviews")
                    for name in os.listdir(folder):
                        os.remove(os.path.join(folder, name))
    for kind in KINDS:
        for size in args.sizes:
            ratio = results[(kind, size, "cog")]["total_s"] / results[(kind, size, "gtiff")]["total_s"]
            print(f"time ratio cog/gtiff, {kind} at {size}: {ratio:.2f}")
        lo, hi = min(args.sizes), max(args.sizes)
        rss = results[(kind, hi, "cog")]["rss_mib"] / results[(kind, lo, "cog")]["rss_mib"]
        print(f"cog peak RSS ratio {hi}/{lo}, {kind}: {rss:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
