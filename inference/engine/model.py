"""A model: an onnxruntime session plus its validated card, and the checks that the two agree."""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .card import ModelCard, parse_card
from .deepness import SOURCE as DEEPNESS, CardOverrides, Graph, card_from_deepness, has_deepness_metadata, \
    sidecar_metadata
from .reads import Read
from .errors import CardError, ModelError
from .onnx_file import external_files
from .providers import BINDS_IO, available_providers, create_session, run_bound

log = logging.getLogger(__name__)

CARD_KEY = "deepstrata"
CLASS_TASKS = ("segmentation", "classification")
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
    sha256: str = ""
    external: list[str] = field(default_factory=list)  # files of external data, beside the model
    # A terrain model's scale input for this run (card input.scale): [cell_x_m, cell_y_m, search_m], float32
    scale: np.ndarray | None = None
    threads: int = 0  # onnxruntime intra-op threads asked for (0: its default)
    # Sessions of the graph with a class decision appended (decision.py), by rule; None where it cannot be
    decisions: dict[Any, Any] = field(default_factory=dict)

    @property
    def _input(self) -> Any:
        """The graph's raster input: its first input other than the card's scale input."""
        spec = self.card.input.scale
        return next(i for i in self.session.get_inputs() if spec is None or i.name != spec.input)

    @property
    def input_name(self) -> str:
        return str(self._input.name)

    @property
    def input_dtype(self) -> Any:
        return _DTYPES[self._input.type]

    @property
    def channels(self) -> int:
        return len(self.card.input.bands)

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(height, width) when the graph only takes one tile size, else None."""
        shape = self._input.shape
        h, w = _dim(shape[2]), _dim(shape[3])
        return (h, w) if h and w else None

    @property
    def output_names(self) -> list[str]:
        """The graph outputs the card uses, in order."""
        return [str(o.name) for o in self.session.get_outputs()[:len(self.card.output.heads)]]

    def output_channels_of(self, index: int) -> int | None:
        """Channels of graph output `index` (axis 1; 1 for an output without a channel axis), None if open."""
        shape = self.session.get_outputs()[index].shape
        if self.card.task != "classification" and len(shape) == 3:
            return 1
        return _dim(shape[1]) if len(shape) > 1 else None

    @property
    def output_channels(self) -> int | None:
        """The first output's channels, None where the graph leaves them open."""
        return self.output_channels_of(0)

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph needs: its input's, or an output's where the input leaves it open (graphs
        exported with a dynamic input but a batch of 1 baked into a reshape)."""
        found = _dim(self._input.shape[0])
        if found is None:
            fixed = [_dim(o.shape[0]) for o in self.session.get_outputs()[:len(self.card.output.heads)] if o.shape]
            found = min((f for f in fixed if f), default=None)
        return found

    @property
    def reads(self) -> list[Read]:
        """The files a run reads for the model (outputs must never be one of them)."""
        return [Read(self.path, "the model")] + [Read(f, "the model's external data") for f in self.external]

    @property
    def binds_io(self) -> bool:
        """Whether runs bind inputs and outputs (IOBinding): on CUDA and TensorRT, where onnxruntime then copies
        each batch to the device once and writes the outputs into buffers it allocates there."""
        return self.provider in BINDS_IO

    def run(self, batch: np.ndarray, session: Any = None, extra: Sequence[str] = ()) -> list[np.ndarray]:
        """Every graph output the card uses, then the `extra` outputs, for one batch (of `session`, a session of
        this graph with outputs appended; the model's own by default)."""
        feeds = {self.input_name: batch}
        spec = self.card.input.scale
        if spec is not None:
            if self.scale is None:
                raise ModelError(f"'{os.path.basename(self.path)}' needs the run's scale (cell size and search "
                                 "distance); run it through run_model or the workflows, which set it.")
            feeds[spec.input] = self.scale
        names, session = self.output_names + list(extra), session or self.session
        if self.binds_io:
            return run_bound(session, feeds, names, BINDS_IO[self.provider])
        return [np.asarray(a) for a in session.run(names, feeds)]

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
        if c.input.scale:
            s = c.input.scale
            lines.append(f"Scale: any pixel size; search distance {s.default_cells:g} cells by default, "
                         f"{s.min_cells:g} to {s.max_cells:g} cells (coarser cells beyond)")
        if c.input.nodata == "nan":
            lines.append("Nodata and cells beyond the edge reach the model as NaN: it uses valid cells only")
        for i, head in enumerate(c.output.heads):
            if head.classes:
                title = f"Classes of output {i + 1} ({head.name})" if len(c.output.heads) > 1 else "Classes"
                lines.append(title + ":")
                lines += [f"  {k.value}: {k.name} ({k.color})" for k in head.classes]
        if c.output.threshold is not None:
            lines.append(f"Class probability threshold: {c.output.threshold:g}")
        if c.output.median_filter > 1:
            lines.append(f"Median filter over the class map: {c.output.median_filter} px")
        if c.output.scale != 1.0:
            lines.append(f"Output scaling: x {c.output.scale:g}")
        if c.output.anomaly:
            a = c.output.anomaly
            lines.append(f"Anomaly score: from the graph{', calibration median' if a.calibrated else ''}"
                         f"{f' {a.median:g}, MAD {a.mad:g}' if a.calibrated else ''}, default threshold "
                         f"{a.threshold:g}" if a.direct else
                         f"Anomaly score: {a.error} error, calibration median {a.median:g}, MAD {a.mad:g}, "
                         f"default threshold {a.threshold:g}")
        metrics = c.training.get("metrics") or {}
        if metrics:
            lines.append("Training metrics: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
        for key in ("data", "labels", "pretrained_from", "created_by", "command", "source"):
            if c.training.get(key):
                lines.append(f"Training {key.replace('_', ' ')}: {c.training[key]}")
        lines.append(f"SHA-256: {self.sha256}")
        lines.append(f"Execution provider: {self.provider}")
        lines.append("Providers available here: " + ", ".join(available_providers()))
        return "\n".join(lines)


def read_model_bytes(path: str) -> bytes:
    """A model file's bytes; ModelError naming the problem (missing, a loop, a folder, unreadable, empty)."""
    p = Path(path)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelError(f"Model file '{path}' is a symbolic link that loops back on itself. Point it at the "
                             "real .onnx file.") from exc
        raise ModelError(f"Model file not found: '{path}'. Check the path, or pick a .onnx file.") from exc
    if p.is_dir():
        raise ModelError(f"'{path}' is a folder, not a model file. Pick the .onnx file inside it.")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"Cannot read model file '{path}': {exc.strerror}. Check its permissions.") from exc
    if not data:
        raise ModelError(f"Model file '{path}' is empty. Export or download it again.")
    return data


def _graph(session: Any) -> Graph:
    inp = session.get_inputs()[0]
    shape = list(inp.shape or [])
    if len(shape) != 4:
        raise ModelError(f"The model's input has shape {shape or 'unknown (no static rank)'}; DeepStrata needs a "
                         "4-D input (batch, bands, height, width). Re-export the model with its input shape "
                         "declared (torch.onnx.export does so; make batch, height and width dynamic axes).")
    outputs = [list(o.shape or []) for o in session.get_outputs()]
    return Graph(_dim(shape[1]) or 3, _dim(shape[2]), outputs, [str(o.name) for o in session.get_outputs()])


def _sidecar(path: str) -> tuple[dict[str, Any] | None, dict[str, str] | None, str]:
    """A sidecar beside the model: a DeepStrata card, or Deepness metadata keys; (card, metadata, source)."""
    sidecar = Path(path + ".json")
    if not sidecar.is_file():
        return None, None, ""
    source = f"model card {sidecar.name}"
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError("", f"cannot be read ({exc})", source) from exc
    except json.JSONDecodeError as exc:
        raise CardError("", f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                        source) from exc
    if isinstance(data, dict) and "schema" not in data and has_deepness_metadata(data):
        return None, sidecar_metadata(data), f"Deepness metadata in {sidecar.name}"
    return data, None, source


def _card_data(path: str, meta: dict[str, str], graph: Graph, overrides: CardOverrides,
               warnings: list[str]) -> tuple[Any, str]:
    """The card as a JSON object (from the sidecar, the embedded card, or Deepness metadata) and its source."""
    name = Path(path).name
    card: Any
    card, deepness_meta, source = _sidecar(path)
    if card is None and deepness_meta is None and CARD_KEY in meta:
        source = "model card"
        try:
            card = json.loads(meta[CARD_KEY])
        except json.JSONDecodeError as exc:
            raise CardError("", f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                            source) from exc
    if card is not None:
        if overrides.task or overrides.classes:
            warnings.append(f"'{name}' has a card that says its task and classes; the task and class names given "
                            "for this run are ignored.")
        return card, source
    data = card_from_deepness(deepness_meta or meta, graph, name, overrides)
    if not (deepness_meta or has_deepness_metadata(meta)):
        source = "the task and classes given for this run"
    return data, source or DEEPNESS


def _overridden(card: Any, overrides: CardOverrides, warnings: list[str]) -> Any:
    """The card with this run's threshold, median filter and scaling (validated with the rest of it); those
    that do not apply to the model's task are left out with a warning."""
    if not isinstance(card, dict) or not isinstance(card.get("output"), dict):
        return card
    output = dict(card["output"])
    task = card.get("task")
    for key, value, applies in (("threshold", overrides.threshold, task in CLASS_TASKS),
                                ("median_filter", overrides.median_filter, task in CLASS_TASKS),
                                ("scale", overrides.scale, task == "regression")):
        if value is None:
            continue
        if applies:
            output[key] = value
        else:
            warnings.append(f"The {key.replace('_', ' ')} given for this run does not apply to a {task} model; "
                            "it is ignored.")
    return {**card, "output": output}


def _check_io(model: Model) -> None:
    """The graph's input and outputs must fit the card's task."""
    card, inp = model.card, model._input
    names = [str(i.name) for i in model.session.get_inputs()]
    spec = card.input.scale
    if spec is not None and (spec.input not in names or len(names) < 2):
        raise CardError("input.scale.input", f"names the graph input '{spec.input}', but the graph's inputs are "
                                             f"{', '.join(names)}")
    extra = [n for n in names if n not in (inp.name, spec.input if spec else None)]
    if extra:
        raise ModelError(f"The model has inputs the card does not describe ({', '.join(extra)}): DeepStrata feeds "
                         "one raster input (and a terrain model's scale input, card input.scale).")
    if inp.type not in _DTYPES:
        raise ModelError(f"The model's input type {inp.type} is not supported (float32, float16 or uint8).")
    c = _dim(inp.shape[1])
    if c is not None and c != model.channels:
        raise CardError("input.bands", f"lists {model.channels} bands but the model takes {c} channels")
    outputs = model.session.get_outputs()
    heads = card.output.heads
    if len(outputs) < len(heads):
        raise CardError("output.outputs", f"lists {len(heads)} outputs but the graph has {len(outputs)}")
    if len(outputs) > len(heads):
        model.warnings.append(f"The model has {len(outputs)} outputs and its card describes {len(heads)}; only "
                              f"the first {len(heads)} ({', '.join(o.name for o in outputs[:len(heads)])}) are "
                              "used.")
    for i, out in enumerate(outputs[:len(heads)]):
        shape = list(out.shape or [])
        valid = (2,) if card.task == "classification" else (3, 4) if card.task != "anomaly" else (4,)
        if len(shape) not in valid:
            layout = "(batch, classes)" if card.task == "classification" else "(batch, channels, height, width)"
            hint = " It looks like a recognition or embedding model, which DeepStrata does not run yet." \
                if len(shape) == 2 else ""
            raise ModelError(f"Unsupported output shape {shape} for a {card.task} model: it must be {layout}."
                             f"{hint} Check the card's task or re-export the model.")
        check_channels(card, model.output_channels_of(i), i)


def check_channels(card: ModelCard, channels: int | None, index: int = 0) -> None:
    """The channel count of graph output `index` must match the card (its classes, or the input bands)."""
    if channels is None:
        return
    head = card.output.heads[index]
    n = len(head.classes)
    where = f"output {index + 1} ({head.name})" if len(card.output.heads) > 1 else "the model"
    if card.task in CLASS_TASKS:
        if channels != n and not (channels == 1 and n == 2):
            raise ModelError(f"Unsupported output shape: {where} outputs {channels} channel"
                             f"{'s' if channels != 1 else ''} but the card lists {n} classes for it. Fix "
                             "output.classes in the card (or, for a model without a card, its task and class names).")
    elif card.task == "anomaly" and card.output.anomaly is not None and card.output.anomaly.direct:
        if channels not in (1, 2):
            raise ModelError(f"Unsupported output shape: an anomaly model with output.anomaly.error 'score' outputs "
                             f"the score (channel 1) and optionally the signed residual (channel 2), but it outputs "
                             f"{channels} channels. Fix the card's error ('mse' or 'mae' for an autoencoder).")
    elif card.task == "anomaly" and channels != len(card.input.bands):
        raise ModelError(f"Unsupported output shape: an anomaly model must reconstruct its {len(card.input.bands)} "
                         f"input bands, but it outputs {channels} channels.")
    elif card.task == "regression" and head.names and head.channels is None and len(head.names) != channels:
        raise ModelError(f"The card names {len(head.names)} output bands but {where} outputs {channels}. "
                         "Fix output.names in the card.")


def load_model(path: str | os.PathLike[str], device: str = "auto", threads: int = 0,
               overrides: CardOverrides | None = None) -> Model:
    """Open a model file, validate its card, and start an onnxruntime session on the best provider.

    `overrides` completes a model that carries no card (task, class names) and sets this run's threshold,
    median filter and output scaling."""
    path = os.fspath(path)
    overrides = overrides or CardOverrides()
    data = read_model_bytes(path)
    external = external_files(data, path)
    try:
        session, provider, warnings = create_session(os.path.abspath(path) if external else data, device, threads)
    except ModelError as exc:
        raise ModelError(f"'{Path(path).name}' is not a valid ONNX model or is corrupt ({exc}). "
                         "Export it again, or check that the file was copied completely.") from exc
    meta = dict(session.get_modelmeta().custom_metadata_map)
    graph = _graph(session)
    card_data, source = _card_data(path, meta, graph, overrides, warnings)
    card = parse_card(_overridden(card_data, overrides, warnings), source=source)
    model = Model(path, card, session, provider, warnings, hashlib.sha256(data).hexdigest(), external,
                  threads=threads)
    _check_io(model)
    return model


def model_info(path: str | os.PathLike[str], overrides: CardOverrides | None = None) -> dict[str, Any]:
    """What `info` prints as JSON: the card plus where it would run."""
    model = load_model(path, overrides=overrides)
    return {"path": model.path, "card": model.card.to_dict(), "sha256": model.sha256, "provider": model.provider,
            "available_providers": available_providers(), "warnings": model.warnings}
