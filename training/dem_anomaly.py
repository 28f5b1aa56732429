"""``python -m training dem-anomaly``: the shipped terrain anomaly model (resources/models/anomaly_dem.onnx).

An analytic, NaN-aware feature stem at the user's search distance (training/terrain_anomaly_net.py) and a small
per-pixel head learned on anomalies planted into the training DEMs (training/terrain_anomalies.py); the default
threshold is a fixed calibration on the natural terrain of those DEMs. The report scores it through the plugin's
engine on every DEM (unseen ones included) against relative relief and a robust local z-score.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from osgeo import gdal

from .export import export_model
from .terrain_anomaly_data import SOURCES, LoadedDem, load
from .terrain_anomaly_fit import calibrate, collect, fit_head
from .terrain_anomaly_net import DEFAULT_CELLS, MARGIN, MAX_CELLS, MIN_CELLS, TerrainAnomalyNet
from .terrain_anomaly_report import evaluate_all, write_report
from .workflow import command_line, write_json

log = logging.getLogger(__name__)

OUTPUT = "resources/models/anomaly_dem.onnx"
REPORTS = "training/reports/anomaly_dem"
#: Natural terrain allowed over the default threshold on the calibration DEMs (each one): half the goal's 0.1 %.
NATURAL_RATE = 0.0005


@dataclass(frozen=True)
class Recipe:
    # the training DEMs, and coarser classes averaged from them (no native training DEM is coarser than 90 m)
    train: tuple[str, ...] = tuple(s.name for s in SOURCES if s.split == "training") + (
        "bigtujunga@4", "bigtujunga@8", "spain_bejar_25m@4", "spain_bejar_25m@8", "maungawhau_lidar_2m@4")
    seeds: tuple[int, ...] = (1, 2, 3)
    search_cells: tuple[float, ...] = (DEFAULT_CELLS, 10.0, 24.0)
    per_kind: int = 8
    negatives: int = 20000
    hidden: int = 16
    steps: int = 1000
    seed: int = 0
    threads: int = 1


def card(r: Recipe, threshold: float, calibration: dict[str, float], metrics: dict[str, Any],
         command: str) -> dict[str, Any]:
    return {
        "schema": "deepstrata.card/1",
        "name": "Terrain anomalies from DEM (any resolution)",
        "version": "2.0.0",
        "task": "anomaly",
        "description": (
            "Finds pits, mounds, quarries and mining pits, embankments and DEM artefacts (spikes, voids, stripes) "
            "at any cell size, from 1 m lidar to 1 km grids, geographic CRSs included. The search distance is the "
            f"largest anomaly to look for (default {DEFAULT_CELLS:g} cells). Relief is measured from a local plane "
            "fitted to valid cells only and compared with the local roughness, so borders and nodata holes invent "
            "nothing. Band 1 of the output is the anomaly score (a logit; the default threshold, fixed, flags at most "
            "about 0.05 % of natural terrain), band 2 the signed residual in metres: the polygons say 'depression' or 'rise'."),
        "input": {
            "kind": "dem",
            "bands": [{"name": "elevation", "unit": "m", "description": "Elevation in metres"}],
            "dtype": "float32",
            "normalization": {"method": "none"},
            "nodata": "nan",
            "scale": {"input": "scale", "default_cells": DEFAULT_CELLS, "max_cells": MAX_CELLS,
                      "min_cells": MIN_CELLS},
            "tile_size": 512,
            "margin": MARGIN,
        },
        "output": {"anomaly": {"error": "score", "threshold": threshold}},
        "training": {
            "data": "planted anomalies in real DEMs: " + ", ".join(r.train) + " (name@F: averaged over F x F "
                    "cells; training/terrain_anomaly_data.py; the unseen DEMs of the report were never used to fit "
                    "or calibrate)",
            "labels": "synthetic anomalies of seven kinds planted by training/terrain_anomalies.py (seeds "
                      f"{', '.join(map(str, r.seeds))}; {r.per_kind} of each kind per DEM and seed)",
            "architecture": "analytic stem (plane-fit residuals at 4 scales, roughness, eight-sector closedness; "
                            f"NaN-aware box sums) + per-pixel MLP head ({r.hidden} hidden, 2 layers)",
            "calibration": f"threshold = the highest, over the calibration DEMs {calibration}, of the score "
                           f"{100 * NATURAL_RATE:g} % of their natural cells reach",
            "metrics": metrics,
            "seed": r.seed,
            "created_by": "training/dem_anomaly.py",
            "command": command,
        },
    }


def fit(r: Recipe, dems: Sequence[LoadedDem]) -> tuple[TerrainAnomalyNet, float, dict[str, float], dict[str, Any]]:
    started = time.perf_counter()
    torch.manual_seed(r.seed)
    net = TerrainAnomalyNet(r.hidden).eval()
    x, y = collect(dems, r.seeds, r.per_kind, r.negatives, net, r.search_cells)
    losses = fit_head(net, x, y, steps=r.steps, seed=r.seed)
    threshold, per_dem = calibrate(net, dems, NATURAL_RATE)
    threshold = math.ceil(threshold * 10) / 10
    info = {"samples": int(len(y)), "positives": int(y.sum()), "losses": losses,
            "seconds_fit": round(time.perf_counter() - started, 1)}
    log.info("head fitted on %d samples; threshold %.2f (%s)", len(y), threshold, per_dem)
    return net, threshold, {k: round(v, 3) for k, v in per_dem.items()}, info


def export(net: TerrainAnomalyNet, card_dict: dict[str, Any], path: str | Path) -> Path:
    sample = np.array([30.0, 30.0, 30.0 * DEFAULT_CELLS], dtype=np.float32)
    return export_model(net, card_dict, path, sizes=(64, 96), tolerance=1e-3, extras={"scale": sample})


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training dem-anomaly", description=__doc__.splitlines()[0])
    p.add_argument("--output", default=OUTPUT, help=f"the .onnx to write (default {OUTPUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    p.add_argument("--train", nargs="+", default=list(Recipe.train), help="training/calibration DEMs (names of "
                   "training/terrain_anomaly_data.SOURCES or paths)")
    p.add_argument("--evaluate", nargs="*", default=None, help="DEMs to report on (default: every DEM)")
    for name in ("steps", "per_kind", "hidden", "seed", "threads"):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=getattr(Recipe, name))
    p.add_argument("--seeds", type=int, nargs="+", default=list(Recipe.seeds))
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv or [])
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ["GDAL_PAM_ENABLED"] = "NO"
    r = Recipe(train=tuple(a.train), seeds=tuple(a.seeds), per_kind=a.per_kind, hidden=a.hidden, steps=a.steps,
               seed=a.seed, threads=a.threads)
    torch.set_num_threads(r.threads)
    gdal.UseExceptions()
    command = command_line(["dem-anomaly", *argv])
    started = time.perf_counter()
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    dems = [load(name) for name in r.train]
    net, threshold, per_dem, info = fit(r, dems)
    with tempfile.TemporaryDirectory(prefix="deepstrata-dem-anomaly-") as tmp:
        draft = export(net, card(r, threshold, per_dem, {}, command), Path(tmp) / "draft.onnx")
        names = a.evaluate if a.evaluate is not None else [s.name for s in SOURCES]
        Path(a.reports).mkdir(parents=True, exist_ok=True)
        results = evaluate_all(draft, names, set(r.train), threshold, Path(tmp), Path(a.reports))
    unseen = [e for e in results if e.split == "unseen"]
    metrics: dict[str, Any] = {"threshold": threshold}
    if unseen:
        metrics.update({
            "unseen_roc_auc_min": round(min(e.auc["model"] for e in unseen), 4),
            "unseen_roc_auc_mean": round(float(np.mean([e.auc["model"] for e in unseen])), 4),
            "unseen_natural_flag_rate_max": round(max(e.flag_rate for e in unseen), 6)})
    path = export(net, card(r, threshold, per_dem, metrics, command), a.output)
    info["seconds_total"] = round(time.perf_counter() - started, 1)
    write_json(Path(a.reports) / "training.json", {"command": command, "recipe": asdict(r), "threshold": threshold,
                                                   "calibration": per_dem, **info})
    write_report(Path(a.reports), results, threshold, command)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB); threshold {threshold}; {metrics}")
    return 0
