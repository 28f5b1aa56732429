"""``python -m training ms-anomaly``: the shipped multispectral anomaly model, the whitened per-pixel autoencoder
of :mod:`training.fit_anomaly` fitted to the Landsat 8 and Sentinel-2 scenes, calibrated on held-out blocks and
scored on materials planted into the test blocks.

Its input is the geology model's: the six common bands (blue, green, red, NIR, SWIR1, SWIR2) in Landsat 8/9 OLI
Level-1 DN, so one band preset in the plugin serves both models; Sentinel-2 is converted by
:func:`training.sensors.calibrate`. Clouds (Fmask's first pass, :func:`training.ratios.cloud_mask`) are left out
of fitting, calibration and scoring (they are common, not anomalous); the report says how many of them the
threshold flags.

Planted materials (:data:`MATERIALS`: hand-set, approximate TOA reflectances of the six bands typical of a
blue tarp / painted roof, a hematite gossan, kaolinite tailings, char of a burn, a salt crust and an algal bloom;
not library spectra) are mixed into 3x3 or 5x5 patches at a random abundance in [0.3, 1]. The
report gives ROC AUC of the engine's score next to global RX (Reed & Yu 1990) on the same pixels, and how many
patches the card's threshold catches.
"""
from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from osgeo import gdal

from .data import block_split, extract_chips
from .evaluate import report, roc_auc
from .export import export_model
from .fit_anomaly import MAD_SCALE, FitConfig, Fitted, fit_images, parity_tolerance
from .geology import SCENES
from .ratios import cloud_mask
from .rx import rx_scores
from .sensors import BANDS, Calibrated, calibrate, to_oli_dn, write_raster
from .workflow import block_mask, command_line, engine_output, rounded, write_json

log = logging.getLogger(__name__)

OUTPUT = "resources/models/anomaly_multispectral.onnx"
REPORTS = "training/reports/anomaly_multispectral"
NORMAL_QUANTILE = 0.999
NODATA = -9999.0
MATERIALS: dict[str, tuple[float, ...]] = {  # TOA reflectance: blue, green, red, NIR, SWIR1, SWIR2
    "blue tarp / roof": (0.30, 0.22, 0.10, 0.14, 0.12, 0.09),
    "hematite gossan": (0.07, 0.11, 0.26, 0.32, 0.38, 0.30),
    "kaolinite tailings": (0.40, 0.45, 0.50, 0.55, 0.58, 0.36),
    "burn char": (0.04, 0.04, 0.04, 0.05, 0.07, 0.06),
    "salt crust": (0.62, 0.64, 0.65, 0.64, 0.55, 0.45),
    "algal bloom": (0.05, 0.11, 0.04, 0.22, 0.03, 0.02),
}
OLI_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7")
WAVELENGTHS = ("0.45-0.51", "0.53-0.59", "0.64-0.67", "0.85-0.88", "1.57-1.65", "2.11-2.29")


@dataclass(frozen=True)
class Recipe:
    chip: int = 8
    block: int = 64
    components: int = 6
    width: int = 32
    bottleneck: int = 4
    rounds: int = 4
    epochs: int = 15
    trim: float = 0.05
    max_chips: int = 3000
    planted: int = 40  # per scene
    seed: int = 0
    threads: int = 1

    def fit_config(self) -> FitConfig:
        return FitConfig(components=self.components, width=self.width, bottleneck=self.bottleneck,
                         rounds=self.rounds, epochs=self.epochs, trim=self.trim, chip=self.chip,
                         max_chips=self.max_chips, seed=self.seed, threads=self.threads, band_scale="common")


@dataclass
class SceneData:
    calibrated: Calibrated
    clouds: np.ndarray
    path: str  # the model input with clouds as nodata


def prepare(folder: Path) -> list[SceneData]:
    """Each scene's model input (OLI DN) written to ``folder`` with clouds and invalid pixels as nodata."""
    scenes = []
    for scene in SCENES:
        cal = calibrate(scene)
        clouds = cloud_mask(cal.reflectance) & np.isfinite(cal.reflectance).all(axis=0)
        data = cal.model_input.copy()
        data[:, clouds] = np.nan
        path = write_raster(folder / f"{scene.name}.tif", data, cal, OLI_BANDS, NODATA)
        scenes.append(SceneData(cal, clouds, path))
        log.info("%s: %d x %d px, clouds %.1f %%", scene.name, data.shape[2], data.shape[1], 100 * clouds.mean())
    return scenes


def card(r: Recipe, fitted: Fitted, calibration: dict[str, float], threshold: float, metrics: dict[str, float],
         command: str) -> dict[str, Any]:
    bands = [{"name": b, "unit": "DN", "description": f"{BANDS[i]} ({WAVELENGTHS[i]} um): Landsat 8/9 OLI band "
              f"{b[1:]} Level-1 DN; Sentinel-2 and other sensors converted (see the model description)"}
             for i, b in enumerate(OLI_BANDS)]
    return {
        "schema": "deepstrata.card/1",
        "name": "Spectral anomalies from Landsat 8/9 or Sentinel-2 (whitened autoencoder)",
        "version": "1.0.0",
        "task": "anomaly",
        "description": (
            "Per-pixel autoencoder of the whitened spectra of six bands (blue, green, red, NIR, SWIR1, SWIR2), "
            "fitted without labels to a Landsat 8 scene (Florida) and a Sentinel-2 scene (Para, Brazil). Pixels "
            "whose spectrum it cannot reconstruct score high: unusual materials such as gossans, tailings, "
            "tarps and roofs, salt, burns, blooms. The score is a robust z-score calibrated on held-out normal "
            "pixels, so it compares across scenes. Input: Landsat 8/9 OLI Level-1 DN (DN = (rho' + 0.1) / 2e-5, "
            "rho' TOA reflectance without the sun-angle correction); Sentinel-2 reflectance x 10000 is converted "
            "by the plugin's band presets. Clouds were left out of fitting; the share of cloud pixels flagged at "
            "the default threshold is in the metrics."),
        "input": {
            "kind": "multispectral", "bands": bands, "dtype": "float32", "normalization": fitted.normalization,
            "tile_size": 256, "margin": 0,
        },
        "output": {"activation": "none",
                   "anomaly": {"error": "mse", "calibration": calibration, "threshold": threshold}},
        "training": {
            "data": "Landsat 8 OLI LC80200392015216LGN00 (Florida, 384 x 384 px crop) and Sentinel-2 L2A (Para), "
                    "training/datasets/{landsat8_florida,sentinel2_para}/PROVENANCE.txt; clouds left out",
            "labels": "none (fitted to normal pixels); scored on materials planted into held-out blocks",
            "architecture": f"WhitenedAutoencoder (training/fit_anomaly.py): {fitted.components} whitened principal "
                            f"components, 1x1 conv autoencoder width {r.width}, bottleneck {r.bottleneck}; "
                            "residual rescaled so the engine's error is log(1 + squared whitened error)",
            "calibration": "median and MAD of the engine's squared error on the validation blocks; threshold = "
                           f"the {100 * NORMAL_QUANTILE:g}th percentile of their scores",
            "metrics": metrics,
            "seed": r.seed,
            "config": asdict(r),
            "created_by": "training/ms_anomaly.py",
            "command": command,
        },
    }


def fit(r: Recipe, scenes: Sequence[SceneData]) -> tuple[Fitted, dict]:
    chips = extract_chips([(s.path, None) for s in scenes], r.chip, block=r.block, max_nodata=0.5)
    split = block_split(chips.origins, r.chip, r.block, (0.7, 0.15, 0.15), r.seed)
    train_index = split.indices("train")
    rng = np.random.default_rng(r.seed)
    images = chips.images[np.sort(rng.permutation(train_index)[:r.max_chips])]
    fitted = fit_images(images, r.fit_config(), rng, compress=True)
    return fitted, dict(split.blocks)


def plant(data: np.ndarray, where: np.ndarray, count: int, sun: Optional[float],
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int, int, int]]]:
    """Mix :data:`MATERIALS` into ``count`` square patches inside ``where``; the planted DN, truth and sites."""
    out, truth = data.copy(), np.zeros(where.shape, dtype=bool)
    sites: list[tuple[str, int, int, int]] = []
    names = list(MATERIALS)
    rows, cols = np.nonzero(where)
    for i in rng.permutation(len(rows)):
        if len(sites) == count:
            break
        y, x, half = int(rows[i]), int(cols[i]), int(rng.integers(1, 3))
        box = (slice(y - half, y + half + 1), slice(x - half, x + half + 1))
        if y < half + 2 or x < half + 2 or not where[box].all() or truth[y - half - 2:y + half + 3,
                                                                         x - half - 2:x + half + 3].any():
            continue
        material = names[len(sites) % len(names)]
        target = to_oli_dn(np.array(MATERIALS[material])[:, None, None], sun)
        abundance = float(rng.uniform(0.3, 1.0))
        out[(slice(None), *box)] = (1 - abundance) * data[(slice(None), *box)] + abundance * target
        truth[box] = True
        sites.append((material, y, x, half))
    return out, truth, sites


def planted_test(model: Path, r: Recipe, scenes: Sequence[SceneData], blocks: dict, threshold: float,
                 folder: Path, reports: Path, command: str) -> dict[str, float]:
    rng = np.random.default_rng(r.seed)
    all_scores, all_rx, all_truth, caught, normal = [], [], [], {m: [0, 0] for m in MATERIALS}, []
    for index, scene in enumerate(scenes):
        data = scene.calibrated.model_input.astype(np.float64)
        data[:, scene.clouds] = np.nan
        valid = np.isfinite(data).all(axis=0)
        test = block_mask(valid.shape, blocks, r.block, "test", raster=index) & valid
        planted, truth, sites = plant(data, test, r.planted, scene.calibrated.sun_elevation, rng)
        path = write_raster(folder / f"planted_{index}.tif", planted, scene.calibrated, OLI_BANDS, NODATA)
        scores, _ = engine_output(model, path, threads=r.threads)
        rx = rx_scores(planted, valid)
        keep = test & np.isfinite(scores)
        all_scores.append(scores[keep])
        all_rx.append(rx[keep])
        all_truth.append(truth[keep])
        normal.append(scores[keep & ~truth])
        for material, y, x, half in sites:
            caught[material][0] += int(scores[y - half:y + half + 1, x - half:x + half + 1].max() >= threshold)
            caught[material][1] += 1
        log.info("%s: %d patches planted", scene.calibrated.scene.name, len(sites))
    scores, rx, truth = np.concatenate(all_scores), np.concatenate(all_rx), np.concatenate(all_truth)
    normal_scores = np.concatenate(normal)
    baseline = roc_auc(rx, truth)
    cloud_flagged = _cloud_flagged(model, scenes, threshold, folder, r.threads)
    extra = {"command": command, "threshold": threshold, "baseline_rx_auc": baseline,
             "detected_at_threshold": {m: f"{c}/{n}" for m, (c, n) in caught.items()},
             "false_positive_rate_at_threshold": float((normal_scores >= threshold).mean()),
             "cloud_pixels_flagged": cloud_flagged,
             "materials_toa_reflectance": {m: list(v) for m, v in MATERIALS.items()}}
    headline = report(reports, "planted", scores=scores, truth=truth, extra=extra,
                      title="Materials planted in held-out blocks (Landsat 8 + Sentinel-2)")
    headline["baseline_rx_auc"] = baseline
    headline["detected_fraction"] = sum(c for c, _ in caught.values()) / max(sum(n for _, n in caught.values()), 1)
    headline["cloud_pixels_flagged"] = cloud_flagged
    return headline


def _cloud_flagged(model: Path, scenes: Sequence[SceneData], threshold: float, folder: Path, threads: int) -> float:
    """Share of cloud pixels the model flags (clouds were left out of fitting)."""
    flagged, total = 0, 0
    for index, scene in enumerate(scenes):
        if not scene.clouds.any():
            continue
        path = write_raster(folder / f"with_clouds_{index}.tif", scene.calibrated.model_input, scene.calibrated,
                            OLI_BANDS, NODATA)
        scores, _ = engine_output(model, path, threads=threads)
        values = scores[scene.clouds & np.isfinite(scores)]
        flagged, total = flagged + int((values >= threshold).sum()), total + values.size
    return flagged / total if total else 0.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training ms-anomaly", description=__doc__.splitlines()[0])
    p.add_argument("--output", default=OUTPUT, help=f"the .onnx to write (default {OUTPUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    for name in ("epochs", "width", "bottleneck", "components", "rounds", "planted", "seed", "threads"):
        p.add_argument(f"--{name}", type=int, default=getattr(Recipe, name))
    p.add_argument("--trim", type=float, default=Recipe.trim)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv or [])
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = Recipe(epochs=a.epochs, width=a.width, bottleneck=a.bottleneck, components=a.components, rounds=a.rounds,
               trim=a.trim, planted=a.planted, seed=a.seed, threads=a.threads)
    torch.set_num_threads(r.threads)
    gdal.UseExceptions()
    command = command_line(["ms-anomaly", *argv])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deepstrata-ms-anomaly-") as tmp:
        folder = Path(tmp)
        scenes = prepare(folder)
        fitted, blocks = fit(r, scenes)
        tolerance = parity_tolerance(fitted.model, len(OLI_BANDS))
        raw = {"median": 0.0, "mad": 1.0 / MAD_SCALE}  # uncalibrated: the engine's score is the raw error
        draft = export_model(fitted.model, card(r, fitted, raw, 1.0, {}, command), folder / "draft.onnx",
                             tolerance=tolerance)
        normal = []
        for index, scene in enumerate(scenes):
            errors, _ = engine_output(draft, scene.path, threads=r.threads)
            normal.append(errors[block_mask(errors.shape, blocks, r.block, "validation", index) & np.isfinite(errors)])
        values = np.concatenate(normal)
        median = float(np.median(values))
        calibration = {"median": round(median, 6), "mad": round(float(np.median(np.abs(values - median))), 6)}
        z = (values - calibration["median"]) / (MAD_SCALE * calibration["mad"])
        threshold = math.ceil(float(np.quantile(z, NORMAL_QUANTILE)) * 2) / 2
        calibrated = export_model(fitted.model, card(r, fitted, calibration, threshold, {}, command),
                                  folder / "calibrated.onnx", tolerance=tolerance)
        metrics = rounded(planted_test(calibrated, r, scenes, blocks, threshold, folder, Path(a.reports), command))
    seconds = time.perf_counter() - started
    write_json(Path(a.reports) / "training.json", {
        "command": command, "calibration": calibration, "threshold": threshold, "seconds": round(seconds, 1),
        "components": fitted.components, "rounds": [t.best_metric for t in fitted.rounds]})
    path = export_model(fitted.model, card(r, fitted, calibration, threshold, metrics, command), a.output,
                        tolerance=tolerance)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s; calibration {calibration}, "
          f"threshold {threshold}, planted materials {metrics}")
    return 0
