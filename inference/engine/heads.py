"""Task heads: what a model's raw outputs become before blending, and how blended values become rasters.

A model may have several graph outputs (card ``output.outputs``): each becomes one band of the output raster,
with its own classes (class tasks) or values (regression). Raw outputs without a channel axis, (N, H, W), count
as one channel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .card import ClassInfo, GraphOutput, ModelCard
from .decision import NONE
from .style import CONFIDENCE_LABELS, anomaly_labels, paletted_qml, pseudocolor_qml
from .targets import FLOAT_NODATA, RasterTarget

if TYPE_CHECKING:
    from .writer import RasterWriter


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    e = x - x.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def activate(raw: np.ndarray, activation: str) -> np.ndarray:
    if activation == "softmax":
        return softmax(raw, axis=1)
    if activation == "sigmoid":
        return sigmoid(raw)
    return raw


def _with_channels(raw: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); float32."""
    raw = raw.astype(np.float32, copy=False)
    return raw[:, None] if raw.ndim == 3 else raw


@dataclass
class Head:
    """The base: continuous per-pixel values (regression), one band per output channel used."""

    card: ModelCard
    output_channels: Sequence[int] = (1,)  # channels used of each graph output

    @property
    def channels(self) -> int:
        """How many values per pixel are blended."""
        return sum(self.output_channels)

    def prepare(self, raws: Sequence[np.ndarray], inputs: np.ndarray | None) -> np.ndarray:
        """Raw model outputs (N, C, h, w) each -> values to blend (N, K, h, w); float32."""
        parts = [activate(_with_channels(raw), self.card.output.activation)[:, :n]
                 for raw, n in zip(raws, self.output_channels)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def band_names(self) -> list[str]:
        names: list[str] = []
        for head, n in zip(self.card.output.heads, self.output_channels):
            given = list(head.names)[:n]
            prefix = f"{head.name} " if head.name and len(self.output_channels) > 1 else ""
            names += given + [f"{prefix}value {i + 1}" for i in range(len(given), n)]
        return names

    def targets(self, output: str, confidence: str | None) -> list[RasterTarget]:
        return [RasterTarget(output, np.dtype(np.float32), FLOAT_NODATA, self.band_names(),
                             metadata={"DEEPSTRATA_TASK": self.card.task})]

    def finish(self, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, n: int,
               decided: np.ndarray | None = None) -> list[np.ndarray]:
        """Weighted sums (K, h, w), weights and validity (h, w) -> the first `n` targets' arrays (bands, h, w).

        `decided`: class indices already decided where one tile alone covers a pixel (decision.NONE elsewhere);
        only class heads are given them."""
        out = sums / np.where(valid, weights, 1.0)
        if self.card.output.scale != 1.0:
            out *= np.float32(self.card.output.scale)
        out[:, ~valid] = FLOAT_NODATA
        return [out]

    def style(self, writers: Sequence[RasterWriter]) -> Sequence[str | None]:
        styles: list[str | None] = []
        for i, w in enumerate(writers):
            stats = w.statistics(0)
            lo, hi = (stats[0], stats[1]) if stats else (0.0, 1.0)
            styles.append(pseudocolor_qml(lo, hi, "confidence" if i else "viridis"))
        return styles


@dataclass
class _Group:
    classes: tuple[ClassInfo, ...]
    start: int  # first blended channel
    binary: bool = False  # a one-channel output: the blended value is the probability of the second class


@dataclass
class ClassHead(Head):
    """Segmentation and classification: blended probabilities -> class values (a band per graph output), plus
    optional confidence (the winning class's probability, a band per output).

    Without a threshold, the class is the most probable channel. With the card's `threshold` (Deepness's
    semantics): probabilities below it count as 0 before the most probable channel is taken (the first class where
    none reaches it), and a one-channel output gives its second class where its value reaches the threshold.
    """

    groups: list[_Group] = field(default_factory=list)

    def __post_init__(self) -> None:
        start = 0
        for head in self.card.output.heads:
            self.groups.append(_Group(head.classes, start))
            start += len(head.classes)

    @property
    def channels(self) -> int:
        return sum(len(g.classes) for g in self.groups)

    def prepare(self, raws: Sequence[np.ndarray], inputs: np.ndarray | None) -> np.ndarray:
        parts = []
        for raw, group in zip(raws, self.groups):
            probs = activate(raw.astype(np.float32, copy=False) if raw.ndim == 2 else _with_channels(raw),
                             self.card.output.activation)
            if probs.shape[1] == 1 and len(group.classes) == 2:
                group.binary = True
                probs = np.concatenate([1.0 - probs, probs], axis=1)
            if probs.ndim == 2:  # classification: one vector per tile, broadcast over the tile when blended
                probs = probs[:, :, None, None]
            parts.append(probs)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def targets(self, output: str, confidence: str | None) -> list[RasterTarget]:
        heads = self.card.output.heads
        top = max(c.value for g in self.groups for c in g.classes)
        many = len(heads) > 1
        names = [f"class ({h.name})" if many and h.name else "class" for h in heads]
        out = [RasterTarget(output, np.dtype(np.uint8 if top <= 255 else np.uint16), 0, names,
                            [g.classes for g in self.groups], {"DEEPSTRATA_TASK": self.card.task})]
        if confidence:
            out.append(RasterTarget(confidence, np.dtype(np.float32), FLOAT_NODATA,
                                    [n.replace("class", "confidence") for n in names]))
        return out

    def finish(self, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, n: int,
               decided: np.ndarray | None = None) -> list[np.ndarray]:
        if decided is not None:
            assert len(self.groups) == 1 and n == 1, "classes are decided on the raw output for one band only"
            return [self._finish_decided(self.groups[0], sums, weights, valid, decided)[None]]
        done = [self._decide(g, sums[g.start:g.start + len(g.classes)], np.where(valid, weights, 1.0))
                for g in self.groups]
        out = [np.stack([self._values(g, d[0], valid) for g, d in zip(self.groups, done)])]
        if n > 1:
            bests = [best for _, best in done if best is not None]
            for best in bests:
                best[~valid] = FLOAT_NODATA
            out.append(np.stack(bests))
        return out

    def _finish_decided(self, group: _Group, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray,
                        decided: np.ndarray) -> np.ndarray:
        """Class values where some pixels were decided already: the blended decision only for the others, over
        the rectangle that holds them (the bands where tiles overlap), not the whole strip."""
        index = decided
        need = valid & (decided == NONE)
        rows, cols = np.flatnonzero(need.any(axis=1)), np.flatnonzero(need.any(axis=0))
        if rows.size:
            box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
            part = sums[group.start:group.start + len(group.classes)][(slice(None),) + box]
            blended = self._decide(group, part, np.where(need[box], weights[box], 1.0), confidence=False)[0]
            index = decided.copy()
            index[box] = np.where(need[box], blended, decided[box])
        return self._values(group, index, valid)

    @staticmethod
    def _values(group: _Group, index: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Class indices -> the classes' values, 0 where not valid."""
        values = np.asarray([c.value for c in group.classes], dtype=np.uint16)[np.where(valid, index, 0)]
        values[~valid] = 0  # (where not valid the index may be NONE: nothing was decided there)
        return values

    def _decide(self, group: _Group, part: np.ndarray, weights: np.ndarray,
                confidence: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(class index, confidence or None when not asked) of one output from its weighted sums (k, ...) and their
        weights (...), which are never zero."""
        k = len(group.classes)
        threshold = self.card.output.threshold
        if threshold is None:
            # Dividing by the weights cannot change which class wins: compare the sums, channel by channel
            # (much faster than argmax over the first axis), and divide only the winner for the confidence.
            index = np.zeros(weights.shape, dtype=np.uint16)
            best = part[0].copy()
            for c in range(1, k):
                better = part[c] > best
                index[better] = c
                np.maximum(best, part[c], out=best)
            if not confidence:
                return index, None
            best /= weights
        else:
            probs = part / weights
            if group.binary:
                p = probs[1]
                index = ((p >= threshold) & (p != 0)).astype(np.uint16)
            else:
                counted = np.where(probs >= threshold, probs, np.float32(0))
                index = counted.argmax(axis=0).astype(np.uint16)
            if not confidence:
                return index, None
            best = np.take_along_axis(probs, index[None].astype(np.intp), axis=0)[0]
        return index, best

    def style(self, writers: Sequence[RasterWriter]) -> Sequence[str | None]:
        return [paletted_qml(self.card.output.classes)] + [pseudocolor_qml(0.0, 1.0, "confidence",
                                                                          labels=CONFIDENCE_LABELS)
                                                          for _ in writers[1:]]


class AnomalyHead(Head):
    """Anomaly models. Autoencoders (card error mse/mae): per-pixel reconstruction error -> robust z-score from the
    card's calibration. Direct models (error "score"): graph channel 0 is the score (calibrated by the card when it
    gives a calibration) and channel 1, when the graph has it, the signed residual (negative: a depression, positive:
    a rise), written as the score raster's second band."""

    @property
    def signed(self) -> bool:
        spec = self.card.output.anomaly
        return bool(spec is not None and spec.direct and self.output_channels and self.output_channels[0] >= 2)

    @property
    def channels(self) -> int:
        return 2 if self.signed else 1

    def prepare(self, raws: Sequence[np.ndarray], inputs: np.ndarray | None) -> np.ndarray:
        spec = self.card.output.anomaly
        assert spec is not None
        if spec.direct:
            return _with_channels(raws[0])[:, :self.channels]
        crop = self.card.output.crop
        assert inputs is not None, "an autoencoder's error needs its inputs"
        if crop:
            inputs = inputs[:, :, crop:-crop, crop:-crop]
        diff = raws[0].astype(np.float32, copy=False) - inputs
        error = np.square(diff) if spec.error == "mse" else np.abs(diff)
        return error.mean(axis=1, keepdims=True)

    def band_names(self) -> list[str]:
        return ["anomaly score", "signed residual"] if self.signed else ["anomaly score"]

    def targets(self, output: str, confidence: str | None) -> list[RasterTarget]:
        return [RasterTarget(output, np.dtype(np.float32), FLOAT_NODATA, self.band_names(),
                             metadata={"DEEPSTRATA_TASK": "anomaly"})]

    def finish(self, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, n: int,
               decided: np.ndarray | None = None) -> list[np.ndarray]:
        spec = self.card.output.anomaly
        assert spec is not None
        values = (sums[:self.channels] / np.where(valid, weights, 1.0)).astype(np.float32)
        if spec.calibrated:
            values[0] = (values[0] - np.float32(spec.median)) / np.float32(1.4826 * spec.mad)
        values[:, ~valid] = FLOAT_NODATA
        return [values]

    def style(self, writers: Sequence[RasterWriter]) -> Sequence[str | None]:
        spec = self.card.output.anomaly
        assert spec is not None
        return [pseudocolor_qml(0.0, 2 * spec.threshold, "anomaly", labels=anomaly_labels(spec.threshold))]


def make_head(card: ModelCard, output_channels: Sequence[int | None]) -> Head:
    """The head for the card's task; `output_channels` are the graph outputs' channel counts (None: open)."""
    if card.task in ("segmentation", "classification"):
        return ClassHead(card)
    if card.task == "anomaly":
        return AnomalyHead(card, [n or 1 for n in output_channels[:1]] or [1])
    used = [_used(head, n) for head, n in zip(card.output.heads, output_channels)]
    return Head(card, used)


def _used(head: GraphOutput, channels: int | None) -> int:
    """Channels of one regression output that become bands."""
    available = channels or len(head.names) or 1
    return min(head.channels, available) if head.channels else available
