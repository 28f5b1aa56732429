"""``python -m training anomaly``: an anomaly model (the whitened autoencoder of training.fit_anomaly) for any
raster(s), with the shape of ``segment``: honest validation when known anomalies are given, a baseline to beat,
a carded export checked through the plugin's engine, and a report.

With ``--labels`` (a raster whose non-zero pixels, or polygons whose areas, are known anomalies; everything else
valid counts as normal), the raster's blocks are dealt into k spatial folds; for each fold and seed the model is
fitted to the other folds' pixels only and scores the held-out fold, where the ROC AUC is computed; the global RX
detector (Reed & Yu; training.rx), its mean and covariance from the same training pixels, scores the same pixels.
The paired sign and Wilcoxon tests compare the two over the (fold, seed) runs. The final model is fitted to every
block. Without labels nothing can be scored: the model is fitted, calibrated and exported, and the report says so.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Optional, Sequence, cast

import numpy as np

from ..data import normalise
from ..data.errors import DataError
from ..data.labels import load_labels
from ..evaluate import roc_auc
from ..export import export_model
from ..fit_anomaly import HELP, FitConfig, anomaly_card, fit_images, parity_tolerance, pixel_errors
from ..train import torch_settings
from ..workflow import command_line, engine_output, write_json
from .findings import Findings, Refused
from .folds import assign_folds
from .inputs import Scene, describe, read_scenes
from .paired import compare

log = logging.getLogger("training.custom")
MIN_BLOCK_PIXELS = 16


def _truth(scene: Scene, labels: Optional[str], field: Optional[str]) -> Optional[np.ndarray]:
    """(H, W) bool of known anomalies on the scene's grid (any non-zero label), or None without labels."""
    if labels is None:
        return None
    found = load_labels(labels, scene.grid, field or None)
    return np.asarray(found.array) != 0


def _block_counts(valid: np.ndarray, block: int, index: int) -> dict[tuple[int, int, int], int]:
    rows, cols = np.nonzero(valid)
    keys, n = np.unique(np.stack([cols // block, rows // block], axis=1), axis=0, return_counts=True)
    return {(index, int(c), int(r)): int(k)
            for (c, r), k in zip(cast(list[list[int]], keys.tolist()), cast(list[int], n.tolist()))
            if k >= MIN_BLOCK_PIXELS}


def _mask(shape: tuple[int, int], blocks: Sequence[tuple[int, int, int]], block: int, index: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for i, col, row in blocks:
        if i == index:
            mask[row * block:(row + 1) * block, col * block:(col + 1) * block] = True
    return mask


def _chips(image: np.ndarray, keep: np.ndarray, size: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Chips of ``size`` px over the pixels of ``keep`` (others NaN), at most ``limit`` of them."""
    masked = np.where(keep[None], image, np.nan).astype(np.float32)
    h, w = keep.shape
    chips = [masked[:, y:y + size, x:x + size] for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)
             if keep[y:y + size, x:x + size].any()]
    chosen = np.stack(chips) if chips else np.empty((0, image.shape[0], size, size), np.float32)
    return chosen[np.sort(rng.permutation(len(chosen))[:limit])] if len(chosen) > limit else chosen


def _rx(image: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """RX scores of the ``test`` pixels with the mean and covariance of the ``train`` pixels."""
    pixels = image[:, train].T.astype(np.float64)
    mean = pixels.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(pixels - mean, rowvar=False).reshape(len(mean), -1))
    scale = float(values[-1]) if values[-1] > 0 else 1.0
    whitened = (image[:, test].T.astype(np.float64) - mean) @ vectors / np.sqrt(np.clip(values, 0, None) + 1e-10 * scale)
    return np.einsum("pb,pb->p", whitened, whitened)


def _scores(fitted: Any, image: np.ndarray, config: FitConfig) -> np.ndarray:
    x = normalise(image[None], fitted.normalization)
    with torch_settings(config.threads, True):
        return pixel_errors(fitted.model, x)[0]


def _auc(scores: np.ndarray, truth: np.ndarray) -> Optional[float]:
    return roc_auc(scores, truth) if 0 < int(truth.sum()) < truth.size else None


def cross_validate(scenes: list[Scene], truths: list[np.ndarray], config: FitConfig, block: int, k: int,
                   seeds: Sequence[int], findings: Findings) -> list[dict[str, Any]]:
    """Per (fold, seed): the network's and RX's ROC AUC on the held-out fold's pixels."""
    counts: dict[tuple[int, int, int], int] = {}
    for i, scene in enumerate(scenes):
        counts.update(_block_counts(scene.valid, block, i))
    folds = assign_folds(counts, k, seed=0)
    rows: list[dict[str, Any]] = []
    for f, test_blocks in enumerate(folds):
        for seed in seeds:
            rng = np.random.default_rng(seed)
            train_chips, scores, rx, truth = [], [], [], []
            for i, scene in enumerate(scenes):
                test = _mask(scene.shape, test_blocks, block, i) & scene.valid
                train = scene.valid & ~_mask(scene.shape, test_blocks, block, i)
                train_chips.append(_chips(scene.image, train, config.chip, config.max_chips, rng))
                if test.any() and train.sum() > scene.image.shape[0]:
                    truth.append(truths[i][test])
                    rx.append(_rx(scene.image, train, test))
            images = np.concatenate(train_chips)
            if len(images) < 2:
                raise Refused(f"fold {f + 1} leaves {len(images)} training chips: use smaller blocks (--block) or "
                              "fewer folds (--folds).")
            fitted = fit_images(images, replace(config, seed=seed), rng)
            for i, scene in enumerate(scenes):
                test = _mask(scene.shape, test_blocks, block, i) & scene.valid
                if test.any():
                    scores.append(_scores(fitted, scene.image, config)[test])
            held = np.concatenate(truth) if truth else np.zeros(0, bool)
            net_auc = _auc(np.concatenate(scores), held) if scores else None
            rx_auc = _auc(np.concatenate(rx), held) if rx else None
            if net_auc is None:
                findings.add("fold_one_class", f"fold {f + 1} holds {int(held.sum())} anomalous and "
                                               f"{int((~held).sum())} normal pixels: no ROC AUC there", 1)
                continue
            rows.append({"fold": f + 1, "seed": seed, "pixels": int(held.size), "anomalous": int(held.sum()),
                         "network_auc": net_auc, "rx_auc": rx_auc})
            log.info("fold %d seed %d: ROC AUC network %.4f, RX %.4f", f + 1, seed, net_auc, rx_auc)
    return rows


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = np.array([r[key] for r in rows], dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max())}


def _readme(doc: dict[str, Any]) -> str:
    lines = [f"# {doc['title']}", "", f"Command: `{doc['command']}`", ""]
    for finding in doc["findings"]:
        lines.append(f"- **{finding['action']}**: {finding['message']}")
    if doc.get("rows"):
        net, rx, test = doc["summary"]["network_auc"], doc["summary"]["rx_auc"], doc["paired"]
        lines += ["", f"Spatial cross-validation: {doc['folds']} folds of {doc['block']} px blocks x seeds "
                      f"{doc['seeds']} (fixed before running); ROC AUC on each held-out fold's pixels (mean ± std "
                      "[min, max] over the runs):", "", "| method | ROC AUC |", "|---|---|",
                  f"| anomaly autoencoder (this model) | {net['mean']:.4f} ± {net['std']:.4f} [{net['min']:.4f}, "
                  f"{net['max']:.4f}] |",
                  f"| RX (Reed & Yu), same training pixels | {rx['mean']:.4f} ± {rx['std']:.4f} [{rx['min']:.4f}, "
                  f"{rx['max']:.4f}] |", "", doc["verdict"],
                  f"Paired over {test['pairs']} runs: the model ahead in {test['network_better']}, RX in "
                  f"{test['baseline_better']} (two-sided exact sign test p = {test['sign_test_p']:.3g}; Wilcoxon "
                  f"signed-rank p = {test['wilcoxon_p'] if test['wilcoxon_p'] is None else round(test['wilcoxon_p'], 4)})."]
    else:
        lines += ["", doc["verdict"]]
    lines += ["", f"Model: `{doc['model']}`; calibration (median, MAD of the error over every pixel) "
                  f"{doc['calibration']}, threshold {doc['threshold']:.3f}. {doc['engine']}", ""]
    return "\n".join(lines)


def _verdict(summary: dict[str, Any], test: dict[str, Any]) -> str:
    net, rx, p = summary["network_auc"]["mean"], summary["rx_auc"]["mean"], test["sign_test_p"]
    if net > rx and p < 0.05:
        return f"The model beats RX (ROC AUC {net:.4f} vs {rx:.4f}, sign test p = {p:.3g})."
    if net > rx:
        return (f"The model is ahead of RX on average (ROC AUC {net:.4f} vs {rx:.4f}) but not significantly "
                f"(sign test p = {p:.3g}): treat them as equals on this data.")
    return (f"The model does not beat RX (ROC AUC {net:.4f} vs {rx:.4f}, sign test p = {p:.3g}): RX is as good "
            "here; try more --components, fewer --rounds of trimming, or use RX.")


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    started = time.perf_counter()
    findings = Findings()
    config = FitConfig(**{f: getattr(args, f) for f in asdict(FitConfig())})
    labels = args.labels or []
    if labels and len(labels) not in (1, len(args.image)):
        raise Refused(f"{len(args.image)} --image but {len(labels)} --labels: give one each, or one for all.")
    with tempfile.TemporaryDirectory(prefix="deepstrata-anomaly-") as work:
        scenes = read_scenes(args.image, args.bands, Path(work), findings)
        truths = [_truth(s, labels[min(i, len(labels) - 1)], args.class_field) if labels else None
                  for i, s in enumerate(scenes)]
        doc: dict[str, Any] = {"title": f"Anomaly model for {Path(args.image[0]).name}", "command": command,
                               "inputs": [describe(s) for s in scenes], "config": asdict(config)}
        seeds = list(range(args.seeds))
        if labels:
            rows = cross_validate(scenes, [t for t in truths if t is not None], config, args.block, args.folds,
                                  seeds, findings)
            if not rows:
                raise Refused("no fold holds both known anomalies and normal pixels: give more labels, or smaller "
                              "blocks (--block).")
            summary = {k: _summary(rows, k) for k in ("network_auc", "rx_auc")}
            test = compare([r["network_auc"] for r in rows], [r["rx_auc"] for r in rows], True)
            doc.update(rows=rows, summary=summary, paired=test, verdict=_verdict(summary, test), folds=args.folds,
                       block=args.block, seeds=seeds)
        else:
            doc["verdict"] = ("No known anomalies were given (--labels), so nothing could be scored: the model is "
                              "fitted and calibrated, not validated. Give a raster or polygons of known anomalies to "
                              "compare it with RX on held-out blocks.")
        images = np.concatenate([_chips(s.image, s.valid, config.chip, config.max_chips, np.random.default_rng(0))
                                 for s in scenes])
        fitted = fit_images(images, config, np.random.default_rng(config.seed))
        bands = list(scenes[0].bands)
        card = anomaly_card(args.image[0], bands, fitted.normalization, config, fitted.components, args.name or "",
                            args.kind, command, fitted.calibration, fitted.threshold, fitted.rounds)
        if labels:
            card["training"]["metrics"]["cv_roc_auc"] = round(doc["summary"]["network_auc"]["mean"], 4)
            card["training"]["metrics"]["cv_rx_roc_auc"] = round(doc["summary"]["rx_auc"]["mean"], 4)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out = export_model(fitted.model, card, args.out, tolerance=parity_tolerance(fitted.model, len(bands)))
        scores, _ = engine_output(out, scenes[0].path, bands=bands, threads=config.threads)
        mine = _scores(fitted, scenes[0].image, config)
        valid = scenes[0].valid & np.isfinite(scores)
        engine_error = float(np.max(np.abs((mine[valid] - fitted.calibration["median"])
                                           / (1.4826 * fitted.calibration["mad"]) - scores[valid])))
    doc.update(findings=findings.to_json(), model=str(out), calibration=fitted.calibration,
               threshold=fitted.threshold, seconds=round(time.perf_counter() - started, 1),
               engine=f"The plugin's engine ran it on {scenes[0].path}: its scores differ from PyTorch's by at most "
                      f"{engine_error:.3g}.")
    report = Path(args.report) if args.report else Path(args.out).with_suffix(".report")
    write_json(report / "report.json", doc)
    (report / "README.md").write_text(_readme(doc), encoding="utf-8")
    doc["report"] = str(report)
    return doc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training anomaly", description=" ".join(__doc__.split()[:40]) + " ...")
    p.add_argument("--image", action="append", required=True, help="raster to fit (repeat for several)")
    p.add_argument("--labels", action="append", help="known anomalies: a raster (non-zero = anomaly) or polygons; "
                                                     "one per --image or one for all")
    p.add_argument("--class-field", help="a field of the polygons (any value marks an anomaly); optional")
    p.add_argument("--out", required=True, help="the .onnx model to write")
    p.add_argument("--report", help="report folder (default: the model's path with .report instead of .onnx)")
    p.add_argument("--bands", help="bands by number or name, comma separated (default: all)")
    p.add_argument("--folds", type=int, default=4, help="spatial folds (default 4)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per fold (default 2)")
    p.add_argument("--block", type=int, default=32, help="block edge in px for the folds (default 32)")
    p.add_argument("--name", help="the model's name in the card")
    p.add_argument("--kind", default="any", choices=("any", "multispectral", "hyperspectral", "rgb", "dem"))
    for field, value in asdict(FitConfig()).items():
        if field != "band_scale":
            p.add_argument("--" + field.replace("_", "-"), type=type(value), default=value,
                           help=f"{HELP[field]} (default {value})")
    p.add_argument("--band-scale", default=FitConfig().band_scale, choices=("common", "band"), help=HELP["band_scale"])
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        doc = run(args, command_line(["anomaly", *argv]))
    except DataError as exc:
        print(f"error: {exc}")
        return 1
    print(doc["verdict"])
    print(f"wrote {doc['model']} and {doc['report']} in {doc['seconds']} s")
    return 0
