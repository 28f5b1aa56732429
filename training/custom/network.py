"""The network of a run: its input normalisation, one training run (a fold's, or the final one) with
training.train's deterministic loop, and prediction of whole rasters the way the folds are scored."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..data import band_stats, normalise
from ..nets import UNet
from ..train import Epoch, TrainConfig, TrainResult, seed_everything, torch_settings, train
from .defaults import Plan
from .encoders import build_unet, recalibrate_batchnorm
from .source import Source

MAX_WEIGHT = 10.0
TILE = 1024           # rasters larger than this are predicted in tiles of it
OVERLAP = 64          # context kept on each side of a tile
PAD = 0               # extra mirrored context around a raster: none, as the engine gives none at raster edges


def input_normalization(source: Optional[Source], images: np.ndarray) -> dict[str, Any]:
    """The card's normalisation from raw training chips, as the source's stem needs it (``zscore`` by default)."""
    stats = band_stats(images).card()
    if source is None or source.input == "zscore":
        return stats
    if source.input == "raw":
        return {"method": "none"}
    given = dict(source.normalization or {})
    if source.input == "fixed":
        return given
    std = given.get("std", 1.0) if given.get("method") == "zscore" else 1.0
    std_list = list(std) if isinstance(std, list) else [float(std)] * images.shape[1]
    return {"method": "zscore", "mean": stats["mean"], "std": std_list}


@dataclass
class Fitted:
    model: UNet
    result: TrainResult
    normalization: dict[str, Any]
    target: tuple[float, float]      # regression: (mean, std) the targets were standardised with
    bands_matched: str
    seconds: float


def train_network(task: str, images: np.ndarray, labels: np.ndarray, fit: np.ndarray, val: np.ndarray, plan: Plan,
                  source: Optional[Source], seed: int, outputs: int, weights: Optional[list[float]],
                  target: tuple[float, float], epochs: Optional[int] = None) -> Fitted:
    """Train on chips ``fit``, choose the epoch on chips ``val``; with ``epochs`` (the final model), train that
    many epochs on ``fit`` and keep the last (``val`` is then only a formality)."""
    started = time.perf_counter()
    used = np.concatenate([fit, val]) if epochs is None else fit
    norm = input_normalization(source, images[used])
    y = labels if task != "regression" else ((labels - target[0]) / target[1]).astype(np.float32)
    final = epochs is not None
    config = TrainConfig(epochs=epochs or plan.epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed,
                         patience=None if final else plan.patience, class_weights=weights,
                         freeze_encoder_epochs=plan.freeze_epochs if source is not None else 0,
                         normalization=norm, threads=plan.threads)
    with torch_settings(plan.threads, True):
        seed_everything(seed)
        model, how = build_unet(source, images.shape[1], outputs, plan.width, plan.depth)
        if source is not None and source.fused:
            sample = normalise(images[fit[:256]], norm)
            with torch.no_grad():
                recalibrate_batchnorm(model.encoder, model.stem.eval()(torch.from_numpy(sample)))
    kept: dict[str, dict[str, torch.Tensor]] = {}

    def keep_last(epoch: Epoch, trained: nn.Module) -> None:
        if epoch.epoch == config.epochs:
            kept["state"] = {k: v.detach().clone() for k, v in trained.state_dict().items()}

    result = train(model, (images[fit], y[fit]), (images[val], y[val]), config, task,
                   on_epoch=keep_last if final else None)
    if final and "state" in kept:
        model.load_state_dict(kept["state"])
        result.best_epoch = len(result.history)
    model.eval()
    return Fitted(model, result, norm, target, how, time.perf_counter() - started)


@torch.no_grad()
def _run(model: UNet, x: np.ndarray, pad: int) -> np.ndarray:
    """Outputs for (C, h, w) inputs mirrored up to the size multiple (and by ``pad`` px, a multiple of it, on each
    side), as the engine mirrors what a tile needs beyond a raster's edge (zeros there would be a cliff for a stem
    on raw elevation)."""
    m = model.size_multiple
    h, w = x.shape[1:]
    widths = ((0, 0), (pad, pad + -(-h // m) * m - h), (pad, pad + -(-w // m) * m - w))
    padded = np.pad(x, widths, mode="reflect") if min(h, w) > 1 else np.pad(x, widths, mode="edge")
    return model(torch.from_numpy(np.ascontiguousarray(padded[None], dtype=np.float32)))[0, :, pad:pad + h,
                                                                                          pad:pad + w].numpy()


def raw_output(model: UNet, image: np.ndarray, normalization: dict[str, Any], threads: int,
               pad: int = PAD) -> np.ndarray:
    """(K, H, W) model outputs over a whole (C, H, W) raw image (NaN invalid), mirrored at its edges; rasters
    larger than TILE are run in tiles with OVERLAP px of context on each side."""
    x = normalise(image[None], normalization)[0]
    h, w = x.shape[1:]
    with torch_settings(threads, True):
        model.eval()
        if max(h, w) <= TILE:
            return _run(model, x, pad)
        out: Optional[np.ndarray] = None
        step = TILE - 2 * OVERLAP
        for y0 in range(0, h, step):
            for x0 in range(0, w, step):
                ya, xa = max(y0 - OVERLAP, 0), max(x0 - OVERLAP, 0)
                part = _run(model, x[:, ya:min(y0 + step + OVERLAP, h), xa:min(x0 + step + OVERLAP, w)], pad)
                if out is None:
                    out = np.empty((part.shape[0], h, w), dtype=np.float32)
                out[:, y0:y0 + step, x0:x0 + step] = part[:, y0 - ya:y0 - ya + step, x0 - xa:x0 - xa + step]
        assert out is not None
        return out


def predict(fitted: Fitted, image: np.ndarray, task: str, threads: int, pad: int = PAD) -> np.ndarray:
    """(H, W) class ids 1..n (segmentation) or values in the target's units (regression)."""
    out = raw_output(fitted.model, image, fitted.normalization, threads, pad)
    if task == "regression":
        return out[0] * fitted.target[1] + fitted.target[0]
    return out.argmax(axis=0).astype(np.int64) + 1


def class_weights_for(labels: np.ndarray, ids: list[int]) -> list[float]:
    """Median-frequency weights (training.data.stats.class_weights) of the unique training pixels, capped."""
    from ..data import class_weights

    return [min(w, MAX_WEIGHT) for w in class_weights(labels, ids, "median").weights]


def export_ready(fitted: Fitted, task: str) -> UNet:
    """The model to export: for regression the head is rescaled so the graph outputs values in the target's
    units (value = output x std + mean)."""
    import copy

    model = copy.deepcopy(fitted.model).eval()
    if task == "regression":
        mean, std = fitted.target
        with torch.no_grad():
            model.head.weight.mul_(std)
            assert model.head.bias is not None
            model.head.bias.mul_(std).add_(mean)
    return model
