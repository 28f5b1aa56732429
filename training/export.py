"""Export a trained PyTorch model to one ONNX file that carries its model card.

Before anything is written: onnx.checker passes, the card passes the plugin's own validation
(deepstrata.inference.engine.card), and onnxruntime agrees with PyTorch on random inputs of several sizes
(max abs difference below `tolerance`). The file appears only when all of that holds.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
import torch

from deepstrata.inference.engine.atomic_file import write_atomically
from deepstrata.inference.engine.card import parse_card

OPSET = 17
CARD_KEY = "deepstrata"


class ExportError(Exception):
    """The exported graph, its card, or its parity with PyTorch is not right; nothing was written."""


_REGISTERED: list[bool] = []


def register_symbolics() -> None:
    """ONNX symbolics the TorchScript exporter lacks at opset 17 but ONNX and onnxruntime have: aten::asinh ->
    Asinh (the terrain stem, training/stems.py). Idempotent."""
    if _REGISTERED:
        return

    def asinh(g: Any, x: Any) -> Any:
        return g.op("Asinh", x)

    torch.onnx.register_custom_op_symbolic("aten::asinh", asinh, 9)
    _REGISTERED.append(True)


def _to_onnx(model: torch.nn.Module, bands: int, size: int, per_pixel: bool,
             extras: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    register_symbolics()
    extras = extras or {}
    sample = torch.randn(1, bands, size, size)
    args = (sample, *(torch.from_numpy(v) for v in extras.values()))
    output_axes = {0: "N", 2: "H_out", 3: "W_out"} if per_pixel else {0: "N"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter: torch 2.13's default (dynamo) exporter needs onnxscript, and this one handles
        # dynamic spatial axes of convolutional models without extra declarations.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, args, buffer,  # type: ignore[arg-type]
                          input_names=["input", *extras], output_names=["output"],
                          opset_version=OPSET, dynamic_axes={"input": {0: "N", 2: "H", 3: "W"},
                                                             "output": output_axes}, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejects the exported graph: {exc}") from exc
    return proto


def parity(model: torch.nn.Module, proto: onnx.ModelProto, bands: int, sizes: Sequence[int],
           seed: int = 0, extras: dict[str, np.ndarray] | None = None) -> float:
    """The largest |onnxruntime - PyTorch| over random inputs of the given sizes (batch of 2 each); `extras` are
    the graph's other inputs (a terrain model's scale), fed as they are."""
    extras = extras or {}
    import onnxruntime

    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for size in sizes:
        x = rng.standard_normal((2, bands, size, size)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x), *(torch.from_numpy(v) for v in extras.values())).numpy()
        got = session.run(None, {"input": x, **extras})[0]
        if got.shape != expected.shape:
            raise ExportError(f"onnxruntime returns {got.shape} but PyTorch {expected.shape} for a {size} px input")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def export_model(model: torch.nn.Module, card: dict[str, Any], path: str | os.PathLike[str],
                 sizes: Sequence[int] = (64, 96), tolerance: float = 1e-4,
                 extras: dict[str, np.ndarray] | None = None) -> Path:
    """Write `model` with `card` embedded to `path` (.onnx) after every check; return the path.

    `extras`: the graph's inputs besides the raster ("input"), by name, with the sample values export and the
    parity check feed (a terrain model's scale input, card input.scale)."""
    extras = extras or {}
    parsed = parse_card(card)  # the plugin's own validation: a card it would refuse is never written
    bands, multiple = len(parsed.input.bands), parsed.input.size_multiple
    if any(size % multiple for size in sizes):
        raise ExportError(f"parity sizes {list(sizes)} must be multiples of input.size_multiple = {multiple}")
    model = model.eval()
    per_pixel = parsed.task != "classification"
    proto = _to_onnx(model, bands, sizes[0], per_pixel, extras)
    worst = parity(model, proto, bands, sizes, extras=extras)
    if worst >= tolerance:
        raise ExportError(f"onnxruntime and PyTorch differ by up to {worst:.3g} (tolerance {tolerance:g})")
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {CARD_KEY: json.dumps(card)})
    return write_atomically(path, proto.SerializeToString())
