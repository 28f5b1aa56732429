"""The cross-validation loop: for each fold and seed, the network (epoch chosen on the fold's inner validation
blocks), the majority class or mean value, and the random forest, all scored on the held-out fold's labelled
pixels; then the median chosen epoch for the final model."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from . import baselines
from .defaults import Plan
from .features import pixel_features
from .findings import Findings
from .folds import BlockKey, Chips, assign_folds, block_masks, inner_split
from .metrics import PRIMARY, regression_scores, segmentation_scores
from .network import class_weights_for, predict, train_network
from .source import Source
from .targets import Dataset

log = logging.getLogger("training.custom")
INNER_SHARE = 0.2
FOLD_SEED = 0


@dataclass
class Fold:
    index: int
    test: list[BlockKey]
    fit: list[BlockKey]
    validation: list[BlockKey]
    pixels: dict[str, int] = field(default_factory=dict)       # held-out labelled pixels per class
    absent: list[str] = field(default_factory=list)            # classes with no held-out pixel
    untrained: list[str] = field(default_factory=list)         # classes with no training pixel


@dataclass
class CVResult:
    folds: list[Fold]
    rows: list[dict[str, Any]]
    parts: dict[str, list[Any]]          # per method: confusion matrices, or (truth, prediction) pairs
    chosen_epochs: list[int]
    seconds: float


def make_folds(dataset: Dataset, counts: dict[BlockKey, int], plan: Plan) -> list[Fold]:
    folds = []
    for index, test in enumerate(assign_folds(counts, plan.folds, FOLD_SEED)):
        rest = [b for b in sorted(counts) if b not in set(test)]
        fit, validation = inner_split(rest, counts, INNER_SHARE, FOLD_SEED + index)
        folds.append(Fold(index, test, fit, validation))
    return folds


def _pixels(dataset: Dataset, masks: list[np.ndarray], features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(truth, features (P, F)) of the labelled pixels inside ``masks``, raster by raster."""
    truth, x = [], []
    for i, mask in enumerate(masks):
        chosen = mask & dataset.labelled(i)
        truth.append(dataset.truth[i][chosen])
        x.append(features[i][:, chosen].T)
    return np.concatenate(truth), np.concatenate(x)


def _score(dataset: Dataset, truth: np.ndarray, predicted: np.ndarray) -> tuple[dict[str, Any], Any]:
    if dataset.task == "regression":
        return regression_scores(truth, predicted), (truth, predicted)
    return segmentation_scores(truth, predicted, dataset.ids, dataset.names)


def check_fold_classes(dataset: Dataset, fold: Fold, test_truth: np.ndarray, train_truth: np.ndarray,
                       findings: Findings) -> None:
    """Record the classes a fold holds out no pixel of (reported; macro-F1 over the others) or cannot train on."""
    held = {c.name: int((test_truth == c.id).sum()) for c in dataset.classes}
    fold.pixels = held
    fold.absent = [n for n, p in held.items() if p == 0]
    fold.untrained = [c.name for c in dataset.classes if not (train_truth == c.id).any()]
    if fold.absent:
        findings.add("fold_missing_class", f"fold {fold.index + 1}: no held-out pixel of {', '.join(fold.absent)}; its "
                                           "macro-F1 averages the classes present", len(fold.absent), "reported",
                     fold=fold.index + 1, classes=fold.absent)
    if fold.untrained:
        findings.add("fold_untrained_class", f"fold {fold.index + 1}: no training pixel of "
                                             f"{', '.join(fold.untrained)}, so no method can predict it there",
                     len(fold.untrained), "reported", fold=fold.index + 1, classes=fold.untrained)


def cross_validate(dataset: Dataset, chips: Chips, counts: dict[BlockKey, int], plan: Plan,
                   source: Optional[Source], findings: Findings) -> CVResult:
    started = time.perf_counter()
    task = dataset.task
    features = [pixel_features(s.image) for s in dataset.scenes]
    folds = make_folds(dataset, counts, plan)
    first = "mean" if task == "regression" else "majority"
    rows: list[dict[str, Any]] = []
    parts: dict[str, list[Any]] = {m: [] for m in ("network", first, "random_forest")}
    chosen: list[int] = []
    outputs = 1 if task == "regression" else len(dataset.classes)
    for fold in folds:
        train_blocks = fold.fit + fold.validation
        test_masks = block_masks(dataset, fold.test, plan.block)
        y_test, x_test = _pixels(dataset, test_masks, features)
        y_train, x_train = _pixels(dataset, block_masks(dataset, train_blocks, plan.block), features)
        if task != "regression":
            check_fold_classes(dataset, fold, y_test, y_train, findings)
        weights = None if task == "regression" else class_weights_for(y_train, dataset.ids)
        target = (float(y_train.mean()), float(y_train.std()) or 1.0) if task == "regression" else (0.0, 1.0)
        constant = np.full(y_test.shape, y_train.mean() if task == "regression" else baselines.majority(y_train))
        fit_idx, val_idx = chips.indices(fold.fit), chips.indices(fold.validation)
        if len(val_idx) == 0:
            findings.add("no_validation_chip", f"fold {fold.index + 1}: its validation blocks hold no whole chip, so "
                                               "the epoch is chosen on a training chip (optimistic); use a smaller "
                                               "--chip or larger --block", 1, "reported", fold=fold.index + 1)
            val_idx = fit_idx[:1]
        for seed in plan.seeds:
            t0 = time.perf_counter()
            forest = baselines.random_forest(x_train, y_train, x_test, task, seed, plan.threads)
            t1 = time.perf_counter()
            fitted = train_network(task, chips.images, chips.labels, fit_idx, val_idx, plan, source, seed, outputs,
                                   weights, target)
            held = [m & dataset.labelled(i) for i, m in enumerate(test_masks)]
            predicted = np.concatenate([predict(fitted, s.image, task, plan.threads)[h] if h.any() else
                                        np.zeros(0, dtype=y_test.dtype) for s, h in zip(dataset.scenes, held)])
            chosen.append(fitted.result.best_epoch)
            line = []
            for method, values, seconds in (("network", predicted, fitted.seconds), (first, constant, 0.0),
                                            ("random_forest", forest, t1 - t0)):
                scores, part = _score(dataset, y_test, values)
                if seed == plan.seeds[0] or method != first:
                    parts[method].append(part)
                rows.append({"fold": fold.index + 1, "seed": seed, "method": method, **scores,
                             "seconds": round(seconds, 2),
                             **({"best_epoch": fitted.result.best_epoch, "epochs_run": len(fitted.result.history)}
                                if method == "network" else {})})
                line.append(f"{method} {scores[PRIMARY[task]]:.3f}")
            log.info("fold %d/%d, seed %d: %s %s (network best epoch %d, %.1f s)", fold.index + 1, len(folds), seed,
                     PRIMARY[task], ", ".join(line), fitted.result.best_epoch, time.perf_counter() - t0)
    return CVResult(folds, rows, parts, chosen, time.perf_counter() - started)
