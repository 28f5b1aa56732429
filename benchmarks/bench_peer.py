"""DeepStrata against bare onnxruntime and against the peer plugin Deepness, same model, raster and tiles.

A 4096 x 4096 RGB (Byte) tiled GeoTIFF and a tiny segmentation model in Deepness's format (two 3x3 convs,
3 -> 16 -> 2, softmax inside the graph, 512 px input, Deepness metadata keys: model_type, class_names,
tiles_overlap 15 %, no DeepStrata card). Each run is a whole fresh process, timed from the parent (imports,
model loading, reading, writing: what a user waits for), with the process's own peak RSS (VmHWM):

  bare      onnxruntime over the engine's tile grid, the raster read whole with GDAL and cut in memory: the
            limit on that grid (no blending, no decision, no output file);
  engine    DeepStrata's command line, ``python -m deepstrata.inference run MODEL INPUT --output OUT``;
  deepness  Deepness's MapProcessorSegmentation, mask only (the class array in memory; no polygons, no layer),
            driven headless with a QgsApplication as its own tests do (tests/ds_testing/deepness_peer.py).

All three use 512 px tiles and 15 % overlap (Deepness: 76 px; the engine reads the same from the model's
metadata: margin 38, overlap 76) and the same batch size. It prints wall seconds, peak RSS and the ratios:
deepness/engine (goal >= 1.9), bare/engine (goal >= 0.87), engine/deepness RSS (goal <= 1). The bare loop (one
warm-up batch first) is the limit: Deepness's process time over it is the best deepness/engine any tool could reach.

    .venv/bin/python benchmarks/bench_peer.py --repeat 3
    .venv/bin/python benchmarks/bench_peer.py --size 1024 --repeat 1     # a smoke run (seconds)
    .venv/bin/python benchmarks/bench_peer.py --memory-sizes 4096 16384  # peak RSS flat in raster size?
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
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # puts `deepstrata` and tests/ (ds_testing) on sys.path

TILE, OVERLAP_PERCENT, CLASSES, HIDDEN = 512, 15, 2, 16
PIXEL_M = 0.1  # 10 cm per pixel: the model's resolution, so neither tool resamples


def write_raster(path: Path, size: int, seed: int = 0, strip: int = 512) -> Path:
    """A size x size 3-band Byte tiled GeoTIFF (an orthophoto's layout) of smooth patterns plus noise."""
    from osgeo import gdal

    rng = np.random.default_rng(seed)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 3, gdal.GDT_Byte,
                                              ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "PHOTOMETRIC=RGB"])
    ds.SetGeoTransform((638000.0, PIXEL_M, 0.0, 5803000.0, 0.0, -PIXEL_M))
    ds.SetProjection('PROJCS["WGS 84 / UTM zone 33N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
                     '298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION['
                     '"Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",15],'
                     'PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER['
                     '"false_northing",0],UNIT["metre",1],AUTHORITY["EPSG","32633"]]')
    cols = np.arange(size, dtype=np.float32)[None, :]
    for y in range(0, size, strip):
        rows = np.arange(y, min(y + strip, size), dtype=np.float32)[:, None]
        for b in range(3):
            pattern = np.sin(cols / (40.0 + 15 * b)) * np.cos(rows / (55.0 + 10 * b))
            noise = rng.integers(0, 40, size=(rows.shape[0], size))
            ds.GetRasterBand(b + 1).WriteArray(np.clip(110 + 90 * pattern + noise, 0, 255).astype(np.uint8), 0, y)
    ds = None
    return path


def write_model(path: Path) -> Path:
    """Deepness's format: probabilities out, its metadata keys, fixed 512 px input, dynamic batch."""
    from ds_testing import models

    graph = models._segmentation_graph(3, CLASSES, 2, seed=0, softmax=True, height=TILE, width=TILE,
                                       hidden=HIDDEN)
    meta = {"model_type": "Segmentor", "class_names": json.dumps({"0": "background", "1": "object"}),
            "tiles_overlap": str(OVERLAP_PERCENT), "standardization_mean": json.dumps([0.0] * 3),
            "standardization_std": json.dumps([1.0] * 3), "resolution": str(PIXEL_M * 100)}
    return models.save(graph, path, None, extra_metadata=meta)


# ---------------------------------------------------------------------------------------------- children

def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024.0


def child_bare(args: argparse.Namespace) -> dict[str, Any]:
    from osgeo import gdal

    from deepstrata.inference import RunOptions, load_model
    from deepstrata.inference.engine.plan import make_plan
    from deepstrata.inference.engine.stream import normalize
    from deepstrata.inference.engine.windows import Window

    gdal.UseExceptions()
    model = load_model(args.model, "cpu", args.threads)
    ds = gdal.Open(args.raster)
    full = Window(0, 0, ds.RasterXSize, ds.RasterYSize)
    plan = make_plan(model, full, RunOptions(device="cpu", batch_size=args.batch), lambda message: None)
    data = ds.ReadAsArray().astype(np.float32)
    normalize(data, np.ones(data.shape[1:], dtype=bool), model.card.input.normalization)
    session, name, tiles = model.session, model.input_name, 0
    batches = []
    for chunk in plan.chunks():
        window = plan.processing_window(chunk, full)
        grid = plan.grid(window)
        th, tw = plan.tile_in
        for y in grid.rows:
            row = list(grid.row_tiles(y))
            for i in range(0, len(row), plan.batch):
                part = row[i:i + plan.batch]
                batches.append(np.stack([data[:, window.y + y:window.y + y + th, window.x + t.x:window.x + t.x + tw]
                                         for t in part]))
                tiles += len(part)
    session.run(None, {name: batches[0]})  # warm-up, as the engine's first batch is
    started = time.perf_counter()
    for batch in batches:
        session.run(None, {name: batch})
    return {"tiles": tiles, "overlap": plan.overlap, "batch": plan.batch, "rss_mb": _peak_rss_mb(),
            "inside": time.perf_counter() - started}


def child_engine(args: argparse.Namespace) -> dict[str, Any]:
    from deepstrata.inference import cli

    argv = ["run", "--model", args.model, "--input", args.raster, "--output", args.output, "--device", "cpu",
            "--batch-size", str(args.batch), "--median", "1", "--quiet"]  # Deepness below: no small-segment filter
    if args.overlap is not None:
        argv += ["--overlap", str(args.overlap)]
    if args.output_format:
        argv += ["--output-format", args.output_format]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    started = time.perf_counter()
    code = cli.main(argv)
    if code:
        raise SystemExit(f"engine run failed with exit status {code}")
    return {"tiles": -1, "overlap": -1, "batch": args.batch, "rss_mb": _peak_rss_mb(),
            "inside": time.perf_counter() - started}


def receptive_radius(model_path: Path, size: int = TILE, trials: int = 4) -> int:
    """The model's receptive radius, measured: the farthest output pixel that changes when one input pixel at the
    tile's centre does, over a few random tiles (the graph is fixed at TILE px)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    radius, c = 0, size // 2
    for _ in range(trials):
        tile = rng.uniform(0, 255, size=(1, 3, size, size)).astype(np.float32)
        moved = tile.copy()
        moved[0, :, c, c] += 100.0
        diff = np.abs(session.run(None, {name: moved})[0] - session.run(None, {name: tile})[0]).max(axis=(0, 1))
        ys, xs = np.nonzero(diff > 0)
        if ys.size:
            radius = max(radius, int(np.abs(ys - c).max()), int(np.abs(xs - c).max()))
    return radius


def child_deepness(args: argparse.Namespace) -> dict[str, Any]:
    from ds_testing import deepness_peer

    why = deepness_peer.unavailable_reason()
    if why:
        raise SystemExit(f"Deepness cannot run here: {why}")
    deepness_peer.use_peer()
    from deepness.processing.map_processor import map_processor_segmentation as peer

    # Mask only: the class array in memory, not Deepness's polygons (its contours cost more than the model).
    peer.MapProcessorSegmentation._create_vlayer_from_mask_for_base_extent = lambda self, mask: (lambda: None)
    started = time.perf_counter()
    result = deepness_peer.run_deepness(args.model, args.raster, task="segmentation", resolution_cm=PIXEL_M * 100,
                                        tile_size=TILE, overlap_percent=OVERLAP_PERCENT, batch_size=args.batch)
    inside = time.perf_counter() - started
    np.save(args.output, result.arrays[0])
    return {"tiles": -1, "overlap": int(TILE * OVERLAP_PERCENT / 100), "batch": args.batch, "rss_mb": _peak_rss_mb(),
            "inside": inside}


CHILDREN = {"bare": child_bare, "engine": child_engine, "deepness": child_deepness}


# ---------------------------------------------------------------------------------------------- driver

def _spawn(mode: str, raster: Path, model: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--raster", str(raster), "--model", str(model),
               "--output", str(output), "--batch", str(args.batch), "--threads", str(args.threads)]
    if getattr(args, "overlap", None) is not None:
        command += ["--overlap", str(args.overlap)]
    if args.output_format:
        command += ["--output-format", args.output_format]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GDAL_PAM_ENABLED="NO")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["seconds"] = seconds
    return result


def _versions() -> str:
    import onnxruntime
    from osgeo import gdal

    return (f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, "
            f"GDAL {gdal.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")


def agreement(engine_tif: Path, deepness_npy: Path) -> float:
    """Share of pixels where the engine's classes (1, 2) equal Deepness's (its values are class index + 1)."""
    from osgeo import gdal

    ds = gdal.Open(str(engine_tif))
    ours = ds.GetRasterBand(1).ReadAsArray()
    theirs = np.load(deepness_npy)
    h, w = min(ours.shape[0], theirs.shape[0]), min(ours.shape[1], theirs.shape[1])
    return float(np.mean(ours[:h, :w] == theirs[:h, :w]))


def run_benchmark(args: argparse.Namespace) -> None:
    print(_versions())
    modes = [m for m in ("bare", "engine", "deepness") if m not in args.skip]
    with tempfile.TemporaryDirectory(prefix="deepstrata-peer-") as tmp:
        work = Path(tmp)
        raster = write_raster(work / "ortho.tif", args.size)
        model = write_model(work / "tiny_deepness.onnx")
        outputs = {"bare": work / "bare.txt", "engine": work / "engine.tif", "deepness": work / "deepness.npy"}
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for _ in range(args.repeat):  # interleaved, so a burst of load elsewhere hits all alike
            for mode in modes:
                runs[mode].append(_spawn(mode, raster, model, outputs[mode], args))
        best = {m: dict(min(r, key=lambda x: x["seconds"]), rss_mb=max(x["rss_mb"] for x in r))
                for m, r in runs.items()}
        for mode, r in best.items():
            print(f"{mode:<9}{args.size:>6} px  process {r['seconds']:6.2f} s  inside {r['inside']:6.2f} s  "
                  f"peak RSS {r['rss_mb']:7.1f} MiB  (best of {args.repeat}; processes: "
                  f"{', '.join(format(x['seconds'], '.2f') for x in runs[mode])} s)"
                  + (f"  {r['tiles']} tiles of {TILE} px, overlap {r['overlap']}, batch {r['batch']}"
                     if r["tiles"] > 0 else ""))
        print("process: the whole process, timed by this script; inside: bare's session.run loop, the engine's "
              "cli.main, Deepness's map processor (with QGIS's start)")
        if "engine" in best and "deepness" in best:
            e, d = best["engine"], best["deepness"]
            print(f"deepness/engine wall time, processes: {d['seconds'] / e['seconds']:.3f} (goal >= 1.9)")
            print(f"engine/deepness peak RSS: {e['rss_mb'] / d['rss_mb']:.3f} (goal <= 1.0)")
            print(f"class agreement engine vs deepness: {agreement(outputs['engine'], outputs['deepness']):.4f}")
        if "engine" in best and "bare" in best:
            b, e = best["bare"], best["engine"]
            print(f"bare loop / engine process: {b['inside'] / e['seconds']:.3f}; bare loop / engine cli.main: "
                  f"{b['inside'] / e['inside']:.3f} (goal >= 0.87)")
        if "deepness" in best and "bare" in best:
            print(f"deepness process / bare loop: {best['deepness']['seconds'] / best['bare']['inside']:.3f} "
                  "(the limit for deepness/engine)")
        if args.measured_overlap and "engine" in best:
            _measured_overlap(args, raster, model, outputs["engine"], best["engine"], work)


def _measured_overlap(args: argparse.Namespace, raster: Path, model: Path, default_output: Path,
                      default: dict[str, Any], work: Path) -> None:
    """Reported apart: the engine with the overlap the model's measured receptive field needs (twice its radius),
    and whether its class map is identical to the run at the metadata's 15 %."""
    from osgeo import gdal

    radius = receptive_radius(model)
    measured = argparse.Namespace(**{**vars(args), "overlap": 2 * radius})
    runs = [_spawn("engine", raster, model, work / "engine_measured.tif", measured) for _ in range(args.repeat)]
    fastest = min(r["seconds"] for r in runs)
    a, b = gdal.Open(str(default_output)), gdal.Open(str(work / "engine_measured.tif"))
    differ = int(np.count_nonzero(a.ReadAsArray() != b.ReadAsArray()))
    print(f"measured receptive radius {radius} px -> overlap {2 * radius} px: engine process {fastest:.2f} s "
          f"(best of {args.repeat}), {default['seconds'] / fastest:.3f}x the run at 76 px; pixels that differ "
          f"from it: {differ}")


def memory_check(args: argparse.Namespace) -> None:
    """Peak RSS of the engine (and Deepness) at each of `--memory-sizes`: flat in raster size?"""
    with tempfile.TemporaryDirectory(prefix="deepstrata-peer-mem-") as tmp:
        work = Path(tmp)
        model = write_model(work / "tiny_deepness.onnx")
        peaks: dict[str, dict[int, float]] = {m: {} for m in ("engine", "deepness") if m not in args.skip}
        for size in args.memory_sizes:
            raster = write_raster(work / f"ortho_{size}.tif", size)
            for mode, kept in peaks.items():
                output = work / ("engine.tif" if mode == "engine" else "deepness.npy")
                r = _spawn(mode, raster, model, output, args)
                kept[size] = r["rss_mb"]
                print(f"{mode:<9}{size:>6} px  process {r['seconds']:7.2f} s  peak RSS {r['rss_mb']:7.1f} MiB")
                output.unlink(missing_ok=True)
            raster.unlink()
        low, high = min(args.memory_sizes), max(args.memory_sizes)
        for mode, kept in peaks.items():
            print(f"{mode} peak RSS ratio {high}/{low} px: {kept[high] / kept[low]:.3f}"
                  + (" (goal <= 1.2)" if mode == "engine" else ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: the default)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["bare", "engine", "deepness"])
    parser.add_argument("--measured-overlap", action="store_true",
                        help="also run the engine at the overlap the model's measured receptive field needs")
    parser.add_argument("--overlap", type=int, help=argparse.SUPPRESS)  # children only
    parser.add_argument("--output-format", choices=("cog", "gtiff"),
                        help="the engine's output (default: the CLI's, a Cloud-Optimized GeoTIFF with overviews)")
    parser.add_argument("--memory-sizes", nargs="*", type=int, default=[],
                        help="instead of the comparison: peak RSS of the engine and Deepness at these sizes")
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--raster")
    parser.add_argument("--model")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
    elif args.memory_sizes:
        print(_versions())
        memory_check(args)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
