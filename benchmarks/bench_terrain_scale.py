"""Terrain workflows at three scales: seconds per megapixel of Classify landforms and Detect anomalies on real DEMs
at 1 m (lidar), 30 m and 1 km, each at its own scale (the models' default search distance), and a 1 km-class DEM
of 1.6 megapixels (the issue's target: within a minute each on the 2-core machine).

Each job runs what the Processing algorithm runs for the raster, in this process on the CPU: landforms =
run_at_model_resolution with the bundled landform model; anomalies = run_at_model_resolution with the bundled
DEM anomaly model, then the anomaly mask at the card's threshold. One untimed warm-up run first. It prints, per
job and DEM, the megapixels, seconds, seconds per megapixel and the ratio of that to the 30 m DEM's (the
baseline, same process): 1.0 means time grows with the pixel count alone, whatever the cell size.

There is no native 1 km DEM of 1.6 Mpx in training/datasets: the 1.6 Mpx raster is the Rhine 30 arc-second DEM
(997 x 682) resampled bilinearly to 1.55x as many cells per side (1545 x 1057, about 500 x 600 m cells), for
timing only.

    .venv/bin/python benchmarks/bench_terrain_scale.py
"""
from __future__ import annotations

import os
import platform
import runpy
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
runpy.run_path(str(REPO / "tests" / "conftest.py"))  # puts `deepstrata` on sys.path

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
from osgeo import gdal  # noqa: E402

from deepstrata.inference import RunOptions, load_model  # noqa: E402
from deepstrata.inference.workflows.anomaly_outputs import write_mask  # noqa: E402
from deepstrata.inference.workflows.resample import run_at_model_resolution  # noqa: E402

gdal.UseExceptions()
MODELS = REPO / "resources" / "models"
DEMS = [("lidar 1 m (Minnesota)", REPO / "training/datasets/minnesota_lidar/dem.tif"),
        ("30 m (Big Tujunga)", REPO / "training/datasets/srtm_bigtujunga/bigtujunga.tif"),
        ("1 km (Rhine, EPSG:4326)", REPO / "training/datasets/dems/rhine_30s/dem.tif")]
BASELINE = 1  # the 30 m DEM


def _large_1km(folder: str) -> Path:
    src = gdal.Open(str(DEMS[2][1]))
    out = Path(folder) / "rhine_1.6mpx.tif"
    gdal.Warp(str(out), src, width=round(src.RasterXSize * 1.55), height=round(src.RasterYSize * 1.55),
              resampleAlg="bilinear", creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    src = None
    return out


def _landforms(dem: Path, folder: str) -> None:
    run_at_model_resolution(MODELS / "landforms_geomorphon.onnx", str(dem), os.path.join(folder, "forms.tif"),
                            RunOptions(device="cpu"))


def _anomalies(dem: Path, folder: str) -> None:
    model = load_model(MODELS / "anomaly_dem.onnx", "cpu")
    score = os.path.join(folder, "score.tif")
    run_at_model_resolution(model, str(dem), score, RunOptions(device="cpu"))
    assert model.card.output.anomaly is not None
    write_mask(score, model.card.output.anomaly.threshold, os.path.join(folder, "mask.tif"))


def _megapixels(path: Path) -> float:
    ds = gdal.Open(str(path))
    size = ds.RasterXSize * ds.RasterYSize / 1e6
    ds = None
    return size


def main() -> int:
    print(f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, GDAL {gdal.__version__}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")
    with tempfile.TemporaryDirectory(prefix="deepstrata-bench-") as folder:
        dems = DEMS + [("1 km class, 1.6 Mpx (Rhine resampled)", _large_1km(folder))]
        for job, run in (("landforms", _landforms), ("anomalies", _anomalies)):
            run(dems[0][1], folder)  # warm-up: model load, onnxruntime arenas
            rows = []
            for name, path in dems:
                started = time.perf_counter()
                run(path, folder)
                seconds = time.perf_counter() - started
                rows.append((name, _megapixels(path), seconds))
            base = rows[BASELINE][2] / rows[BASELINE][1]
            print(f"\n{job}: seconds per megapixel, ratio to the 30 m DEM's")
            for name, mpx, seconds in rows:
                print(f"  {name:40s} {mpx:5.2f} Mpx {seconds:7.2f} s {seconds / mpx:7.2f} s/Mpx "
                      f"ratio {seconds / mpx / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
