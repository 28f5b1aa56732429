"""Workflow memory benchmark: do the workflow steps after (and around) the engine stream as DEMs grow?

For each size it writes a smooth synthetic Float32 DEM (sines plus noise, 500-2500 m, square pits every 256 px)
in EPSG:4326 at 1 arc-second pixels, strip by strip, then runs two jobs, each in a fresh subprocess:

  landforms: run_at_model_resolution with resources/models/landforms_geomorphon.onnx (cpu, 1 thread, on the DEM's
             own grid), class_statistics of the classes, polygonize_classes into a GeoPackage;
  anomalies: run_at_model_resolution with resources/models/anomaly_dem.onnx, write_mask at the card's threshold,
             anomaly_polygons of the mask.

Every step is timed, and its peak RSS taken alone: the child resets VmHWM (echo 5 > /proc/self/clear_refs) when
a step starts and reads it when the step ends (VmHWM, not getrusage's ru_maxrss, which Linux carries over from
the parent across fork and exec). run_at_model_resolution is split into its steps by wrapping the functions of
inference/resample.py it calls (warp_to_model_grid, _grow_edges, run_model, _warp_back); what is left of it
(planning, committing the outputs, removing the temporary folder) is "other". Per job and size it prints each
step's time, peak RSS, rise (peak less the RSS the step started from) and RSS when it ends; last, per job, the
peak RSS ratio largest/smallest (target <= 1.2: memory must not grow with the raster), the time ratio divided by
the pixel ratio (1.0 = time linear in pixels), and the same per step.

In one process, a step can reuse memory an earlier step freed (and onnxruntime keeps its arena after the model
step), which hides its own growth. --isolate runs every step in its own subprocess instead, through the public
functions of resample.py, to see what each step needs alone.

    .venv/bin/python benchmarks/bench_workflows.py            # 2048 and 4096 px
    .venv/bin/python benchmarks/bench_workflows.py --quick    # 512 and 1024, a smoke run
    .venv/bin/python benchmarks/bench_workflows.py --isolate  # each step in its own subprocess
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # puts `deepstrata` on sys.path

from osgeo import gdal  # noqa: E402

gdal.UseExceptions()
MODELS = {"landforms": REPO / "resources" / "models" / "landforms_geomorphon.onnx",
          "anomalies": REPO / "resources" / "models" / "anomaly_dem.onnx"}
ARCSEC = 1.0 / 3600.0
ORIGIN = (-118.5, 34.6)  # top-left corner (lon, lat): UTM zone 11N
NODATA = -32768.0
PIT_EVERY, PIT_SIZE, PIT_DEPTH = 256, 8, 40.0  # one square pit per 256 x 256 px: patches for the anomaly job


# ---------------------------------------------------------------------------------------------- fixtures

def write_dem(path: Path, size: int, seed: int = 0, strip: int = 256) -> Path:
    """A size x size Float32 DEM in EPSG:4326 at 1 arc-second, tiled 256, written strip by strip."""
    rng = np.random.default_rng(seed)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 1, gdal.GDT_Float32,
                                              ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=IF_SAFER"])
    ds.SetGeoTransform((ORIGIN[0], ARCSEC, 0.0, ORIGIN[1], 0.0, -ARCSEC))
    ds.SetProjection('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
                     'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]')
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(NODATA)
    x = np.arange(size, dtype=np.float64)[None, :]
    tau = 2 * np.pi
    for y0 in range(0, size, strip):
        y = np.arange(y0, min(y0 + strip, size), dtype=np.float64)[:, None]
        z = (1500.0 + 600.0 * np.sin(tau * x / 1500.0) * np.cos(tau * y / 1100.0)
             + 250.0 * np.sin(tau * (x + 2 * y) / 400.0) + 120.0 * np.cos(tau * (3 * x - y) / 170.0)
             + rng.normal(0.0, 1.5, size=(y.shape[0], size)))
        pits = ((y % PIT_EVERY) >= PIT_EVERY // 2) & ((y % PIT_EVERY) < PIT_EVERY // 2 + PIT_SIZE) \
            & ((x % PIT_EVERY) >= PIT_EVERY // 2) & ((x % PIT_EVERY) < PIT_EVERY // 2 + PIT_SIZE)
        band.WriteArray((z - PIT_DEPTH * pits).astype(np.float32), 0, y0)
    ds = None
    return path


# ---------------------------------------------------------------------------------------------- children

def _status(field: str) -> float:
    """A line of /proc/self/status (VmHWM: peak resident set, VmRSS: now), in MiB.

    Not getrusage's ru_maxrss: Linux keeps that across fork and exec, so a child would report its parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith(field + ":"))
    return int(line.split()[1]) / 1024.0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Exclusive time, peak RSS and rise per named step; a step inside another pauses it (the outer keeps the rest).

    The rise is the most the step's peak exceeds the RSS it started from (each stretch of it between inner steps
    on its own): what the step itself adds, less what it finds freed by an earlier step (glibc keeps freed memory
    in the process, so a later step's rise can hide in an earlier one's leftovers).
    """

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, float]] = {}
        self.stack: list[dict[str, Any]] = []
        self.resets = _reset_peak()

    def _close_segment(self) -> None:
        if self.stack:
            top = self.stack[-1]
            top["seconds"] += time.perf_counter() - top["since"]
            peak = _status("VmHWM")
            top["rss_mb"] = max(top["rss_mb"], peak)
            top["rise_mb"] = max(top["rise_mb"], peak - top["from_mb"])

    def _open_segment(self) -> None:
        _reset_peak()
        if self.stack:
            self.stack[-1].update(since=time.perf_counter(), from_mb=_status("VmRSS"))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._close_segment()
        kept = self.steps.setdefault(name, {"seconds": 0.0, "rss_mb": 0.0, "rise_mb": 0.0})  # in starting order
        self.stack.append({"seconds": 0.0, "rss_mb": 0.0, "rise_mb": 0.0})
        self._open_segment()
        try:
            yield
        finally:
            self._close_segment()
            entry = self.stack.pop()
            kept["seconds"] += entry["seconds"]  # a step run twice (_warp_back per output) adds up
            kept["rss_mb"] = max(kept["rss_mb"], entry["rss_mb"])
            kept["rise_mb"] = max(kept["rise_mb"], entry["rise_mb"])
            kept["end_mb"] = _status("VmRSS")
            self._open_segment()

    def wrap(self, module: Any, attribute: str, name: str) -> None:
        original: Callable[..., Any] = getattr(module, attribute)

        def measured(*args: Any, **kwargs: Any) -> Any:
            with self.step(name):
                return original(*args, **kwargs)

        setattr(module, attribute, measured)


def _resampled(meter: Meter, model: Any, raster: str, output: str) -> Any:
    """run_at_model_resolution, with its steps measured."""
    from deepstrata.inference import RunOptions
    from deepstrata.inference.workflows import resample

    for attribute, name in (("warp_to_model_grid", "warp in"), ("_grow_edges", "fill edges"),
                            ("run_model", "model"), ("_warp_back", "warp back")):
        meter.wrap(resample, attribute, name)
    with meter.step("other"):
        done = resample.run_at_model_resolution(model, raster, output, RunOptions(device="cpu", threads=1))
    if done.plan is None:
        raise SystemExit("the DEM was not resampled: the benchmark expects a geographic raster")
    return done


def _after(meter: Meter, job: str, model: Any, step: str | None, output: str, work: Path,
           info: dict[str, Any]) -> None:
    """The job's steps after the model's outputs are on the input grid (all of them when `step` is None)."""
    classes = list(model.card.output.classes)
    if job == "landforms" and step in (None, "class stats"):
        from deepstrata.inference.workflows.class_stats import class_statistics

        with meter.step("class stats"):
            info["classes"] = sum(1 for s in class_statistics(output, classes) if s.pixels)
    if job == "landforms" and step in (None, "polygons"):
        from deepstrata.inference.workflows.vectorize import polygonize_classes

        with meter.step("polygons"):
            info["polygons"] = polygonize_classes(output, str(work / "landforms.gpkg"), classes)
    if job == "anomalies" and step in (None, "mask"):
        from deepstrata.inference.workflows.anomaly_outputs import write_mask

        with meter.step("mask"):
            info["flagged"] = write_mask(output, model.card.output.anomaly.threshold, str(work / "mask.tif")).flagged
    if job == "anomalies" and step in (None, "patches"):
        from deepstrata.inference.workflows.anomaly_outputs import anomaly_polygons

        with meter.step("patches"):
            info["polygons"] = anomaly_polygons(str(work / "mask.tif"), output, str(work / "anomalies.gpkg"))


def _isolated(meter: Meter, job: str, model: Any, step: str, raster: str, output: str, work: Path,
              info: dict[str, Any]) -> None:
    """One step of the job alone; the files it needs were left in `work` by the steps before it.

    run_at_model_resolution's own steps are called through the public functions of inference/resample.py, in
    its order and with its arguments (but classes and nodata bands from the files, as warp_to_input_grid does).
    """
    from deepstrata.inference import RunOptions
    from deepstrata.inference.workflows import resample
    from deepstrata.inference.engine.raster import open_raster

    warped, grid_out = str(work / "warped.tif"), str(work / "model_grid.tif")
    native = model.card.input.pixel_size_m is None  # terrain models at any scale: the DEM's own grid, no warps
    if native and step in ("warp in", "warp back"):
        info["grid"] = "the DEM's own grid (no warp)"
        return
    if step == "warp in":
        plan = resample.plan_resample(open_raster(raster), raster, model.card.input.pixel_size_m)
        info["grid"] = f"{plan.width} x {plan.height} px in {plan.crs_label}"
        meter.wrap(resample, "_grow_edges", "fill edges")
        with meter.step("warp in"):
            resample.warp_to_model_grid(raster, plan, warped)
    elif step == "model":
        with meter.step("model"):
            resample.run_model(model, raster if native else warped, output if native else grid_out,
                               RunOptions(device="cpu", threads=1))
    elif step == "warp back":
        with meter.step("warp back"):
            resample.warp_to_input_grid(grid_out, raster, output, job == "landforms", valid_bands=[1])
    else:
        _after(meter, job, model, step, output, work, info)


def child(args: argparse.Namespace) -> dict[str, Any]:
    from deepstrata.inference import load_model

    work = Path(args.work)
    model = load_model(str(MODELS[args.child]), "cpu", 1)
    if args.step in (None, "model"):
        tile = model.card.input.tile_size or 256
        model.run(np.zeros((1, 1, tile, tile), dtype=np.float32))  # onnxruntime's first-run set-up, off the clock
    meter = Meter()
    baseline = _status("VmRSS")
    info: dict[str, Any] = {}
    started = time.perf_counter()
    output = str(work / f"{args.child}.tif")
    if args.step is None:
        done = _resampled(meter, model, args.raster, output)
        info["grid"] = f"{done.plan.width} x {done.plan.height} px in {done.plan.crs_label}"
        _after(meter, args.child, model, None, output, work, info)
    else:
        _isolated(meter, args.child, model, args.step, args.raster, output, work, info)
    seconds = time.perf_counter() - started
    peak = max(s["rss_mb"] for s in meter.steps.values()) if meter.resets else _status("VmHWM")
    return {"seconds": seconds, "rss_mb": peak, "baseline_mb": baseline, "steps": meter.steps,
            "per_step_peaks": meter.resets, **info}


# ---------------------------------------------------------------------------------------------- driver

ISOLATED_STEPS = {"landforms": ("warp in", "model", "warp back", "class stats", "polygons"),
                  "anomalies": ("warp in", "model", "warp back", "mask", "patches")}


def _child(job: str, raster: Path, out: Path, step: str | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", job, "--raster", str(raster), "--work", str(out)]
    done = subprocess.run(command + (["--step", step] if step else []), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{job} {step or 'job'} run failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _spawn(job: str, raster: Path, work: Path, isolate: bool) -> dict[str, Any]:
    """The whole job in one subprocess, or (`isolate`) each step in its own, merged into one result."""
    out = work / f"{job}_{raster.stem}"
    out.mkdir()
    try:
        if not isolate:
            return _child(job, raster, out)
        runs = [_child(job, raster, out, step) for step in ISOLATED_STEPS[job]]
    finally:
        shutil.rmtree(out)
    merged: dict[str, Any] = {}
    for run in runs:
        merged.update({k: v for k, v in run.items() if k != "steps"})
        merged.setdefault("steps", {}).update(run["steps"])
    merged["seconds"] = sum(r["seconds"] for r in runs)
    merged["rss_mb"] = max(r["rss_mb"] for r in runs)
    merged["baseline_mb"] = None  # one per subprocess: see each step's peak less its rise
    merged["per_step_peaks"] = all(r["per_step_peaks"] for r in runs)
    return merged


def _best(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per step, the fastest time and the highest peak RSS of the repeats."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["rss_mb"] = max(r["rss_mb"] for r in runs)
    best["steps"] = {name: {key: (min if key == "seconds" else max)(r["steps"][name][key] for r in runs)
                            for key in ("seconds", "rss_mb", "rise_mb", "end_mb")}
                     for name in runs[0]["steps"]}
    return best


def _versions() -> str:
    import onnxruntime

    return (f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, "
            f"GDAL {gdal.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")


def _report(job: str, size: int, r: dict[str, Any]) -> None:
    extra = ", ".join(f"{k} {r[k]}" for k in ("classes", "flagged", "polygons") if k in r)
    before = f"; RSS before the steps {r['baseline_mb']:.1f} MiB" if r["baseline_mb"] else "; steps isolated"
    print(f"{job} {size} px (model grid {r['grid']}; {extra}){before}")
    for name, s in r["steps"].items():
        peak = f"{s['rss_mb']:8.1f} MiB  rise {s['rise_mb']:7.1f} MiB" if r["per_step_peaks"] else "n/a"
        print(f"  {name:<12}{s['seconds']:8.2f} s  peak RSS {peak}  RSS after {s['end_mb']:8.1f} MiB")
    print(f"  {'total':<12}{r['seconds']:8.2f} s  peak RSS {r['rss_mb']:8.1f} MiB", flush=True)


def run_benchmark(args: argparse.Namespace) -> None:
    sizes = [512, 1024] if args.quick else args.sizes
    print(_versions())
    results: dict[str, dict[int, dict[str, Any]]] = {job: {} for job in args.jobs}
    with tempfile.TemporaryDirectory(prefix="deepstrata-bench-") as tmp:
        work = Path(tmp)
        for size in sizes:
            raster = write_dem(work / f"dem_{size}.tif", size)
            for job in args.jobs:
                results[job][size] = _best([_spawn(job, raster, work, args.isolate) for _ in range(args.repeat)])
                _report(job, size, results[job][size])
            raster.unlink()
    small, large = min(sizes), max(sizes)
    if large == small:
        return
    pixels = (large / small) ** 2
    for job, by_size in results.items():
        a, b = by_size[small], by_size[large]
        print(f"{job}: peak RSS ratio {large}/{small}: {b['rss_mb'] / a['rss_mb']:.3f} (target <= 1.2); "
              f"time ratio / pixel ratio: {b['seconds'] / a['seconds'] / pixels:.3f} (1.0 = linear)")
        if a["per_step_peaks"]:
            for name in a["steps"]:
                sa, sb = a["steps"][name], b["steps"][name]
                print(f"  {name:<12} peak RSS ratio {sb['rss_mb'] / sa['rss_mb']:6.3f}  rise {sa['rise_mb']:7.1f} -> "
                      f"{sb['rise_mb']:7.1f} MiB  time ratio / pixel ratio "
                      f"{sb['seconds'] / max(sa['seconds'], 1e-9) / pixels:6.3f}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the DeepStrata workflows' steps and their peak memory.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096], help="DEM edges in pixels")
    parser.add_argument("--quick", action="store_true", help="smoke run at 512 and 1024")
    parser.add_argument("--jobs", nargs="+", choices=tuple(MODELS), default=list(MODELS), help="jobs to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per job and size; the fastest is kept")
    parser.add_argument("--isolate", action="store_true",
                        help="each step in its own subprocess (steps of run_at_model_resolution called one by one)")
    parser.add_argument("--child", choices=tuple(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    for hidden in ("--raster", "--work"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
    else:
        run_benchmark(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
