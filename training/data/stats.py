"""Class weights for imbalance and per-band normalisation statistics, from the training chips only.

Class frequencies are over all labelled training pixels (0 is unlabelled and ignored). Weights come in the
order of the given class ids, i.e. the model's output channels; a class absent from training gets weight 0
and is listed in ``missing``. Band statistics ignore invalid pixels (NaN in the chips).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, cast

import numpy as np

from deepstrata.inference.engine.card import parse_normalization
from deepstrata.inference.engine.stream import normalize

from .errors import DataError

PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class ClassWeights:
    weights: list[float]
    counts: list[int]
    missing: list[int]


def class_counts(labels: np.ndarray, class_ids: Sequence[int]) -> list[int]:
    """Pixels of each class id in ``labels``, in the order of ``class_ids``."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist()))
    return [int(found.get(c, 0)) for c in class_ids]


def class_weights(labels: np.ndarray, class_ids: Sequence[int], method: str = "median") -> ClassWeights:
    """``inverse``: total / (n_present x count_c) (mean count over present classes / count_c);
    ``median``: median(freq) / freq_c over present classes (Eigen & Fergus 2015, frequencies over all
    labelled pixels)."""
    if 0 in class_ids:
        raise DataError("class id 0 means unlabelled and cannot be weighted.")
    counts = np.array(class_counts(labels, class_ids), dtype=np.float64)
    present = counts > 0
    if not present.any():
        raise DataError("the training labels hold none of the classes: check the label source and class ids.")
    weights = np.zeros_like(counts)
    if method == "inverse":
        weights[present] = counts.sum() / (present.sum() * counts[present])
    elif method == "median":
        freq = counts[present] / counts.sum()
        weights[present] = np.median(freq) / freq
    else:
        raise DataError(f"class weight method is 'inverse' or 'median', not {method!r}.")
    missing = [int(c) for c, p in zip(class_ids, present) if not p]
    return ClassWeights(cast(list[float], weights.tolist()), cast(list[int], counts.astype(np.int64).tolist()), missing)


@dataclass(frozen=True)
class BandStats:
    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]
    p2: list[float]
    p98: list[float]
    count: list[int]

    def card(self) -> dict[str, Any]:
        """The model card's ``input.normalization`` (zscore); a constant band gets std 1 (the card needs
        std != 0)."""
        return {"method": "zscore", "mean": list(self.mean), "std": [s if s > 0 else 1.0 for s in self.std]}


def band_stats(images: np.ndarray) -> BandStats:
    """Mean, population std, min, max and 2 / 98 percentiles per band of (N, C, H, W) chips, NaN ignored."""
    if images.ndim != 4:
        raise DataError(f"band statistics need (N, C, H, W) chips, not shape {images.shape}.")
    columns: dict[str, list] = {k: [] for k in ("mean", "std", "min", "max", "p2", "p98", "count")}
    for c in range(images.shape[1]):
        values = images[:, c].astype(np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise DataError(f"band {c + 1} has no valid pixel in the training chips.")
        p2, p98 = np.percentile(values, PERCENTILES)
        for key, value in (("mean", values.mean()), ("std", values.std()), ("min", values.min()),
                           ("max", values.max()), ("p2", p2), ("p98", p98)):
            columns[key].append(float(value))
        columns["count"].append(int(values.size))
    return BandStats(**columns)


def normalise(images: np.ndarray, normalization: dict[str, Any]) -> np.ndarray:
    """Apply a card normalisation to (N, C, H, W) chips with the plugin's own code: invalid pixels become 0.

    Any method the card allows (zscore, minmax, scale, none), so training and inference cannot drift apart.
    """
    norm = parse_normalization(normalization, images.shape[1])
    out: np.ndarray = np.array(images, dtype=np.float32, copy=True)
    valid: np.ndarray = np.isfinite(out).all(axis=1)
    for chip, ok in zip(out, valid):
        normalize(chip, ok, norm)
    return out