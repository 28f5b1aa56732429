"""The margin a trained model needs: how far from a tile edge its output still depends on the missing context.

The theoretical receptive radius of a U-Net (:func:`training.nets.receptive_radius`) is far larger than the
distance over which its output actually changes, and overlap costs time (tiles overlap by 2 x margin). So the
margin is measured on the trained model and real input: tiles laid as the engine lays them (starts on
multiples of ``size_multiple``) are run with nothing beyond their edges, and their output is compared with the
output computed with full context. The margin is the smallest border outside which the class changes at no
more than ``tolerance`` of the pixels and no probability moves by more than ``max_shift``. For a model with
continuous outputs (``softmax=False``: autoencoders, regressors) a pixel "changes" when any output moves by more
than ``max_shift`` (in output units).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class MarginCheck:
    margin: int
    changed: float         # fraction of pixels beyond the margin that change (class, or an output > max_shift)
    max_shift: float       # largest output (probability) change beyond the margin


@torch.no_grad()
def _outputs(model: nn.Module, x: np.ndarray, softmax: bool) -> np.ndarray:
    out = model(torch.from_numpy(x[None]))
    return (torch.softmax(out, dim=1) if softmax else out)[0].numpy()


@torch.no_grad()
def margin_checks(model: nn.Module, sample: np.ndarray, multiple: int, tile: int = 128,
                  limit: int = 64, step: int = 2, softmax: bool = True, max_shift: float = 0.1) -> list[MarginCheck]:
    """Class changes and probability shifts for each candidate margin 0, step, ..., limit.

    ``sample`` is a normalised (C, H, W) input at least 2 x ``tile`` on each side; tiles of ``tile`` px
    (a multiple of ``multiple``) start on a ``multiple``-aligned grid inside it.
    """
    model.eval()
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if tile % multiple or min(sample.shape[1:]) < 2 * tile:
        raise ValueError(f"the sample must be at least {2 * tile} px and the tile a multiple of {multiple}")
    full = _outputs(model, sample, softmax)
    starts = [(y, x) for y in range(0, sample.shape[1] - tile + 1, tile // 2)
              for x in range(0, sample.shape[2] - tile + 1, tile // 2)]
    tiles = [(y, x, _outputs(model, sample[:, y:y + tile, x:x + tile], softmax)) for y, x in starts]
    checks = []
    for margin in range(0, min(limit, tile // 2 - 1) + 1, step):
        changed = shifted = 0.0
        total = 0
        for y, x, probs in tiles:
            inner = slice(margin, tile - margin)
            got = probs[:, inner, inner]
            want = full[:, y + margin:y + tile - margin, x + margin:x + tile - margin]
            shift = np.abs(got - want)
            moved = got.argmax(0) != want.argmax(0) if softmax else shift.max(axis=0) > max_shift
            changed += float(moved.sum())
            shifted = max(shifted, float(shift.max()))
            total += got.shape[1] * got.shape[2]
        checks.append(MarginCheck(margin, changed / total, shifted))
    return checks


def effective_margin(model: nn.Module, sample: np.ndarray, multiple: int, tolerance: float = 1e-3,
                     max_shift: float = 0.1, tile: int = 128, floor: int = 0, softmax: bool = True) -> MarginCheck:
    """The smallest candidate margin of at least ``floor`` within ``tolerance`` and ``max_shift`` (see the module
    docstring); the largest candidate when none is. ``floor`` guards against a model whose output barely varies
    (an undertrained one) looking exact. ``tile`` shrinks (to a multiple of ``multiple``) to fit a small sample."""
    tile = max(min(tile, min(sample.shape[1:]) // 2) // multiple * multiple, multiple)
    checks = margin_checks(model, sample, multiple, tile, softmax=softmax, max_shift=max_shift)
    for check in checks:
        if check.margin >= floor and check.changed <= tolerance and (not softmax or check.max_shift <= max_shift):
            return check
    return checks[-1]
