"""Task heads: what a model's raw output becomes before blending, and how blended values become rasters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .card import ModelCard
from .errors import ModelError
from .style import paletted_qml, pseudocolor_qml
from .writer import FLOAT_NODATA, RasterTarget, RasterWriter


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    e = x - x.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def activate(raw: np.ndarray, activation: str) -> np.ndarray:
    if activation == "softmax":
        return softmax(raw, axis=1)
    if activation == "sigmoid":
        return sigmoid(raw)
    return raw


@dataclass
class Head:
    """The base: continuous per-pixel values (regression)."""

    card: ModelCard
    output_channels: int = 1

    @property
    def channels(self) -> int:
        """How many values per pixel are blended."""
        return len(self.card.output.names) or self.output_channels

    def prepare(self, raw: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """Raw model output (N, C, h, w) -> values to blend (N, K, h, w); float32."""
        return activate(raw.astype(np.float32, copy=False), self.card.output.activation)

    def targets(self, output: str, confidence: str | None) -> list[RasterTarget]:
        names = list(self.card.output.names) or [f"value {i + 1}" for i in range(self.channels)]
        return [RasterTarget(output, np.dtype(np.float32), FLOAT_NODATA, names)]

    def finish(self, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, n: int) -> list[np.ndarray]:
        """Weighted sums (K, h, w), weights and validity (h, w) -> the first `n` targets' arrays (bands, h, w)."""
        out = sums / np.where(valid, weights, 1.0)
        out[:, ~valid] = FLOAT_NODATA
        return [out]

    def style(self, writers: Sequence[RasterWriter]) -> Sequence[str | None]:
        styles: list[str | None] = []
        for i, w in enumerate(writers):
            stats = w.statistics(0)
            lo, hi = (stats[0], stats[1]) if stats else (0.0, 1.0)
            styles.append(pseudocolor_qml(lo, hi, "confidence" if i else "viridis"))
        return styles


class ClassHead(Head):
    """Segmentation and classification: blended probabilities -> class values, plus optional confidence."""

    @property
    def channels(self) -> int:
        return len(self.card.output.classes)

    def prepare(self, raw: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        probs = activate(raw.astype(np.float32, copy=False), self.card.output.activation)
        if probs.shape[1] == 1 and self.channels == 2:
            probs = np.concatenate([1.0 - probs, probs], axis=1)
        if probs.ndim == 2:  # classification: one vector per tile, broadcast over the tile when blended
            probs = probs[:, :, None, None]
        return probs

    def targets(self, output: str, confidence: str | None) -> list[RasterTarget]:
        classes = self.card.output.classes
        dtype = np.uint8 if max(c.value for c in classes) <= 255 else np.uint16
        out = [RasterTarget(output, np.dtype(dtype), 0, ["class"], classes,
                            {"DEEPSTRATA_TASK": self.card.task})]
        if confidence:
            out.append(RasterTarget(confidence, np.dtype(np.float32), FLOAT_NODATA,
                                    ["confidence"]))
        return out

    def finish(self, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, n: int) -> list[np.ndarray]:
        # Dividing by the weights cannot change which class wins: compare the sums, channel by channel (much
        # faster than argmax over the first axis), and divide only the winner for the confidence.
        classes = np.full(valid.shape, self.card.output.classes[0].value, dtype=np.uint16)
        best = sums[0].copy()
        for k, info in enumerate(self.card.output.classes[1:], start=1):
            better = sums[k] > best
            classes[better] = info.value
            np.maximum(best, sums[k], out=best)
        classes[~valid] = 0
        out = [classes[None]]
        if n > 1:
            best /= np.where(valid, weights, 1.0)
            best[~valid] = FLOAT_NODATA
            out.append(best[None])
        return out

    def style(self, writers: Sequence[RasterWriter]) -> Sequence[str | None]:
        return [paletted_qml(self.card.output.classes)] + [pseudocolor_qml(0.0, 1.0, "confidence")
                                                          for _ in writers[1:]]


class AnomalyHead(Head):
    """Autoencoders: per-pixel reconstruction error -> robust z-score from the card's calibration."""

    def prepare(self, raw: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        spec = self.card.output.anomaly
        assert spec is not None
        crop = self.card.output.crop
        if crop:
            inputs = inputs[:, :, crop:-crop, crop:-crop]
        diff = raw.astype(np.float32, copy=False) - inputs
        error = np.square(diff) if spec.error == "mse" else np.abs(diff)
        return error.mean(axis=1, keepdims=True)

    def targets(self, output: str, confidence: str | None) -> list[RasterTarget]:
        return [RasterTarget(output, np.dtype(np.float32), FLOAT_NODATA, ["anomaly score"],
                             metadata={"DEEPSTRATA_TASK": "anomaly"})]

    def finish(self, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, n: int) -> list[np.ndarray]:
        spec = self.card.output.anomaly
        assert spec is not None
        error = sums[0] / np.where(valid, weights, 1.0)
        score = ((error - spec.median) / (1.4826 * spec.mad)).astype(np.float32)
        score[~valid] = FLOAT_NODATA
        return [score[None]]

    def style(self, writers: Sequence[RasterWriter]) -> Sequence[str | None]:
        spec = self.card.output.anomaly
        assert spec is not None
        return [pseudocolor_qml(0.0, 2 * spec.threshold, "anomaly")]


def make_head(card: ModelCard, output_channels: int | None) -> Head:
    if card.task in ("segmentation", "classification"):
        return ClassHead(card)
    if card.task == "anomaly":
        return AnomalyHead(card)
    if card.output.names and output_channels and len(card.output.names) != output_channels:
        raise ModelError(f"The card names {len(card.output.names)} output bands but the model outputs "
                         f"{output_channels}. Fix output.names in the card.")
    return Head(card, output_channels or 1)
