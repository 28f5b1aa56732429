"""One deterministic training loop for the three model families of training.nets.

Tasks: ``segmentation`` (U-Net, per-pixel labels), ``classification`` (patch classifier; a chip's label is
its majority labelled class), ``anomaly`` (autoencoder; labels unused) and ``regression`` (a one-channel U-Net;
labels are float targets, NaN = unlabelled, and the loss is the mean squared error over labelled pixels).
Class labels use the raster's class ids: id c (1..n) is output channel c - 1 and 0 (unlabelled) is ignored by
the loss and the metrics.

Validation after every epoch: macro-F1 (higher is better) for the classifiers, the mean squared
reconstruction error over valid pixels and bands (lower is better) for the autoencoder, the RMSE over labelled
pixels (lower is better) for regression. The best epoch's weights, batch-norm statistics included, are
restored at the end.

Transfer: with ``freeze_encoder_epochs = k`` the encoder's parameters get no gradient for the first k epochs
and its batch norms stay in eval mode (their statistics are the pretrained ones); afterwards the whole model
trains, the encoder at ``lr x encoder_lr_factor``.
"""
from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data import ChipSet, augment_batch, normalise
from .evaluate import classification_report, confusion_matrix

logger = logging.getLogger(__name__)

TASKS = ("segmentation", "classification", "anomaly", "regression")
IGNORE = -100  # the loss's ignore_index for unlabelled pixels (class id 0) and chips without a labelled pixel
Data = Union[ChipSet, tuple[np.ndarray, Optional[np.ndarray]]]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    patience: Optional[int] = 8              # epochs without a better validation metric before stopping; None: never
    augment: bool = True                     # a random flip / quarter turn per chip and batch
    class_weights: Optional[Sequence[float]] = None  # per class id 1..n (ClassWeights.weights), loss weights
    freeze_encoder_epochs: int = 0
    encoder_lr_factor: Optional[float] = None  # None: 0.1 with a freeze schedule, 1.0 without
    normalization: Optional[dict[str, Any]] = None  # a card's zscore normalisation for raw chips (NaN = invalid)
    threads: int = 2
    deterministic: bool = True               # torch.use_deterministic_algorithms during training
    cosine: bool = False                     # anneal every group's rate to 0 over `epochs` (cosine), per epoch


@dataclass(frozen=True)
class Epoch:
    epoch: int
    train_loss: float
    val_metric: float
    encoder_frozen: bool
    seconds: float


@dataclass
class TrainResult:
    metric: str                              # "macro_f1", "reconstruction_error" or "rmse"
    history: list[Epoch] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = float("nan")
    stopped_early: bool = False

    @property
    def train_loss(self) -> list[float]:
        return [e.train_loss for e in self.history]

    @property
    def val_metric(self) -> list[float]:
        return [e.val_metric for e in self.history]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy's global state and torch; return a fresh numpy Generator from the same seed.
    Call it before building a model to make its initial weights reproducible too."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@contextmanager
def torch_settings(threads: int, deterministic: bool) -> Iterator[None]:
    """Thread count and deterministic algorithms for the duration of a run, restored afterwards."""
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def majority_class(labels: np.ndarray) -> np.ndarray:
    """(N,) the most frequent non-zero class id of each (H, W) chip of ``labels``, the smallest id on ties,
    0 for a chip with no labelled pixel."""
    flat = np.asarray(labels, dtype=np.int64).reshape(labels.shape[0], -1)
    if flat.size and flat.min() < 0:
        raise ValueError("class ids must be >= 0.")
    width = int(flat.max(initial=0)) + 1
    offsets = (np.arange(flat.shape[0], dtype=np.int64) * width)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * width).reshape(-1, width)
    counts[:, 0] = 0
    return np.where(counts.any(axis=1), counts.argmax(axis=1), 0)


def to_targets(labels: np.ndarray) -> np.ndarray:
    """Class ids 1..n to output channels 0..n-1; 0 (unlabelled) to ``IGNORE``."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.where(labels > 0, labels - 1, IGNORE)


def prepare(data: Data, task: str, normalization: Optional[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) float32 model inputs without NaN, and (N, H, W) int64 labels (float32 targets, NaN =
    unlabelled, for ``regression``); for ``anomaly`` the "labels" are the validity mask (1 = valid), so
    augmentation turns it with the image."""
    images, labels = (data.images, data.labels) if isinstance(data, ChipSet) else data
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"training needs a non-empty (N, C, H, W) chip array, not shape {images.shape}.")
    valid = np.isfinite(images).all(axis=1)
    if normalization is not None:
        x = normalise(images, normalization)
    elif valid.all():
        x = np.ascontiguousarray(images, dtype=np.float32)
    else:
        raise ValueError("the chips hold NaN (invalid pixels): pass the card normalisation in the config so they "
                         "are normalised as the plugin does (invalid pixels become 0).")
    if task == "anomaly":
        return x, valid.astype(np.int64)
    if labels is None or labels.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"a {task} model needs (N, H, W) labels matching the images {images.shape}.")
    if task == "regression":
        return x, np.asarray(labels, dtype=np.float32)
    return x, np.asarray(labels, dtype=np.int64)


def _masked_mse(output: torch.Tensor, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum of squared errors over valid pixels and all bands, and the number of terms summed."""
    mask = valid.unsqueeze(1).to(output.dtype)
    return (((output - x) ** 2) * mask).sum(), int(valid.sum()) * x.shape[1]


def _loss(task: str, weights: Optional[torch.Tensor]) -> Callable[..., Optional[torch.Tensor]]:
    """The batch loss of ``task``; None when the batch has nothing to learn from (every pixel unlabelled)."""
    def loss(output: torch.Tensor, x: torch.Tensor, labels: np.ndarray) -> Optional[torch.Tensor]:
        if task == "anomaly":
            total, terms = _masked_mse(output, x, torch.from_numpy(labels))
            return total / terms if terms else None
        if task == "regression":
            target = torch.from_numpy(labels)
            labelled = torch.isfinite(target)
            return F.mse_loss(output[:, 0][labelled], target[labelled]) if labelled.any() else None
        ids = majority_class(labels) if task == "classification" else labels
        target = torch.from_numpy(to_targets(ids))
        if not (target != IGNORE).any():
            return None
        return F.cross_entropy(output, target, weight=weights, ignore_index=IGNORE)
    return loss


@torch.no_grad()
def validate(model: nn.Module, x: np.ndarray, labels: np.ndarray, task: str, batch_size: int) -> float:
    """Macro-F1 over labelled pixels (or chips), the mean squared reconstruction error over valid pixels, or the
    RMSE over labelled pixels (regression)."""
    model.eval()
    cm: Optional[np.ndarray] = None
    sse, terms = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = torch.from_numpy(x[start:start + batch_size]), labels[start:start + batch_size]
        output = model(xb)
        if task == "anomaly":
            total, n = _masked_mse(output, xb, torch.from_numpy(yb))
            sse, terms = sse + float(total), terms + n
            continue
        if task == "regression":
            target = torch.from_numpy(yb)
            labelled = torch.isfinite(target)
            sse += float(((output[:, 0] - torch.nan_to_num(target)) ** 2)[labelled].sum())
            terms += int(labelled.sum())
            continue
        truth = majority_class(yb) if task == "classification" else yb
        part = confusion_matrix(truth, output.argmax(dim=1).numpy() + 1, range(1, output.shape[1] + 1))
        cm = part if cm is None else cm + part
    if task == "anomaly":
        return sse / max(terms, 1)
    if task == "regression":
        return float(np.sqrt(sse / terms)) if terms else float("nan")
    assert cm is not None
    return float(classification_report(cm, [str(c) for c in range(1, len(cm) + 1)])["macro_f1"])


def _check(model: nn.Module, x: np.ndarray, labels: np.ndarray, task: str, config: TrainConfig) -> None:
    if task not in TASKS:
        raise ValueError(f"task is one of {TASKS}, not {task!r}.")
    if config.freeze_encoder_epochs and not isinstance(getattr(model, "encoder", None), nn.Module):
        raise ValueError("a freeze schedule needs a model with an `encoder` (the training.nets families).")
    if task == "anomaly":
        return
    model.eval()
    with torch.no_grad():
        channels = int(model(torch.from_numpy(x[:1])).shape[1])
    if task == "regression":
        if channels != 1:
            raise ValueError(f"a regression model has one output channel, not {channels}.")
        return
    if int(labels.max(initial=0)) > channels:
        raise ValueError(f"labels go up to class id {int(labels.max())} but the model has {channels} outputs.")
    if config.class_weights is not None and len(config.class_weights) != channels:
        raise ValueError(f"{len(config.class_weights)} class weights for a model of {channels} classes.")


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    factor = config.encoder_lr_factor
    if factor is None:
        factor = 0.1 if config.freeze_encoder_epochs else 1.0
    encoder = getattr(model, "encoder", None)
    encoder_ids = {id(p) for p in encoder.parameters()} if isinstance(encoder, nn.Module) else set()
    groups = [{"params": [p for p in model.parameters() if id(p) not in encoder_ids], "lr": config.lr}]
    if encoder_ids:
        groups.append({"params": [p for p in model.parameters() if id(p) in encoder_ids],
                       "lr": config.lr * factor})
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def _freeze(model: nn.Module, frozen: bool) -> None:
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, nn.Module):
        for p in encoder.parameters():
            p.requires_grad = not frozen


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: np.ndarray, labels: np.ndarray,
                 loss_fn: Callable[..., Optional[torch.Tensor]], config: TrainConfig,
                 rng: np.random.Generator, frozen: bool) -> float:
    """One pass in a fresh random order; the mean batch loss weighted by batch size."""
    model.train()
    if frozen:
        model.encoder.eval()  # type: ignore[union-attr]  # keep the pretrained batch-norm statistics
    total, seen = 0.0, 0
    order = rng.permutation(len(x))
    for start in range(0, len(x), config.batch_size):
        index = order[start:start + config.batch_size]
        xb, yb = x[index], labels[index]
        if config.augment:
            xb, yb = augment_batch(xb, yb, rng)
        inputs = torch.from_numpy(xb)
        loss = loss_fn(model(inputs), inputs, yb)
        if loss is None:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(index), seen + len(index)
    return total / seen if seen else float("nan")


def train(model: nn.Module, train_set: Data, val_set: Data, config: TrainConfig, task: str,
          on_epoch: Optional[Callable[[Epoch, nn.Module], None]] = None) -> TrainResult:
    """Train ``model`` in place on ``train_set`` and leave it holding the weights of its best validation epoch.

    The sets are ChipSets or (images, labels) pairs; images are raw chips with ``config.normalization`` or
    already normalised (then without NaN). It reseeds python, numpy and torch with ``config.seed`` (shuffling,
    augmentation), so a run is reproducible for a given config and initial weights (see :func:`seed_everything`). ``on_epoch`` sees each epoch's record and the model as it stands
    after that epoch (progress reporting, checkpoints).
    """
    x, labels = prepare(train_set, task, config.normalization)
    vx, vlabels = prepare(val_set, task, config.normalization)
    _check(model, x, labels, task, config)
    higher = task not in ("anomaly", "regression")
    result = TrainResult({"anomaly": "reconstruction_error", "regression": "rmse"}.get(task, "macro_f1"))
    best_state: Optional[dict[str, torch.Tensor]] = None
    with torch_settings(config.threads, config.deterministic):
        rng = seed_everything(config.seed)
        weights = (None if config.class_weights is None
                   else torch.tensor(config.class_weights, dtype=torch.float32))
        loss_fn, optimizer = _loss(task, weights), _optimizer(model, config)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs) if config.cosine else None
        stale = 0
        for epoch in range(1, config.epochs + 1):
            started, frozen = time.perf_counter(), epoch <= config.freeze_encoder_epochs
            _freeze(model, frozen)
            loss = _train_epoch(model, optimizer, x, labels, loss_fn, config, rng, frozen)
            if scheduler is not None:
                scheduler.step()
            metric = validate(model, vx, vlabels, task, config.batch_size)
            result.history.append(Epoch(epoch, loss, metric, frozen, time.perf_counter() - started))
            logger.info("epoch %d/%d: train loss %.4f, validation %s %.4f%s (%.1f s)", epoch, config.epochs, loss,
                        result.metric, metric, ", encoder frozen" if frozen else "", result.history[-1].seconds)
            if on_epoch is not None:
                on_epoch(result.history[-1], model)
            if best_state is None or (metric > result.best_metric if higher else metric < result.best_metric):
                result.best_epoch, result.best_metric, stale = epoch, metric, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            if config.patience is not None and stale >= config.patience and not frozen:
                result.stopped_early = True
                logger.info("no better validation %s for %d epochs: stopping", result.metric, stale)
                break
        _freeze(model, False)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result
