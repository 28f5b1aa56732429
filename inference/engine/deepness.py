"""Models made for the Deepness plugin: their metadata turned into a card, so they run as Deepness runs them.

Deepness's model creators add ONNX metadata entries whose values are JSON (``json.dumps``): ``model_type``
(``"Segmentor"``, ``"Regressor"``, ``"Detector"``, ``"Superresolution"``, ``"Recognition"``), ``class_names``
(an object per output, or a list of them), ``resolution`` (cm per pixel), ``tile_size``, ``tiles_overlap``
(percent), ``standardization_mean`` / ``standardization_std`` (of values scaled to 0..1), ``seg_thresh`` and
``seg_small_segment`` (segmentation) and ``reg_output_scaling`` (regression). What Deepness does with them, the
card does: it divides pixels by 255 and standardises; a segmentor's class is the most probable channel among
those reaching the threshold (a one-channel output: the class where it reaches it), then a median filter of the
small-segment size; a regressor keeps channel 0 of each output, times the scaling. Every graph output becomes
one band. Where a key is missing, Deepness's own defaults apply (threshold 0.5, small segments 9 px, overlap
15 %). A model with no metadata runs when the user says what it is (`CardOverrides`: the task, and class names
if wanted), through parameters or a sidecar file of the same keys.
"""
from __future__ import annotations

import ast
import colorsys
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .card import SCHEMA
from .errors import CardError, MissingCardError

SOURCE = "Deepness metadata"
KEYS = ("model_type", "class_names", "names", "tile_size", "tiles_overlap", "standardization_mean",
        "standardization_std", "resolution", "seg_thresh", "seg_small_segment", "reg_output_scaling")
TASKS = {"segmentor": "segmentation", "regressor": "regression",
         "segmentation": "segmentation", "regression": "regression"}  # Deepness's spelling, and the plain words
UNSUPPORTED = {"detector": "object detection", "superresolution": "super-resolution",
               "recognition": "recognition (image similarity)"}
DEFAULT_THRESHOLD = 0.5  # Deepness's dialog: "pixel class threshold" on, 0.5
DEFAULT_SMALL_SEGMENT = 9  # Deepness's dialog: "remove small segments" on, 9
DEFAULT_OVERLAP = 15  # percent
DEFAULT_TILE = 512


@dataclass(frozen=True)
class Graph:
    """What the graph itself says: input channels and tile size, and each output's shape (None: dynamic)."""

    channels: int
    tile: int | None
    outputs: Sequence[Sequence[int | None]]
    output_names: Sequence[str]


@dataclass(frozen=True)
class CardOverrides:
    """What the user supplies at run time. `task` and `classes` complete a model that does not say them (no
    card); `threshold`, `median_filter` and `scale` override the card's for this run."""

    task: str | None = None
    classes: Sequence[Sequence[str]] | None = None  # class names per graph output
    threshold: float | None = None
    median_filter: int | None = None
    scale: float | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in (self.task, self.classes, self.threshold, self.median_filter, self.scale))


def has_deepness_metadata(meta: Mapping[str, str]) -> bool:
    return any(key in meta for key in KEYS)


def _value(meta: Mapping[str, str], key: str, default: Any = None) -> Any:
    """A metadata value: JSON as Deepness writes it (or a Python literal, which Deepness also accepts)."""
    if key not in meta:
        return default
    text = meta[key]
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # an unquoted string, as older exports wrote model_type


def palette(n: int) -> list[str]:
    """n distinct colours, evenly spaced in hue."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.9)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return out


def _task(meta: Mapping[str, str], overrides: CardOverrides, name: str) -> str:
    if overrides.task:
        return overrides.task
    kind = _value(meta, "model_type")
    if kind is None:
        raise MissingCardError(f"'{name}' carries no DeepStrata card and no Deepness metadata, so DeepStrata "
                               "cannot tell what it computes. Say it: set Task (segmentation or regression) and, if "
                               "you like, Class names in the algorithm's advanced parameters (command line: --task "
                               f"segmentation --classes water,land), or put a card beside the model as "
                               f"'{name}.json' (see docs/model-card.md).")
    key = str(kind).strip().lower()
    if key in UNSUPPORTED:
        raise CardError("model_type", f"'{kind}' is a Deepness {UNSUPPORTED[key]} model; DeepStrata runs per-pixel "
                                      "models (Deepness segmentors and regressors) and does not support "
                                      f"{UNSUPPORTED[key]} yet", SOURCE)
    if key not in TASKS:
        raise CardError("model_type", f"'{kind}' is not a model type Deepness writes (Segmentor, Regressor, "
                                      "Detector, Superresolution, Recognition)", SOURCE)
    return TASKS[key]


def _names(meta: Mapping[str, str], outputs: int) -> list[list[str]]:
    """Class names per output, in channel order ([] where the metadata has none)."""
    value = _value(meta, "class_names", _value(meta, "names"))
    if value is None:
        return [[] for _ in range(outputs)]
    groups = [value] if isinstance(value, dict) else value
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise CardError("class_names", "must be an object {\"0\": \"name\", ...} or a list of them (one per "
                                       "output)", SOURCE)
    names = []
    for group in groups:
        try:
            ordered = sorted(group.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError) as exc:
            raise CardError("class_names", "keys must be channel numbers (\"0\", \"1\", ...)", SOURCE) from exc
        if [int(k) for k, _ in ordered] != list(range(len(ordered))):
            raise CardError("class_names", "must number the channels 0, 1, 2, ... without gaps", SOURCE)
        names.append([str(v) for _, v in ordered])
    return names + [[] for _ in range(outputs - len(names))]


def _classes(names: list[str], channels: int | None) -> list[dict[str, Any]]:
    """Deepness's classes of one output: its names, 'background' before a single name of a one-channel output,
    generic names where there are none."""
    if channels == 1 or (channels is None and len(names) <= 1):
        names = ["background", names[0]] if len(names) == 1 else (names or ["channel_0", "channel_1"])
    elif not names:
        names = [f"channel_{i}" for i in range(channels or 2)]
    if len(set(names)) != len(names):
        names = [f"{n} ({i})" for i, n in enumerate(names)]
    return [{"value": i + 1, "name": n, "color": c} for i, (n, c) in enumerate(zip(names, palette(len(names))))]


def _channels(shape: Sequence[int | None]) -> int | None:
    if len(shape) == 3:
        return 1
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) and shape[1] > 0 else None


def _crop(graph: Graph) -> int:
    sizes = {s[-1] for s in graph.outputs if len(s) >= 3 and isinstance(s[-1], int) and s[-1] > 0}
    if not graph.tile or len(sizes) != 1:
        return 0
    size = sizes.pop()
    if size > graph.tile:
        raise CardError("output", f"the graph's output ({size} px) is larger than its input ({graph.tile} px): "
                                  "a super-resolution model, which DeepStrata does not support yet; it runs "
                                  "models whose output has the input's pixels (or fewer, cropped)", SOURCE)
    crop, odd = divmod(graph.tile - size, 2)
    if odd:
        raise CardError("output", f"the graph's {size}-pixel output is not centred in its {graph.tile}-pixel "
                                  "input (an odd size difference), so it cannot be placed on the map", SOURCE)
    return crop


def card_from_deepness(meta: Mapping[str, str], graph: Graph, file_name: str,
                       overrides: CardOverrides | None = None) -> dict[str, Any]:
    """A card dict equivalent to Deepness's metadata (and the user's overrides) for a graph of this shape."""
    overrides = overrides or CardOverrides()
    task = _task(meta, overrides, file_name)
    name = file_name.rsplit(".", 1)[0]
    tile = int(float(_value(meta, "tile_size", graph.tile or DEFAULT_TILE)))
    overlap = float(_value(meta, "tiles_overlap", DEFAULT_OVERLAP))
    c = graph.channels
    mean = [float(v) * 255 for v in _value(meta, "standardization_mean", [0.0] * c)]
    std = [float(v) * 255 for v in _value(meta, "standardization_std", [1.0] * c)]
    card: dict[str, Any] = {
        "schema": SCHEMA, "name": name, "task": task,
        "description": "A model made for the Deepness plugin; this card is derived from its metadata.",
        "input": {"kind": "rgb" if c == 3 else "any",
                  "bands": [{"name": n} for n in (("red", "green", "blue") if c == 3 else
                                                  [f"band {i + 1}" for i in range(c)])],
                  "normalization": {"method": "zscore", "mean": mean, "std": std},
                  "tile_size": max(8, tile), "margin": int(tile * overlap / 100 / 2)},
        "output": {"activation": "none", "crop": _crop(graph)},
        "training": {"source": SOURCE, "deepness_metadata": {k: meta[k] for k in KEYS if k in meta}},
    }
    if "resolution" in meta:
        card["input"]["pixel_size_m"] = float(_value(meta, "resolution")) / 100.0
    names = [list(n) for n in overrides.classes] if overrides.classes else _names(meta, len(graph.outputs))
    out = card["output"]
    heads: list[dict[str, Any]] = []
    for i, shape in enumerate(graph.outputs):
        label = graph.output_names[i] if i < len(graph.output_names) else f"output {i + 1}"
        group = names[i] if i < len(names) else []
        if task == "segmentation":
            heads.append({"name": label, "classes": _classes(group, _channels(shape))})
        else:
            heads.append({"name": label, "names": [group[0] if group else label], "channels": 1})
    out["outputs"] = heads
    if task == "segmentation":
        threshold = float(_value(meta, "seg_thresh", DEFAULT_THRESHOLD))
        small = int(_value(meta, "seg_small_segment", DEFAULT_SMALL_SEGMENT))
        out["threshold"] = min(max(threshold, 0.0), 1.0)
        out["median_filter"] = small // 2 * 2 + 1 if small > 0 else 1
    else:
        out["scale"] = float(_value(meta, "reg_output_scaling", 1.0))
    return card


def sidecar_metadata(data: Mapping[str, Any]) -> dict[str, str]:
    """A sidecar JSON object of Deepness keys (plain JSON values) as Deepness metadata (JSON strings)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
