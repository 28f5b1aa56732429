"""``python -m training transfer-curve``: does the pretrained encoder help when labelled chips are few?

The task is the real land-cover polygons of the Landsat 5 TM Amazon scene (cleared, fallen_dry, forest, water),
a sensor and a place the encoder never saw: it was pretrained as an autoencoder on the Landsat 8 and
Sentinel-2 scenes of the geology model (:func:`training.geology.pretrain`, the very encoder the shipped geology
model starts from). For each spatial fold (blocks of the scene held out in turn) and each number n of labelled
training chips, one U-Net is trained from scratch and one from the pretrained encoder, with the same chips, the
same input layer (:class:`training.spectral.LogReflectance`), the same number of optimiser steps and the same
seed. No label beyond the n chips is used: the best epoch is chosen on those chips. Every fold's test blocks
are scored on every polygon pixel they hold, so each curve point pools all labelled pixels of the scene.
"""
from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .data import ChipSet, block_keys, class_weights, extract_chips, image_grid, load_labels, normalise
from .data.splits import BlockKey
from .evaluate import classification_report, confusion_matrix
from .geology import OTHER_SENSOR, SCENES, Prepared, Recipe, pretrain, prepare
from .nets import ConvAutoencoder, UNet
from .sensors import SENSOR_BANDS, calibrate, write_raster
from .train import Epoch, TrainConfig, majority_class, seed_everything, train
from .transfer import unet_from_autoencoder
from .transfer_report import METHODS
from .workflow import block_mask, command_line

log = logging.getLogger(__name__)

POLYGONS = "training/datasets/landsat5_amazon/trainingPolygons_lsat_epsg32622.geojson"
REPORTS = "training/reports/transfer"


@dataclass(frozen=True)
class Curve:
    sizes: tuple[int, ...] = (4, 8, 16, 32, 0)    # labelled training chips per run; 0 = every chip of the fold
    folds: int = 4
    draws: int = 3                                 # chip draws per fold and n (one when n is every chip)
    steps: int = 120                               # optimiser steps per run, whatever n
    freeze_share: float = 0.25                     # transfer: share of the epochs with the encoder frozen
    lr: float = 2e-3
    chip: int = 32
    stride: int = 16
    block: int = 64
    seed: int = 0
    threads: int = 2


@dataclass
class Task:
    """The Landsat 5 scene in model units, its polygon labels (chips and the whole-grid raster)."""

    image: np.ndarray          # (1, 6, H, W) normalised as the geology card says
    truth: np.ndarray          # (H, W) polygon class ids, 0 outside the polygons
    chips: ChipSet
    names: list[str]


def load_task(prepared: Prepared, curve: Curve, folder: Path) -> Task:
    scene = calibrate(OTHER_SENSOR)
    path = write_raster(folder / "landsat5_input.tif", scene.model_input, scene, SENSOR_BANDS["oli"])
    chips = extract_chips([(path, POLYGONS)], curve.chip, curve.stride, class_field="class", block=curve.block)
    truth = load_labels(POLYGONS, image_grid(path), "class", chips.classes).array
    image = normalise(scene.model_input[None], prepared.normalization)
    return Task(image, truth.astype(np.int64), chips, list(chips.classes))


def spatial_folds(origins: np.ndarray, curve: Curve) -> list[set[BlockKey]]:
    """The labelled blocks dealt into ``curve.folds`` groups of about equal chip counts (seeded order)."""
    keys, _ = block_keys(origins, curve.chip, curve.block)
    counts: dict[BlockKey, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    order = sorted(counts)
    order = [order[i] for i in np.random.default_rng(curve.seed).permutation(len(order))]
    folds: list[set[BlockKey]] = [set() for _ in range(curve.folds)]
    load = [0] * curve.folds
    for key in sorted(order, key=lambda k: -counts[k]):  # stable: ties keep the shuffled order
        smallest = int(np.argmin(load))
        folds[smallest].add(key)
        load[smallest] += counts[key]
    return folds


def pick(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` chip indices (all when ``n`` is 0 or too large): first one chip of each majority class present, in
    random order, then random others."""
    if n <= 0 or n >= len(labels):
        return np.arange(len(labels))
    majority = majority_class(labels)
    chosen = [int(rng.choice(np.flatnonzero(majority == c))) for c in rng.permutation(np.unique(majority[majority > 0]))]
    rest = rng.permutation(np.setdiff1d(np.arange(len(labels)), chosen))
    return np.sort(np.concatenate([chosen, rest])[:n].astype(np.int64))


def build(method: str, autoencoder: ConvAutoencoder, classes: int, seed: int) -> UNet:
    """The same U-Net either way, built from the same seed: its decoder and head start identical, and its encoder
    holds the pretrained weights (``transfer``) or the fresh initialisation (``scratch``)."""
    seed_everything(seed)
    if method == "transfer":
        return unet_from_autoencoder(autoencoder, classes)
    widths = autoencoder.encoder.widths
    return UNet(len(SENSOR_BANDS["oli"]), classes, width=widths[0], depth=len(widths) - 1,
                stem=copy.deepcopy(autoencoder.stem))


def run(method: str, autoencoder: ConvAutoencoder, train_set: ChipSet, normalization: dict[str, Any], curve: Curve,
        seed: int, classes: int) -> tuple[UNet, dict[str, Any]]:
    """Train one U-Net for ``curve.steps`` optimiser steps (batches of 16) and keep its final weights: with labels
    this few there is nothing to choose an epoch on (choosing on the training chips would keep the first epoch
    that fits them)."""
    return fit(build(method, autoencoder, classes, seed), method, train_set, normalization, curve, seed, classes)


def fit(model: UNet, method: str, train_set: ChipSet, normalization: dict[str, Any], curve: Curve, seed: int,
        classes: int) -> tuple[UNet, dict[str, Any]]:
    """:func:`run` for a U-Net built elsewhere (``method`` "transfer" freezes its encoder for the first
    ``curve.freeze_share`` of the epochs)."""
    epochs = max(1, math.ceil(curve.steps / math.ceil(len(train_set) / 16)))
    freeze = int(round(curve.freeze_share * epochs)) if method == "transfer" else 0
    weights = class_weights(train_set.labels, list(range(1, classes + 1)), "median").weights
    config = TrainConfig(epochs=epochs, batch_size=16, lr=curve.lr, seed=seed, patience=None,
                         class_weights=[min(w ** 0.5, 10.0) for w in weights], freeze_encoder_epochs=freeze,
                         normalization=normalization, threads=curve.threads)
    final: dict[str, dict[str, torch.Tensor]] = {}

    def keep_last(epoch: Epoch, trained: nn.Module) -> None:
        if epoch.epoch == epochs:
            final["state"] = {k: v.detach().clone() for k, v in trained.state_dict().items()}

    started = time.perf_counter()
    # The validation metric is never used (the final weights are kept), so one chip keeps its cost negligible.
    result = train(model, train_set, train_set.subset(np.arange(1)), config, "segmentation", on_epoch=keep_last)
    model.load_state_dict(final["state"])
    return model, {"epochs": epochs, "frozen_epochs": freeze, "final_loss": round(result.train_loss[-1], 4),
                   "seconds": round(time.perf_counter() - started, 2)}


@torch.no_grad()
def predict(model: UNet, image: np.ndarray) -> np.ndarray:
    """(H, W) class ids of a whole (1, C, H, W) normalised image, padded to the model's size multiple."""
    model.eval()
    m = model.size_multiple
    h, w = image.shape[2:]
    padded = np.zeros((1, image.shape[1], -(-h // m) * m, -(-w // m) * m), dtype=np.float32)
    padded[..., :h, :w] = image
    return model(torch.from_numpy(padded)).argmax(dim=1)[0, :h, :w].numpy() + 1


def experiment(task: Task, autoencoder: ConvAutoencoder, normalization: dict[str, Any],
               curve: Curve) -> list[dict[str, Any]]:
    """One row per (fold, n, draw, method): the run's confusion matrix on the fold's test blocks, its figures."""
    chips = task.chips
    keys, _ = block_keys(chips.origins, curve.chip, curve.block)
    rows = []
    ids = list(range(1, len(task.names) + 1))
    for fold, test in enumerate(spatial_folds(chips.origins, curve)):
        pool = np.array([i for i, k in enumerate(keys) if k not in test])
        mask = block_mask(task.truth.shape, {k: "test" for k in test}, curve.block) & (task.truth > 0)
        for n in curve.sizes:
            for draw in range(curve.draws if n else 1):
                seed = curve.seed + 10000 * fold + 1000 * draw + n
                subset = chips.subset(pool[pick(chips.labels[pool], n, np.random.default_rng(seed))])
                for method in METHODS:
                    model, info = run(method, autoencoder, subset, normalization, curve, seed, len(ids))
                    cm = confusion_matrix(task.truth[mask], predict(model, task.image)[mask], ids)
                    body = classification_report(cm, task.names)
                    rows.append({"fold": fold, "draw": draw, "requested": n, "method": method, "seed": seed,
                                 "chips": len(subset), "overall_accuracy": body["overall_accuracy"],
                                 "macro_f1": body["macro_f1"], "cm": cm, **info})
                    log.info("fold %d, %d chips (draw %d), %s: accuracy %.3f", fold, len(subset), draw, method,
                             body["overall_accuracy"])
    return rows


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training transfer-curve", description=__doc__.splitlines()[0])
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    p.add_argument("--sizes", default="4,8,16,32,all", help="labelled chips per run, comma separated ('all')")
    for name in ("folds", "draws", "steps", "seed", "threads"):
        p.add_argument("--" + name, type=int, default=getattr(Curve, name))
    p.add_argument("--freeze-share", type=float, default=Curve.freeze_share)
    p.add_argument("--pretrain-epochs", type=int, default=Recipe.pretrain_epochs,
                   help="autoencoder epochs (the geology recipe's by default, so the encoder is the shipped one's)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from . import transfer_report

    argv = list(argv or [])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sizes = tuple(0 if s.strip() == "all" else int(s) for s in args.sizes.split(","))
    curve = Curve(sizes=sizes, folds=args.folds, draws=args.draws, steps=args.steps, freeze_share=args.freeze_share,
                  seed=args.seed, threads=args.threads)
    recipe = replace(Recipe(), pretrain_epochs=args.pretrain_epochs, threads=args.threads)
    torch.set_num_threads(curve.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deepstrata-transfer-") as name:
        prepared = prepare(recipe, SCENES, Path(name))
        autoencoder, pretrained, unlabelled = pretrain(prepared, recipe)
        task = load_task(prepared, curve, Path(name))
        rows = experiment(task, autoencoder, prepared.normalization, curve)
    summary = transfer_report.summarise(rows, task.names, curve.sizes)
    runs = [{k: v for k, v in r.items() if k != "cm"} for r in rows]
    document = {
        "title": "Land cover of the Landsat 5 Amazon scene: transfer vs scratch",
        "command": command_line(["transfer-curve", *argv]),
        "seconds": round(time.perf_counter() - started, 1),
        "curve": {**vars(curve), "sizes": list(curve.sizes)},
        "classes": task.names,
        "labelled_pixels": {n: int((task.truth == i + 1).sum()) for i, n in enumerate(task.names)},
        "labelled_blocks": sum(len(f) for f in spatial_folds(task.chips.origins, curve)),
        "pretraining": {"scenes": [s.name for s in SCENES], "chips": unlabelled, "epochs": len(pretrained.history),
                        "best_epoch": pretrained.best_epoch, "reconstruction_error": pretrained.best_metric,
                        "width": recipe.width, "depth": recipe.depth, "chip": recipe.chip},
        "summary": summary,
        "paired": transfer_report.paired(rows, curve.sizes),
        "runs": [{**r, "confusion_matrix": c["cm"].tolist()} for r, c in zip(runs, rows)],
    }
    transfer_report.write(Path(args.reports), document, summary, runs, transfer_report.readme(document))
    print(f"wrote {args.reports} in {document['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
