"""The class decision where the model runs: a per-pixel rule on a segmentation model's raw output.

Most pixels of a tile are covered by that tile alone (TileGrid.regions): there the blended probability is the
tile's own, so the class follows from the raw output directly (the largest logit; a logit above 0; a
probability at or above the threshold), with no softmax, no weights and no blending. The rule is appended to the
graph when the `onnx` package is here, so onnxruntime computes it on its own threads (and on the GPU) and hands
back one byte per pixel; otherwise the same rule runs in numpy on the raw output. Ties between classes within
float rounding may decide differently from the blended path; nothing else does.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .card import ModelCard
from .errors import ModelError

OUTPUT = "deepstrata_decision"
NONE = np.uint16(0xFFFF)  # "not decided here" in the engine's index strips
MIN_OPSET = 13  # GreaterOrEqual, Where and ArgMax as used below
# On the CPU the rule runs in numpy: onnxruntime's ArgMax and Where over the channel axis took longer than the
# numpy rule on the main thread (benchmarks/RESULTS.md, 2026-12-07). On a GPU it runs inside the graph, so only one
# byte per pixel comes back for most tiles. Tests set this to try the graph on the CPU.
GRAPH_ON_CPU = False


@dataclass(frozen=True)
class Rule:
    """argmax: the largest channel; argmax_from: the largest channel among those >= level (else 0);
    above: one channel > level; from_nonzero: one channel >= level and not 0."""

    kind: str
    level: float = 0.0

    def numpy(self, raw: np.ndarray) -> np.ndarray:
        """Class index per pixel (..., h, w) uint8 from raw (..., C, h, w)."""
        if self.kind == "above":
            return np.asarray(raw[..., 0, :, :] > self.level, dtype=np.uint8)
        if self.kind == "from_nonzero":
            one = raw[..., 0, :, :]
            return np.asarray((one >= self.level) & (one != 0), dtype=np.uint8)
        k = raw.shape[-3]
        shape = raw.shape[:-3] + raw.shape[-2:]
        index = np.zeros(shape, dtype=np.uint8)
        better = np.empty(shape, dtype=bool)
        step = np.empty(shape, dtype=np.uint8)
        low = np.finfo(np.float32).min

        at = np.empty(shape, dtype=bool)

        def channel(c: int) -> np.ndarray:  # the values that compete: all, or those at or above the level
            one = raw[..., c, :, :]
            if self.kind == "argmax":
                return one
            if self.level <= 0:  # logits: the others lowest
                return np.where(one >= self.level, one, low)
            np.greater_equal(one, self.level, out=at)  # probabilities: the others 0, as ClassHead counts them
            return np.multiply(one, at, dtype=np.float32)

        best = channel(0).copy()
        for c in range(1, k):
            value = channel(c)
            np.greater(value, best, out=better)  # ties keep the first channel, as argmax does
            np.multiply(better, np.uint8(c), out=step)  # c where better, else 0: c is above every index so far
            np.maximum(index, step, out=index)  # (np.copyto with where= is 30x slower here)
            if c < k - 1:
                np.maximum(best, value, out=best)
        return index


def _logit(p: float) -> float | None:
    return math.log(p / (1.0 - p)) if 0.0 < p < 1.0 else None


def decision_rule(card: ModelCard, channels: int | None) -> Rule | None:
    """The rule for a single-output segmentation model whose graph gives `channels` channels; None where the
    class needs the blended probabilities everywhere (a softmax with a threshold, several outputs, ...)."""
    if card.task != "segmentation" or len(card.output.heads) != 1 or not channels:
        return None
    classes = len(card.output.heads[0].classes)
    act, threshold = card.output.activation, card.output.threshold
    if channels == 1 and classes == 2:  # one probability (or logit) of the second class
        if threshold is None:
            level = 0.0 if act == "sigmoid" else 0.5 if act == "none" else None
            return None if level is None else Rule("above", level)
        if act == "none":
            return Rule("from_nonzero", threshold)
        logit = _logit(threshold) if act == "sigmoid" else None
        return None if logit is None else Rule("from_nonzero", logit)
    if channels != classes or classes > 255:
        return None
    if threshold is None:
        return Rule("argmax")  # softmax and sigmoid keep the order of the channels
    if act == "none":
        return Rule("argmax_from", threshold)
    logit = _logit(threshold) if act == "sigmoid" else None
    return None if logit is None else Rule("argmax_from", logit)


def with_decision(model_bytes: bytes, output: str, rule: Rule) -> bytes | None:
    """The model with `rule` on graph output `output` appended as a uint8 output named OUTPUT; None where the
    graph cannot take it (no onnx package, an old opset, an output type other than float)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    model = onnx.load_from_string(model_bytes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    found = [o for o in model.graph.output if o.name == output]
    if opset < MIN_OPSET or not found:
        return None
    elem = found[0].type.tensor_type.elem_type
    if elem not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        return None
    dtype = np.float32 if elem == TensorProto.FLOAT else np.float16
    graph, prefix = model.graph, "deepstrata_decision_"

    def const(name: str, value: float) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), prefix + name))
        return prefix + name

    nodes: list[Any] = []
    if rule.kind == "argmax":
        nodes.append(helper.make_node("ArgMax", [output], [prefix + "index"], axis=1, keepdims=0))
    elif rule.kind == "argmax_from":
        nodes += [helper.make_node("GreaterOrEqual", [output, const("level", rule.level)], [prefix + "counts"]),
                  helper.make_node("Where", [prefix + "counts", output, const("low", float(np.finfo(dtype).min))],
                                   [prefix + "counted"]),
                  helper.make_node("ArgMax", [prefix + "counted"], [prefix + "index"], axis=1, keepdims=0)]
    elif rule.kind == "above":
        nodes.append(helper.make_node("Greater", [output, const("level", rule.level)], [prefix + "index"]))
    else:
        nodes += [helper.make_node("GreaterOrEqual", [output, const("level", rule.level)], [prefix + "at"]),
                  helper.make_node("Equal", [output, const("zero", 0.0)], [prefix + "is_zero"]),
                  helper.make_node("Not", [prefix + "is_zero"], [prefix + "nonzero"]),
                  helper.make_node("And", [prefix + "at", prefix + "nonzero"], [prefix + "index"])]
    nodes.append(helper.make_node("Cast", [prefix + "index"], [OUTPUT], to=TensorProto.UINT8))
    graph.node.extend(nodes)
    dims = found[0].type.tensor_type.shape.dim
    rank = len(dims) - (1 if rule.kind.startswith("argmax") else 0)
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.UINT8,
                                                      [f"{prefix}{i}" for i in range(rank)] if dims else None))
    return bytes(model.SerializeToString())


def decision_session(model: Any, rule: Rule) -> tuple[Any, str]:
    """A session of `model` (engine Model) with `rule` appended, on the model's provider, cached on the model,
    and a sentence for the log; (None, why) where the rule stays in numpy."""
    from .providers import PREFERENCE, create_session, is_gpu

    if not (GRAPH_ON_CPU or is_gpu(model.provider)):
        return None, "class decision in numpy on the raw output (faster than inside the graph on the CPU)"
    if rule not in model.decisions:
        data = None if model.external else _same_model(model)
        appended = None if data is None else with_decision(data, model.output_names[0], rule)
        session = None
        if appended is not None:
            device = next((short for short, name in PREFERENCE if name == model.provider), "cpu")
            try:
                session, provider, _ = create_session(appended, device, model.threads)
            except ModelError:  # the numpy rule stays: same classes, only slower
                provider = ""
            if provider != model.provider:
                session = None
        model.decisions[rule] = session
    if model.decisions[rule] is not None:
        return model.decisions[rule], "class decision inside the graph (onnxruntime)"
    try:
        import onnx  # noqa: F401
        why = "the graph cannot take it"
    except ImportError:
        why = "the optional package onnx is not installed ('Check and install dependencies' adds it)"
    return None, f"class decision in numpy ({why})"


def _same_model(model: Any) -> bytes | None:
    """The model file's bytes again (sessions are not kept as bytes); None if the file changed since it was
    loaded (the appended graph must be the one the run's session holds: the rule then stays in numpy)."""
    from .model import read_model_bytes

    data = read_model_bytes(model.path)
    return data if hashlib.sha256(data).hexdigest() == model.sha256 else None
