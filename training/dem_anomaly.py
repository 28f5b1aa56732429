"""``python -m training dem-anomaly``: the shipped terrain anomaly model, a relief autoencoder trained on the
SRTM DEM (normal terrain), calibrated on held-out blocks and scored on anomalies planted into the test blocks.

The autoencoder (:class:`training.nets.ReliefAutoencoder`) reconstructs relief around the local mean, so what it
cannot reconstruct (pits, mounds, quarries, spikes) is the anomaly. The calibration is the median and MAD of the
engine's per-pixel error on the validation blocks; the default threshold is the robust z-score that 99.9 % of
those normal pixels stay under. The report compares it with a plain relief (TPI) detector on the same pixels.
"""
from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from osgeo import gdal
from torch.nn import functional as F

from .data import block_split, extract_chips
from .evaluate import report, roc_auc
from .export import export_model
from .geomorphons_io import Dem, read_dem, write_dem
from .landforms import margin_sample
from .nets import ReliefAutoencoder
from .receptive import MarginCheck, effective_margin
from .terrain_anomalies import KINDS, plant, sites_in
from .train import TrainConfig, seed_everything, train
from .workflow import block_mask, command_line, engine_output, write_json

log = logging.getLogger(__name__)

DEM = "training/datasets/srtm_bigtujunga/bigtujunga.tif"
OUTPUT = "resources/models/anomaly_dem.onnx"
REPORTS = "training/reports/anomaly_dem"
NORMAL_QUANTILE = 0.999


@dataclass(frozen=True)
class Recipe:
    dem: str = DEM
    radius: int = 10
    scale_m: float = 50.0
    width: int = 16
    depth: int = 2
    chip: int = 64
    stride: int = 32
    block: int = 128
    epochs: int = 25
    patience: int = 6
    planted: int = 60
    seed: int = 0
    threads: int = 1


def card(r: Recipe, normalization: dict[str, Any], margin: MarginCheck, calibration: dict[str, float],
         threshold: float, metrics: dict[str, float], command: str) -> dict[str, Any]:
    return {
        "schema": "deepstrata.card/1",
        "name": "Terrain anomalies from DEM (relief autoencoder)",
        "version": "1.0.0",
        "task": "anomaly",
        "description": (
            "A convolutional autoencoder of terrain relief trained on a 30 m SRTM DEM of mountains. Cells whose "
            "relief it cannot reconstruct score high: pits, mounds, quarries and other cuts, spikes and "
            "artefacts of the DEM. The score is a robust z-score calibrated on held-out normal terrain, so "
            "scores compare across DEMs. Give it a DEM in metres at about 30 m."),
        "input": {
            "kind": "dem",
            "bands": [{"name": "elevation", "unit": "m", "description": "Elevation in metres"}],
            "dtype": "float32",
            "normalization": normalization,
            "pixel_size_m": 30.0,
            "tile_size": 512,
            "margin": margin.margin,
            "size_multiple": 2 ** r.depth,
        },
        "output": {
            "anomaly": {"error": "mae", "calibration": calibration, "threshold": threshold},
        },
        "training": {
            "data": "SRTM 1 arc-second DEM reprojected to 30 m, Big Tujunga, San Gabriel Mountains, California "
                    "(public domain; training/datasets/srtm_bigtujunga/PROVENANCE.txt)",
            "labels": "none (trained on normal terrain); scored on synthetic pits, mounds, quarries and spikes "
                      "planted into held-out blocks (training/terrain_anomalies.py)",
            "architecture": f"ReliefAutoencoder: local mean over {2 * r.radius + 1} px passes through, a conv "
                            f"autoencoder width {r.width} depth {r.depth} reconstructs relief / {r.scale_m:g} m",
            "calibration": f"median and MAD of the engine's absolute error on the validation blocks; threshold "
                           f"= the {100 * NORMAL_QUANTILE:g}th percentile of their scores",
            "metrics": metrics,
            "seed": r.seed,
            "created_by": "training/dem_anomaly.py",
            "command": command,
        },
    }


def fit(r: Recipe) -> tuple[ReliefAutoencoder, dict[str, Any], dict, MarginCheck, dict[str, Any]]:
    started = time.perf_counter()
    chips = extract_chips([(r.dem, None)], r.chip, r.stride, block=r.block)
    split = block_split(chips.origins, r.chip, r.block, (0.7, 0.15, 0.15), r.seed)
    train_set, val_set = chips.subset(split.indices("train")), chips.subset(split.indices("validation"))
    values = train_set.images[np.isfinite(train_set.images)]
    normalization = {"method": "zscore", "mean": [round(float(values.mean()), 3)], "std": [1.0]}
    seed_everything(r.seed)
    model = ReliefAutoencoder(r.radius, r.scale_m, r.width, r.depth)
    config = TrainConfig(epochs=r.epochs, batch_size=16, lr=2e-3, seed=r.seed, patience=r.patience, cosine=True,
                         normalization=normalization, threads=r.threads)
    result = train(model, train_set, val_set, config, "anomaly")
    margin = effective_margin(model, margin_sample(r.dem, normalization), model.size_multiple, softmax=False,
                              max_shift=0.5, floor=r.radius)
    log.info("effective margin %d px", margin.margin)
    info = {"chips": len(train_set), "best_epoch": result.best_epoch, "seconds": time.perf_counter() - started,
            "history": [e.__dict__ for e in result.history]}
    return model, normalization, dict(split.blocks), margin, info


def relief_score(dem: np.ndarray, radius: int) -> np.ndarray:
    """The baseline: |elevation - local mean| over a (2r+1)^2 window (absolute TPI), NaN-aware."""
    z = torch.from_numpy(np.nan_to_num(dem, nan=0.0).astype(np.float32))[None, None]
    w = torch.from_numpy(np.isfinite(dem).astype(np.float32))[None, None]
    k = 2 * radius + 1
    mean = F.avg_pool2d(z * w, k, 1, radius) / F.avg_pool2d(w, k, 1, radius).clamp_min(1e-6)
    return np.abs(dem - mean[0, 0].numpy())


def planted_test(model: Path, r: Recipe, dem: Dem, blocks: dict, threshold: float, folder: Path,
                 reports: Path, command: str) -> dict[str, float]:
    rng = np.random.default_rng(r.seed)
    test = block_mask((dem.elevation.shape[0], dem.elevation.shape[1]), blocks, r.block, "test") & np.isfinite(dem.elevation)
    sites = sites_in(test, r.planted, spacing=16, rng=rng, edge=8)
    z, truth, planted = plant(dem.elevation, sites, rng)
    path = write_dem(folder / "planted.tif", z, dem.cell_size, dem)
    scores, _ = engine_output(model, path)
    keep = test & np.isfinite(scores)
    baseline = roc_auc(relief_score(z, r.radius)[keep], truth[keep])
    detected = {k: [bool(scores[max(p.row - p.radius, 0):p.row + p.radius + 1,
                                max(p.col - p.radius, 0):p.col + p.radius + 1].max() >= threshold)
                    for p in planted if p.kind == k] for k in KINDS}
    normal = scores[keep & ~truth]
    extra = {"command": command, "planted": len(planted), "threshold": threshold,
             "detected_at_threshold": {k: f"{sum(v)}/{len(v)}" for k, v in detected.items()},
             "false_positive_rate_at_threshold": float((normal >= threshold).mean()),
             "baseline_relief_auc": baseline}
    headline = report(reports, "planted", scores=scores[keep], truth=truth[keep], extra=extra,
                      title="Terrain anomalies planted in held-out blocks")
    headline["baseline_relief_auc"] = baseline
    headline["detected_fraction"] = sum(map(sum, detected.values())) / max(len(planted), 1)
    return headline


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training dem-anomaly", description=__doc__.splitlines()[0])
    p.add_argument("--dem", default=DEM, help=f"DEM of normal terrain in metres (default {DEM})")
    p.add_argument("--output", default=OUTPUT, help=f"the .onnx to write (default {OUTPUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    for name in ("epochs", "width", "depth", "chip", "stride", "block", "planted", "seed", "threads"):
        p.add_argument(f"--{name}", type=int, default=getattr(Recipe, name))
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv or [])
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = Recipe(dem=a.dem, epochs=a.epochs, width=a.width, depth=a.depth, chip=a.chip, stride=a.stride,
               block=a.block, planted=a.planted, seed=a.seed, threads=a.threads)
    torch.set_num_threads(r.threads)
    gdal.UseExceptions()
    command = command_line(["dem-anomaly", *argv])
    model, normalization, blocks, margin, info = fit(r)
    dem = read_dem(r.dem)
    with tempfile.TemporaryDirectory(prefix="deepstrata-dem-anomaly-") as tmp:
        folder = Path(tmp)
        # Uncalibrated draft (median 0, MAD 1/1.4826): the engine's "score" is then the raw error itself.
        raw = {"median": 0.0, "mad": 1.0 / 1.4826}
        draft = export_model(model, card(r, normalization, margin, raw, 1.0, {}, command), folder / "draft.onnx",
                             sizes=(64, 128))
        errors, _ = engine_output(draft, r.dem)
        normal = errors[block_mask((errors.shape[0], errors.shape[1]), blocks, r.block, "validation") & np.isfinite(errors)]
        median = float(np.median(normal))
        calibration = {"median": round(median, 4), "mad": round(float(np.median(np.abs(normal - median))), 4)}
        scores = (normal - calibration["median"]) / (1.4826 * calibration["mad"])
        threshold = math.ceil(float(np.quantile(scores, NORMAL_QUANTILE)) * 2) / 2
        calibrated = export_model(model, card(r, normalization, margin, calibration, threshold, {}, command),
                                  folder / "calibrated.onnx", sizes=(64, 128))
        metrics = planted_test(calibrated, r, dem, blocks, threshold, folder, Path(a.reports), command)
    metrics = {k: round(float(v), 4) for k, v in metrics.items()}
    write_json(Path(a.reports) / "training.json", {"command": command, "calibration": calibration,
                                                   "threshold": threshold, "margin": margin.__dict__, **info})
    path = export_model(model, card(r, normalization, margin, calibration, threshold, metrics, command), a.output,
                        sizes=(64, 128))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); calibration {calibration}, threshold {threshold}, "
          f"planted anomalies {metrics}")
    return 0
