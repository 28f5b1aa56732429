"""The model card (docs/model-card.md): parsed into frozen dataclasses and validated field by field."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .errors import CardError

SCHEMA = "deepstrata.card/1"
TASKS = ("segmentation", "classification", "regression", "anomaly")
KINDS = ("dem", "multispectral", "rgb", "hyperspectral", "any")
ACTIVATIONS = ("softmax", "sigmoid", "none")
DTYPES = ("float32", "float16", "uint8")
NORMALIZATIONS = ("none", "scale", "zscore", "minmax")
ANOMALY_ERRORS = ("mse", "mae", "score")  # score: the graph outputs the score (and the sign) itself
NODATA_FILLS = ("zero", "nan")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class BandInfo:
    name: str
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Normalization:
    method: str = "none"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    min: tuple[float, ...] = ()
    max: tuple[float, ...] = ()
    factor: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class ClassInfo:
    value: int
    name: str
    color: str
    description: str = ""


@dataclass(frozen=True)
class AnomalySpec:
    """How the graph's output becomes an anomaly score. `error` "mse"/"mae": the graph reconstructs its input and
    the score is the robust z-score of the reconstruction error, (error - median) / (1.4826 mad). `error` "score":
    the graph outputs the score itself in channel 0 and, optionally, the signed residual in the input's units in
    channel 1 (negative: a depression, positive: a rise); the calibration is then optional (`calibrated` False:
    the score passes unchanged)."""

    error: str
    median: float
    mad: float
    threshold: float
    calibrated: bool = True

    @property
    def direct(self) -> bool:
        """The graph outputs the score (and the sign) itself."""
        return self.error == "score"


@dataclass(frozen=True)
class ScaleSpec:
    """A terrain model's scale input: the graph input named `input` gets float32 [cell_x_m, cell_y_m, search_m]
    (ground cell sides and the search distance, metres). The search distance defaults to `default_cells` cells;
    the engine coarsens the raster (averaging) so it never spans more than `max_cells` cells, and refuses fewer
    than `min_cells`."""

    input: str
    default_cells: float
    max_cells: float
    min_cells: float = 2.0


@dataclass(frozen=True)
class InputSpec:
    bands: tuple[BandInfo, ...]
    kind: str = "any"
    dtype: str = "float32"
    normalization: Normalization = Normalization()
    pixel_size_m: float | None = None
    tile_size: int = 512
    margin: int | None = None  # None: the card does not say (a safety overlap is used)
    size_multiple: int = 1
    nodata: str = "zero"  # what invalid pixels and pixels beyond the raster's edge become: 0, or NaN
    scale: ScaleSpec | None = None


@dataclass(frozen=True)
class GraphOutput:
    """One output of the graph and what it holds: classes (class tasks) or band names (regression); `channels`
    keeps only that many leading channels (None: all)."""

    name: str = ""
    classes: tuple[ClassInfo, ...] = ()
    names: tuple[str, ...] = ()
    channels: int | None = None


@dataclass(frozen=True)
class OutputSpec:
    activation: str = "none"
    classes: tuple[ClassInfo, ...] = ()  # of the first graph output when `outputs` lists several
    crop: int = 0
    names: tuple[str, ...] = ()
    anomaly: AnomalySpec | None = None
    outputs: tuple[GraphOutput, ...] = ()  # models with several graph outputs: one entry each, in graph order
    threshold: float | None = None  # class tasks: probabilities below it do not count (Deepness's seg_thresh)
    median_filter: int = 1  # class tasks: a median filter of this size (odd) over the class map; 1 = none
    scale: float = 1.0  # regression: values are multiplied by it

    @property
    def heads(self) -> tuple[GraphOutput, ...]:
        """What each graph output used holds, in graph order (one entry for a single-output card)."""
        return self.outputs or (GraphOutput("", self.classes, self.names),)


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    input: InputSpec
    output: OutputSpec
    version: str = ""
    description: str = ""
    training: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The card as the JSON object it was read from."""
        return json.loads(json.dumps(self.raw))


class _Reader:
    """Reads one JSON object and turns every problem into a CardError naming the field path."""

    def __init__(self, data: Any, path: str, source: str) -> None:
        if not isinstance(data, Mapping):
            raise CardError(path, f"must be a JSON object, not {type(data).__name__}", source)
        self.data, self.path, self.source = data, path, source

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> CardError:
        return CardError(self._name(key), problem, self.source)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., required: bool = False) -> Any:
        value = self.data.get(key)
        if value is None:
            if required or default is ...:
                raise self.fail(key, "is required but missing")
            return default
        ok = isinstance(value, kind) and not (kind in (int, float, (int, float)) and isinstance(value, bool))
        if not ok:
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise self.fail(key, f"must be {names.replace('str', 'a string').replace('int', 'an integer')}, "
                                 f"got {json.dumps(value)[:60]}")
        return value

    def choice(self, key: str, options: Sequence[str], default: str | None = None) -> str:
        value = self.get(key, str, default=default if default is not None else ...)
        if value not in options:
            raise self.fail(key, f"'{value}' is not one of {', '.join(options)}")
        return value

    def number(self, key: str, default: Any = ..., minimum: float | None = None, positive: bool = False,
               integer: bool = False) -> Any:
        value = self.get(key, int if integer else (int, float), default=default)
        if value is None or value is default:
            return value
        if positive and value <= 0:
            raise self.fail(key, f"must be greater than 0, got {value}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum:g}, got {value}")
        return value

    def child(self, key: str, required: bool = False) -> "_Reader":
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required but missing")
            value = {}
        return _Reader(value, self._name(key), self.source)

    def items(self, key: str, required: bool = False) -> list["_Reader"]:
        value = self.get(key, list, default=None, required=required)
        if value is None:
            return []
        if required and not value:
            raise self.fail(key, "must list at least one entry")
        return [_Reader(v, f"{self._name(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def numbers(self, key: str, count: int, nonzero: bool = False) -> tuple[float, ...]:
        value = self.data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value] * count
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
            raise self.fail(key, f"must be a number or a list of {count} numbers (one per band)")
        if len(value) == 1:
            value = value * count
        if len(value) != count:
            raise self.fail(key, f"has {len(value)} values but the model has {count} input bands")
        if nonzero and any(v == 0 for v in value):
            raise self.fail(key, "must not contain 0")
        return tuple(float(v) for v in value)


def _normalization(r: _Reader, bands: int) -> Normalization:
    method = r.choice("method", NORMALIZATIONS, default="none")
    if method == "zscore":
        return Normalization(method, mean=r.numbers("mean", bands), std=r.numbers("std", bands, nonzero=True))
    if method == "minmax":
        lo, hi = r.numbers("min", bands), r.numbers("max", bands)
        if any(h <= l for l, h in zip(lo, hi)):
            raise r.fail("max", "must be greater than min for every band")
        return Normalization(method, min=lo, max=hi)
    if method == "scale":
        return Normalization(method, factor=float(r.number("factor")), offset=float(r.number("offset", 0.0)))
    return Normalization()


def parse_normalization(data: Mapping[str, Any], bands: int) -> Normalization:
    """An `input.normalization` object on its own (the training tools apply exactly what the plugin applies)."""
    return _normalization(_Reader(data, "input.normalization", "model card"), bands)


def _input(r: _Reader) -> InputSpec:
    bands = tuple(BandInfo(b.get("name", str, required=True), b.get("unit", str, ""),
                           b.get("description", str, "")) for b in r.items("bands", required=True))
    return InputSpec(
        bands=bands,
        kind=r.choice("kind", KINDS, default="any"),
        dtype=r.choice("dtype", DTYPES, default="float32"),
        normalization=_normalization(r.child("normalization"), len(bands)),
        pixel_size_m=r.number("pixel_size_m", None, positive=True),
        tile_size=r.number("tile_size", 512, minimum=8, integer=True),
        margin=r.number("margin", None, minimum=0, integer=True),
        size_multiple=r.number("size_multiple", 1, minimum=1, integer=True),
        nodata=r.choice("nodata", NODATA_FILLS, default="zero"),
        scale=_scale(r.child("scale")) if r.has("scale") else None,
    )


def _scale(r: _Reader) -> ScaleSpec:
    spec = ScaleSpec(input=r.get("input", str, required=True),
                     default_cells=float(r.number("default_cells", positive=True)),
                     max_cells=float(r.number("max_cells", positive=True)),
                     min_cells=float(r.number("min_cells", 2.0, positive=True)))
    if not spec.min_cells <= spec.default_cells <= spec.max_cells:
        raise r.fail("default_cells", f"must lie between min_cells ({spec.min_cells:g}) and max_cells "
                                      f"({spec.max_cells:g}), got {spec.default_cells:g}")
    return spec


def _classes(r: _Reader, required: bool) -> tuple[ClassInfo, ...]:
    classes = []
    for c in r.items("classes", required=required):
        value = c.number("value", integer=True, minimum=1)
        if value > 65535:
            raise c.fail("value", f"must be at most 65535, got {value}")
        color = c.get("color", str)
        if not _COLOR.match(color):
            raise c.fail("color", f"'{color}' is not a #RRGGBB colour")
        classes.append(ClassInfo(value, c.get("name", str), color.lower(), c.get("description", str, "")))
    for attr in ("value", "name"):
        seen = [getattr(c, attr) for c in classes]
        dupes = sorted({str(v) for v in seen if seen.count(v) > 1})
        if dupes:
            raise r.fail("classes", f"class {attr}s must be unique; repeated: {', '.join(dupes)}")
    return tuple(classes)


def _anomaly(r: _Reader) -> AnomalySpec:
    error = r.choice("error", ANOMALY_ERRORS, default="mse")
    threshold = float(r.number("threshold", 3.0))
    if not math.isfinite(threshold):
        raise r.fail("threshold", f"must be a finite number, got {threshold}")
    if error == "score" and not r.has("calibration"):
        return AnomalySpec(error, 0.0, 1.0, threshold, calibrated=False)
    if not r.has("calibration"):
        raise r.fail("calibration", f"is required for error '{error}' (the median and MAD of the per-pixel "
                                    "reconstruction error on normal data); only error 'score', where the graph "
                                    "outputs the score itself, may leave it out")
    cal = r.child("calibration", required=True)
    return AnomalySpec(error=error,
                       median=float(cal.number("median", minimum=None if error == "score" else 0)),
                       mad=float(cal.number("mad", positive=True)),
                       threshold=threshold)


def _graph_outputs(r: _Reader, task: str) -> tuple[GraphOutput, ...]:
    needs_classes = task in ("segmentation", "classification")
    entries = r.items("outputs")
    if entries and (r.has("classes") or r.has("names")):
        raise r.fail("outputs", "lists the graph's outputs, so output.classes and output.names must not be "
                                "given as well (put them in each entry)")
    if entries and task in ("classification", "anomaly"):
        raise r.fail("outputs", f"a {task} model has a single output")
    heads = []
    for e in entries:
        classes = _classes(e, required=needs_classes)
        if needs_classes and len(classes) < 2:
            raise e.fail("classes", f"a {task} output needs at least 2 classes")
        heads.append(GraphOutput(e.get("name", str, ""), classes, tuple(str(n) for n in e.get("names", list, [])),
                                 e.number("channels", None, minimum=1, integer=True)))
    return tuple(heads)


def _output(r: _Reader, task: str) -> OutputSpec:
    needs_classes = task in ("segmentation", "classification")
    outputs = _graph_outputs(r, task)
    classes = outputs[0].classes if outputs else _classes(r, required=needs_classes)
    if needs_classes and len(classes) < 2:
        raise r.fail("classes", f"a {task} model needs at least 2 classes")
    for key, allowed in (("threshold", needs_classes), ("median_filter", needs_classes),
                         ("scale", task == "regression")):
        if r.has(key) and not allowed:
            raise r.fail(key, f"does not apply to a {task} model")
    threshold = r.number("threshold", None, minimum=0)
    if threshold is not None and threshold > 1:
        raise r.fail("threshold", f"is a probability, between 0 and 1; got {threshold}")
    median = r.number("median_filter", 1, minimum=1, integer=True)
    if median % 2 == 0:
        raise r.fail("median_filter", f"must be an odd number of pixels, got {median}")
    return OutputSpec(
        activation=r.choice("activation", ACTIVATIONS, default="none"),
        classes=classes,
        crop=r.number("crop", 0, minimum=0, integer=True),
        names=tuple(str(n) for n in r.get("names", list, [])),
        anomaly=_anomaly(r.child("anomaly", required=True)) if task == "anomaly" else None,
        outputs=outputs,
        threshold=None if threshold is None else float(threshold),
        median_filter=median,
        scale=float(r.number("scale", 1.0)),
    )


def parse_card(data: Any, source: str = "model card") -> ModelCard:
    """Validate a card (a JSON string or an already-decoded object) and return it; CardError names the bad field."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise CardError("", f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                            source) from exc
    r = _Reader(data, "", source)
    schema = r.get("schema", str)
    if schema != SCHEMA:
        major = schema.rsplit("/", 1)[-1]
        hint = "update the DeepStrata plugin" if schema.startswith("deepstrata.card/") and major > "1" else \
            f"use '{SCHEMA}'"
        raise r.fail("schema", f"'{schema}' is not supported ({hint})")
    task = r.choice("task", TASKS)
    card = ModelCard(
        name=r.get("name", str),
        task=task,
        input=_input(r.child("input", required=True)),
        output=_output(r.child("output", required=True), task),
        version=str(r.get("version", (str, int, float), "")),
        description=r.get("description", str, ""),
        training=r.get("training", dict, {}),
        raw=data,
    )
    if card.input.tile_size - 2 * card.output.crop < 1:
        raise r.fail("output.crop", f"{card.output.crop} leaves nothing of a {card.input.tile_size}-pixel tile")
    return card
