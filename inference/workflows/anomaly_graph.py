"""The ONNX graph of a fitted anomaly mixture (:mod:`.fit_anomaly`), built with `onnx.helper`, no PyTorch.

input (N, C, H, W), already z-scored by the engine from the card
  -> Conv 1x1 (J*k filters): y_j = A_j x + b_j for every component j
  -> square, then a fixed 1x1 Conv summing each component's k channels: d_j = ||y_j||^2 (N, J, H, W)
  -> t_j = c_j - d_j / 2, score = -(max_j t_j + log sum_j exp(t_j - max_j t_j))      (N, 1, H, W)

The card says ``output.anomaly.error = "score"``: the engine takes channel 0 as the score and calibrates it with
the card's median and MAD.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..engine.atomic_file import write_atomically
from ..engine.card import parse_card
from ..engine.errors import DependencyError


class Mixture(Protocol):
    """What the graph needs of a fitted model (fit_anomaly.Mixture): per component j, y_j = A_j x + b_j and
    score = -logsumexp_j(-||y_j||^2 / 2 + c_j), as A (J, k, C), b (J, k), c (J,)."""

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

OPSET = 17
CARD_KEY = "deepstrata"
ONNX_FIX = ("Fitting an anomaly model writes its graph with the 'onnx' Python package, which this Python does "
            "not have. Install it with the Processing algorithm 'Check and install dependencies' (DeepStrata "
            "toolbar > Check and install dependencies), or run: python -m pip install 'onnx>=1.15'.")


def require_onnx() -> Any:
    """The `onnx` module; DependencyError saying how to install it when missing or broken."""
    try:
        import onnx
        import onnx.helper  # noqa: F401
    except Exception as exc:  # noqa: BLE001 (a broken install can raise anything on import)
        raise DependencyError(f"{ONNX_FIX} ({type(exc).__name__}: {exc})") from exc
    return onnx


def build_graph(model: Mixture) -> Any:
    """The onnx.ModelProto computing the mixture's score (module docstring), checked by onnx.checker."""
    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    a, b, c = model.affine()
    clusters, k, bands = a.shape
    weight = a.reshape(clusters * k, bands, 1, 1).astype(np.float32)
    summing = np.zeros((clusters, clusters * k, 1, 1), dtype=np.float32)
    for j in range(clusters):
        summing[j, j * k:(j + 1) * k] = 1.0
    inits = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(b.reshape(-1).astype(np.float32), "B"),
             numpy_helper.from_array(summing, "S"),
             numpy_helper.from_array(c.reshape(1, clusters, 1, 1).astype(np.float32), "C"),
             numpy_helper.from_array(np.array(-0.5, dtype=np.float32), "half"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis")]
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["y"]),
             helper.make_node("Mul", ["y", "y"], ["y2"]),
             helper.make_node("Conv", ["y2", "S"], ["d"]),
             helper.make_node("Mul", ["d", "half"], ["hd"]),
             helper.make_node("Add", ["hd", "C"], ["t"]),
             helper.make_node("ReduceMax", ["t"], ["top"], axes=[1], keepdims=1),
             helper.make_node("Sub", ["t", "top"], ["shifted"]),
             helper.make_node("Exp", ["shifted"], ["e"]),
             helper.make_node("ReduceSum", ["e", "axis"], ["total"], keepdims=1),
             helper.make_node("Log", ["total"], ["logtotal"]),
             helper.make_node("Add", ["top", "logtotal"], ["loglik"]),
             helper.make_node("Neg", ["loglik"], ["output"])]
    graph = helper.make_graph(
        nodes, "deepstrata_fitted_anomaly",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", bands, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="deepstrata.fit_anomaly")
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime 1.17, the oldest the plugin supports
    onnx.checker.check_model(proto, full_check=True)
    return proto


def write_model(model: Mixture, card: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the graph with ``card`` embedded (validated by the plugin's own card parser first) to ``path``,
    atomically: a temporary file in the same folder, renamed when complete."""
    from onnx import helper

    parse_card(card)
    proto = build_graph(model)
    helper.set_model_props(proto, {CARD_KEY: json.dumps(card)})
    return write_atomically(path, proto.SerializeToString())
