"""A model: an onnxruntime session plus its validated card, and the checks that the two agree."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .card import ModelCard, parse_card
from .deepness import SOURCE as DEEPNESS, card_from_deepness, has_deepness_metadata
from .errors import CardError, ModelError
from .providers import available_providers, create_session

log = logging.getLogger(__name__)

CARD_KEY = "deepstrata"
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


@dataclass
class Model:
    path: str
    card: ModelCard
    session: Any
    provider: str
    warnings: list[str] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        return str(self.session.get_inputs()[0].name)

    @property
    def input_dtype(self) -> Any:
        return _DTYPES[self.session.get_inputs()[0].type]

    @property
    def channels(self) -> int:
        return len(self.card.input.bands)

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(height, width) when the graph only takes one tile size, else None."""
        shape = self.session.get_inputs()[0].shape
        h, w = _dim(shape[2]), _dim(shape[3])
        return (h, w) if h and w else None

    @property
    def output_channels(self) -> int | None:
        """The graph's output channels (axis 1), None where the graph leaves them open."""
        shape = self.session.get_outputs()[0].shape
        return _dim(shape[1]) if len(shape) > 1 else None

    @property
    def fixed_batch(self) -> int | None:
        return _dim(self.session.get_inputs()[0].shape[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch})[0])

    def describe(self) -> str:
        """A human-readable report of the card and where the model runs."""
        c = self.card
        lines = [f"{c.name}" + (f" (version {c.version})" if c.version else ""), f"File: {self.path}"]
        if c.description:
            lines.append(c.description)
        lines += [f"Task: {c.task}", f"Input kind: {c.input.kind}",
                  "Bands: " + ", ".join(b.name + (f" [{b.unit}]" if b.unit else "") for b in c.input.bands),
                  f"Normalisation: {c.input.normalization.method}",
                  f"Tile size: {c.input.tile_size} px, margin "
                  + (f"{c.input.margin} px" if c.input.margin is not None else "not given")
                  + f", output crop {c.output.crop} px"]
        if c.input.pixel_size_m:
            lines.append(f"Trained at: {c.input.pixel_size_m:g} m per pixel")
        if c.output.classes:
            lines.append("Classes:")
            lines += [f"  {k.value}: {k.name} ({k.color})" for k in c.output.classes]
        if c.output.anomaly:
            a = c.output.anomaly
            lines.append(f"Anomaly score: {a.error} error, calibration median {a.median:g}, MAD {a.mad:g}, "
                         f"default threshold {a.threshold:g}")
        metrics = c.training.get("metrics") or {}
        if metrics:
            lines.append("Training metrics: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
        for key in ("data", "labels", "pretrained_from", "created_by", "command"):
            if c.training.get(key):
                lines.append(f"Training {key.replace('_', ' ')}: {c.training[key]}")
        lines.append(f"Execution provider: {self.provider}")
        lines.append("Providers available here: " + ", ".join(available_providers()))
        return "\n".join(lines)


def _read_bytes(path: str) -> bytes:
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model file not found: '{path}'. Check the path, or pick a .onnx file.")
    if p.is_dir():
        raise ModelError(f"'{path}' is a folder, not a model file. Pick the .onnx file inside it.")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"Cannot read model file '{path}': {exc.strerror}. Check its permissions.") from exc
    if not data:
        raise ModelError(f"Model file '{path}' is empty. Export or download it again.")
    return data


def _load_card(path: str, meta: dict[str, str], channels: int | None) -> ModelCard:
    sidecar = Path(path + ".json")
    if sidecar.is_file():
        return parse_card(sidecar.read_text(encoding="utf-8"), source=f"model card {sidecar.name}")
    if CARD_KEY in meta:
        return parse_card(meta[CARD_KEY])
    if has_deepness_metadata(meta):
        return parse_card(card_from_deepness(meta, channels or 3, Path(path).stem), source=DEEPNESS)
    raise CardError("", f"'{Path(path).name}' carries no DeepStrata card (metadata entry '{CARD_KEY}') and no "
                        f"Deepness metadata. Embed a card, or put one beside the model as '{sidecar.name}'")


def _check_io(model: Model) -> None:
    """The graph's input and output must fit the card's task."""
    card, inp = model.card, model.session.get_inputs()[0]
    out = model.session.get_outputs()[0]
    if len(inp.shape) != 4:
        raise ModelError(f"The model's input has shape {inp.shape}; DeepStrata needs (batch, bands, height, width).")
    if inp.type not in _DTYPES:
        raise ModelError(f"The model's input type {inp.type} is not supported (float32, float16 or uint8).")
    c = _dim(inp.shape[1])
    if c is not None and c != model.channels:
        raise CardError("input.bands", f"lists {model.channels} bands but the model takes {c} channels")
    expected = {"classification": 2}.get(card.task, 4)
    if len(out.shape) != expected:
        layout = "(batch, classes)" if expected == 2 else "(batch, channels, height, width)"
        raise ModelError(f"Unsupported output shape {out.shape} for a {card.task} model: it must be {layout}. "
                         "Check the card's task or re-export the model.")
    check_channels(card, model.output_channels)


def check_channels(card: ModelCard, channels: int | None) -> None:
    """The output channel count must match the card (classes, bands)."""
    if channels is None:
        return
    n = len(card.output.classes)
    if card.task in ("segmentation", "classification"):
        binary = channels == 1 and n == 2 and card.output.activation == "sigmoid"
        if channels != n and not binary:
            raise ModelError(f"Unsupported output shape: the model outputs {channels} channels but its card lists "
                             f"{n} classes. Fix output.classes in the card.")
    elif card.task == "anomaly" and channels != len(card.input.bands):
        raise ModelError(f"Unsupported output shape: an anomaly model must reconstruct its {len(card.input.bands)} "
                         f"input bands, but it outputs {channels} channels.")


def load_model(path: str | os.PathLike[str], device: str = "auto", threads: int = 0) -> Model:
    """Open a model file, validate its card, and start an onnxruntime session on the best provider."""
    path = os.fspath(path)
    data = _read_bytes(path)
    try:
        session, provider, warnings = create_session(data, device, threads)
    except ModelError as exc:
        raise ModelError(f"'{Path(path).name}' is not a valid ONNX model or is corrupt ({exc}). "
                         "Export it again, or check that the file was copied completely.") from exc
    meta = dict(session.get_modelmeta().custom_metadata_map)
    card = _load_card(path, meta, _dim(session.get_inputs()[0].shape[1]))
    model = Model(path, card, session, provider, warnings)
    _check_io(model)
    return model


def model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What `info` prints as JSON: the card plus where it would run."""
    model = load_model(path)
    return {"path": model.path, "card": model.card.to_dict(), "provider": model.provider,
            "available_providers": available_providers(), "warnings": model.warnings}
