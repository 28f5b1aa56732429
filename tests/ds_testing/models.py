"""Builders of tiny analytic ONNX models, each saved with a valid model card (docs/model-card.md).

Every builder writes one `.onnx` file and returns its path. Inputs are float32 NCHW named ``input`` with
dynamic ``N``, ``H``, ``W`` unless stated; weights come from a seeded numpy RNG, so a builder called twice with
the same arguments writes the same model.
"""
from __future__ import annotations

import colorsys
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from .graph import INPUT, OUTPUT, conv, conv_stack, const, make_model, tensor_info

SCHEMA = "deepstrata.card/1"
CARD_KEY = "deepstrata"
HIDDEN = 8
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_INPUT_KEYS = {"kind", "bands", "dtype", "normalization", "pixel_size_m", "tile_size", "margin", "size_multiple"}
_OUTPUT_KEYS = {"activation", "classes", "crop", "names", "anomaly"}


# ---------------------------------------------------------------------------------------------- cards

def colors(n: int) -> list[str]:
    """`n` distinct #rrggbb colours: a fixed palette, then evenly spaced hues."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    hues = [colorsys.hsv_to_rgb(i / n, 0.75, 0.9) for i in range(n)]
    return ["#%02x%02x%02x" % tuple(round(c * 255) for c in rgb) for rgb in hues]


def _class_list(classes: Sequence[Any] | int) -> list[dict[str, Any]]:
    if isinstance(classes, int):
        classes = [f"class_{i + 1}" for i in range(classes)]
    palette = colors(len(classes))
    out = []
    for i, c in enumerate(classes):
        entry = dict(c) if isinstance(c, dict) else {"name": str(c)}
        entry.setdefault("value", i + 1)
        entry.setdefault("color", palette[i])
        out.append({"value": entry.pop("value"), "name": entry.pop("name"), "color": entry.pop("color"), **entry})
    return out


def card(task: str, bands: Sequence[Any] | int, classes: Sequence[Any] | int | None = None,
         **sections: Any) -> dict[str, Any]:
    """A valid ``deepstrata.card/1`` card.

    `bands`: band names (or dicts, or a count -> ``b1..bn``); `classes`: names (or dicts, or a count), values
    1..n with distinct colours. Keyword arguments that are input fields (``margin``, ``tile_size``,
    ``normalization``...) go to ``input``, output fields (``activation``, ``crop``...) to ``output``;
    ``input=``/``output=``/``training=`` dicts are merged into those sections; anything else is top level.
    """
    if isinstance(bands, int):
        bands = [f"b{i + 1}" for i in range(bands)]
    result: dict[str, Any] = {
        "schema": SCHEMA, "name": f"test {task} model", "version": "0.0.1", "task": task,
        "description": "Tiny analytic model built by tests/ds_testing for the test suite.",
        "input": {"kind": "any", "bands": [dict(b) if isinstance(b, dict) else {"name": str(b)} for b in bands],
                  "dtype": "float32", "normalization": {"method": "none"}, "tile_size": 64, "margin": 0},
        "output": {"activation": "none"},
        "training": {"data": "none (analytic weights)", "metrics": {}, "created_by": "tests/ds_testing/models.py"},
    }
    if classes is not None:
        result["output"]["classes"] = _class_list(classes)
    for key, value in sections.items():
        if key in ("input", "output", "training"):
            result[key].update(value)
        elif key in _INPUT_KEYS:
            result["input"][key] = value
        elif key in _OUTPUT_KEYS:
            result["output"][key] = _class_list(value) if key == "classes" else value
        else:
            result[key] = value
    return result


def _norm(normalization: dict[str, Any] | None) -> dict[str, Any]:
    return normalization if normalization is not None else {"method": "none"}


# ---------------------------------------------------------------------------------------------- saving

def save(model: onnx.ModelProto, path: "str | Path", card_dict: dict[str, Any] | None,
         extra_metadata: dict[str, str] | None = None) -> Path:
    """Check the model, store the card (JSON) in metadata_props ``deepstrata`` plus any extra keys, write it."""
    onnx.checker.check_model(model, full_check=True)
    del model.metadata_props[:]
    entries = dict(extra_metadata or {})
    if card_dict is not None:
        entries[CARD_KEY] = json.dumps(card_dict)
    onnx.helper.set_model_props(model, entries)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def reference_run(model_path: "str | Path", array_chw: np.ndarray) -> np.ndarray:
    """Run the model on one whole image (C, H, W) with onnxruntime; the raw output without its batch axis."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    batch = np.ascontiguousarray(np.asarray(array_chw, dtype=np.float32)[None])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0][0])


# ---------------------------------------------------------------------------------------------- segmenters

def _segmentation_graph(bands: int, out_channels: int, layers: int, seed: int, pads: int = 1,
                        softmax: bool = False, height: int | str = "H", width: int | str = "W",
                        hidden: int = HIDDEN) -> onnx.ModelProto:
    if layers < 1:
        raise ValueError("layers must be at least 1")
    rng = np.random.default_rng(seed)
    channels = [bands] + [hidden] * (layers - 1) + [out_channels]
    nodes, inits, last = conv_stack(rng, INPUT, channels, pads)
    if softmax:
        nodes.append(helper.make_node("Softmax", [last], [OUTPUT], axis=1))
    else:
        nodes.append(helper.make_node("Identity", [last], [OUTPUT]))
    shrink = 0 if pads else layers
    out_h = height - 2 * shrink if isinstance(height, int) else f"{height}_out" if shrink else height
    out_w = width - 2 * shrink if isinstance(width, int) else f"{width}_out" if shrink else width
    return make_model(nodes, [tensor_info(INPUT, bands, height, width)],
                      [tensor_info(OUTPUT, out_channels, out_h, out_w)], inits)


def conv_segmenter(path: "str | Path", bands: int = 3, classes: int = 4, layers: int = 2, seed: int = 0,
                   normalization: dict[str, Any] | None = None, tile_size: int = 64, margin: int | None = None,
                   activation: str = "softmax", hidden: int = HIDDEN, **card_overrides: Any) -> Path:
    """`layers` 3x3 convs (pads 1, `hidden` channels between): raw logits (N, classes, H, W).

    The receptive radius is `layers`, which is the default card margin.
    """
    model = _segmentation_graph(bands, classes, layers, seed, hidden=hidden)
    meta = card("segmentation", bands, classes, activation=activation, normalization=_norm(normalization),
                tile_size=tile_size, margin=layers if margin is None else margin, **card_overrides)
    return save(model, path, meta)


def benchmark_segmenter(path: "str | Path", tile_size: int = 256, hidden: int = 16) -> Path:
    """The engine benchmarks' tiny model (benchmarks/bench_engine.py, bench_gpu.py): 3x3 convs 3 -> `hidden` ->
    `hidden` -> 4, dynamic dims, margin 3, inputs scaled by 1e-4 (UInt16 reflectance-like values)."""
    return conv_segmenter(path, bands=3, classes=4, layers=3, hidden=hidden, tile_size=tile_size, margin=3,
                          normalization={"method": "scale", "factor": 1.0e-4}, name="benchmark segmenter")


def probability_segmenter(path: "str | Path", bands: int = 3, classes: int = 4, layers: int = 2, seed: int = 0,
                          normalization: dict[str, Any] | None = None, tile_size: int = 64,
                          margin: int | None = None, **card_overrides: Any) -> Path:
    """Like conv_segmenter with a Softmax inside the graph: outputs probabilities, card activation ``none``."""
    model = _segmentation_graph(bands, classes, layers, seed, softmax=True)
    meta = card("segmentation", bands, classes, activation="none", normalization=_norm(normalization),
                tile_size=tile_size, margin=layers if margin is None else margin, **card_overrides)
    return save(model, path, meta)


def binary_segmenter(path: "str | Path", bands: int = 1, layers: int = 1, seed: int = 0,
                     normalization: dict[str, Any] | None = None, tile_size: int = 64,
                     margin: int | None = None, **card_overrides: Any) -> Path:
    """One output channel of logits, card activation ``sigmoid`` with two classes (background, foreground)."""
    model = _segmentation_graph(bands, 1, layers, seed)
    meta = card("segmentation", bands, ["background", "foreground"], activation="sigmoid",
                normalization=_norm(normalization), tile_size=tile_size,
                margin=layers if margin is None else margin, **card_overrides)
    return save(model, path, meta)


def cropping_segmenter(path: "str | Path", bands: int = 1, classes: int = 3, crop: int = 4, seed: int = 0,
                       tile_size: int = 64, **card_overrides: Any) -> Path:
    """`crop` valid (pads 0) 3x3 convs: the output is `crop` pixels smaller on each side; card crop, margin 0."""
    model = _segmentation_graph(bands, classes, crop, seed, pads=0)
    meta = card("segmentation", bands, classes, activation="softmax", tile_size=tile_size, margin=0, crop=crop,
                **card_overrides)
    return save(model, path, meta)


def fixed_size_segmenter(path: "str | Path", size: int = 32, bands: int = 1, classes: int = 2,
                         seed: int = 0, **card_overrides: Any) -> Path:
    """One 3x3 conv (pads 1) on a static size x size input (dynamic batch); card tile_size = size, margin 1."""
    model = _segmentation_graph(bands, classes, 1, seed, height=size, width=size)
    meta = card("segmentation", bands, classes, activation="softmax", tile_size=size, margin=1, **card_overrides)
    return save(model, path, meta)


def deepness_segmenter(path: "str | Path", bands: int = 3, classes: int = 2, seed: int = 0) -> Path:
    """A probability segmenter with Deepness metadata keys and no DeepStrata card."""
    model = _segmentation_graph(bands, classes, 2, seed, softmax=True)
    names = {str(i): n for i, n in enumerate(["background", "building"] + [f"class_{i}" for i in range(2, classes)])}
    meta = {"model_type": "segmentor", "class_names": json.dumps(names), "tile_size": "64",
            "tiles_overlap": "10", "standardization_mean": json.dumps([0.0] * bands),
            "standardization_std": json.dumps([1.0] * bands), "resolution": "50"}
    return save(model, path, None, extra_metadata=meta)


# ---------------------------------------------------------------------------------------------- other tasks

def patch_classifier(path: "str | Path", bands: int = 3, classes: int = 3, seed: int = 0, tile_size: int = 32,
                     sharpness: float = 10.0, **card_overrides: Any) -> Path:
    """(N, classes) logits = `sharpness` x the mean of band (k mod bands), from a 3x3 box conv, GAP and Flatten.

    With classes == bands the predicted class of a tile is the band with the highest mean, so tests can
    predict it; classes beyond the band count get seeded random band mixtures.
    """
    rng = np.random.default_rng(seed)
    weight = np.zeros((classes, bands, 3, 3), dtype=np.float32)
    for k in range(classes):
        if k < bands:
            weight[k, k] = sharpness / 9.0
        else:
            weight[k] = (rng.random(bands) * sharpness / 9.0)[:, None, None]
    node, inits = conv("box", INPUT, weight, None, pads=1)
    nodes = [node, helper.make_node("GlobalAveragePool", ["box"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], [OUTPUT], axis=1)]
    out = helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["N", classes])
    model = make_model(nodes, [tensor_info(INPUT, bands)], [out], inits)
    meta = card("classification", bands, classes, activation="softmax", tile_size=tile_size, margin=0,
                **card_overrides)
    return save(model, path, meta)


def regressor(path: "str | Path", bands: int = 1, outputs: int = 1, radius: int = 1, tile_size: int = 64,
              **card_overrides: Any) -> Path:
    """Output o = the (2 radius + 1)^2 box mean (zero padded) of band (o mod bands); margin = radius."""
    k = 2 * radius + 1
    weight = np.zeros((outputs, bands, k, k), dtype=np.float32)
    for o in range(outputs):
        weight[o, o % bands] = 1.0 / (k * k)
    node, inits = conv("box", INPUT, weight, None, pads=radius)
    model = make_model([node, helper.make_node("Identity", ["box"], [OUTPUT])], [tensor_info(INPUT, bands)],
                       [tensor_info(OUTPUT, outputs)], inits)
    meta = card("regression", bands, activation="none", tile_size=tile_size, margin=radius,
                names=[f"mean_{o + 1}" for o in range(outputs)], **card_overrides)
    return save(model, path, meta)


def _identity_graph(bands: int) -> onnx.ModelProto:
    return make_model([helper.make_node("Identity", [INPUT], [OUTPUT])], [tensor_info(INPUT, bands)],
                      [tensor_info(OUTPUT, bands)])


def identity_regressor(path: "str | Path", bands: int = 1, tile_size: int = 64, **card_overrides: Any) -> Path:
    """Output = input, margin 0: checks normalisation, nodata and georeferencing exactly."""
    meta = card("regression", bands, activation="none", tile_size=tile_size, margin=0,
                names=[f"b{i + 1}" for i in range(bands)], **card_overrides)
    return save(_identity_graph(bands), path, meta)


OLI_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7")


def oli_bands() -> list[dict[str, str]]:
    """The input bands of DeepStrata's multispectral models: B2-B7 in unit DN (Landsat 8/9 OLI Level-1)."""
    return [{"name": name, "unit": "DN"} for name in OLI_BANDS]


def oli_identity(path: "str | Path", tile_size: int = 64, **card_overrides: Any) -> Path:
    """identity_regressor with the input of DeepStrata's multispectral models (oli_bands(), kind multispectral):
    output = input, so a run shows exactly what the model was fed."""
    overrides = {"kind": "multispectral", **card_overrides}
    overrides["input"] = {"bands": oli_bands(), **card_overrides.get("input", {})}
    return identity_regressor(path, bands=len(OLI_BANDS), tile_size=tile_size, **overrides)


def _smoothing_graph(bands: int) -> onnx.ModelProto:
    """Per-band 3x3 mean over the valid neighbours: conv(x) / conv(ones), so edges are not biased to 0."""
    weight = np.ones((bands, 1, 3, 3), dtype=np.float32)
    sum_x, inits = conv("sum_x", INPUT, weight, None, pads=1, group=bands)
    nodes = [sum_x,
             helper.make_node("Mul", [INPUT, "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "one"], ["ones"])]
    count, count_w = conv("count", "ones", weight, None, pads=1, group=bands)
    nodes += [count, helper.make_node("Div", ["sum_x", "count"], [OUTPUT])]
    inits += count_w + [const("zero", np.array(0.0)), const("one", np.array(1.0))]
    return make_model(nodes, [tensor_info(INPUT, bands)], [tensor_info(OUTPUT, bands)], inits)


def autoencoder(path: "str | Path", bands: int = 3, seed: int = 0, tile_size: int = 64,
                threshold: float = 3.0, **card_overrides: Any) -> Path:
    """Anomaly model: 'reconstructs' each band by its 3x3 mean, so smooth areas score low and spikes high.

    The calibration (median, MAD of the per-pixel MSE) is measured on `smooth_random` data of `seed`.
    """
    from .rasters import smooth_random

    model = _smoothing_graph(bands)
    sample = smooth_random(bands, 128, 128, seed)
    scratch = save(model, Path(path).with_suffix(".calibrating.onnx"), None)
    try:
        error = ((reference_run(scratch, sample) - sample) ** 2).mean(axis=0)
    finally:
        scratch.unlink()
    median = float(np.median(error))
    mad = float(np.median(np.abs(error - median)))
    anomaly = {"error": "mse", "calibration": {"median": median, "mad": max(mad, 1e-12)}, "threshold": threshold}
    meta = card("anomaly", bands, activation="none", tile_size=tile_size, margin=1, anomaly=anomaly,
                **card_overrides)
    return save(model, path, meta)


# ---------------------------------------------------------------------------------------------- bad files

def no_card_model(path: "str | Path", bands: int = 1) -> Path:
    """A valid ONNX model (identity) with no metadata at all."""
    return save(_identity_graph(bands), path, None)


def write_corrupt_model(path: "str | Path") -> Path:
    """The first half of a real model's bytes: named .onnx, but not loadable."""
    data = _identity_graph(1).SerializeToString()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def write_not_onnx(path: "str | Path") -> Path:
    """A text file, whatever its name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("This is not an ONNX model.\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- faulty models

def non_finite_regressor(path: "str | Path", value: str = "nan", below: float | None = None,
                         tile_size: int = 64) -> Path:
    """A 1-band regressor (margin 0) that returns NaN (`value` "nan": the square root of a negative number) or
    infinity ("inf": a division by zero, or the log of 0) for every pixel, or, with `below`, only where the input is
    below it (elsewhere sqrt(x - below), or log(x - below)). The card normalises nothing, so `below` is in the
    raster's units."""
    if value not in ("nan", "inf"):
        raise ValueError(f"value must be 'nan' or 'inf', not {value!r}")
    inits = [const("one", np.array(1.0))] if below is None else []
    if below is None:
        nodes = ([helper.make_node("Abs", [INPUT], ["abs"]), helper.make_node("Neg", ["abs"], ["neg"]),
                  helper.make_node("Sub", ["neg", "one"], ["negative"]),
                  helper.make_node("Sqrt", ["negative"], [OUTPUT])]
                 if value == "nan" else
                 [helper.make_node("Mul", [INPUT, "zero"], ["zeros"]),
                  helper.make_node("Div", ["one", "zeros"], [OUTPUT])])
        inits += [const("zero", np.array(0.0))] if value == "inf" else []
    else:
        inits.append(const("below", np.array(below)))
        nodes = [helper.make_node("Sub", [INPUT, "below"], ["shifted"])]
        nodes += ([helper.make_node("Sqrt", ["shifted"], [OUTPUT])] if value == "nan" else
                  [helper.make_node("Relu", ["shifted"], ["positive"]),
                   helper.make_node("Log", ["positive"], [OUTPUT])])
    model = make_model(nodes, [tensor_info(INPUT, 1)], [tensor_info(OUTPUT, 1)], inits)
    meta = card("regression", 1, activation="none", tile_size=tile_size, margin=0, names=[value])
    return save(model, path, meta)


def no_shape_model(path: "str | Path") -> Path:
    """An identity model whose input and output declare no shape at all (no static rank), with a valid card."""
    x = helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, None)
    y = helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, None)
    model = make_model([helper.make_node("Identity", [INPUT], [OUTPUT])], [x], [y])
    onnx.helper.set_model_props(model, {CARD_KEY: json.dumps(card("regression", 1, activation="none", margin=0,
                                                                    names=["b1"]))})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))  # not save(): the checker insists on a shape, which is what this model lacks
    return path


def external_data_regressor(path: "str | Path", location: str = "weights.bin", factor: float = 2.0) -> Path:
    """A 1-band regressor, output = `factor` x input (a 1x1 conv, margin 0), whose weight is stored as external
    data in `location`, relative to the model's folder, and written there, wherever that is (onnx.save refuses a
    location with '..': the file is saved beside the model, then moved and its location rewritten)."""
    node, inits = conv("scale", INPUT, np.full((1, 1, 1, 1), factor, dtype=np.float32), None, pads=0)
    model = make_model([node, helper.make_node("Identity", ["scale"], [OUTPUT])], [tensor_info(INPUT, 1)],
                       [tensor_info(OUTPUT, 1)], inits)
    onnx.checker.check_model(model, full_check=True)
    onnx.helper.set_model_props(model, {CARD_KEY: json.dumps(card("regression", 1, activation="none", margin=0,
                                                                    names=["scaled"]))})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = Path(location).name
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=name,
              size_threshold=0)
    if location != name:
        saved = onnx.load(str(path), load_external_data=False)
        for tensor in saved.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(saved, str(path))
        target = path.parent / location
        target.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / name).replace(target)
    return path


def deepness_typed_model(path: "str | Path", model_type: str, bands: int = 3) -> Path:
    """A per-pixel graph with Deepness metadata of any `model_type` ("Detector", "Superresolution"...), no card."""
    model = _segmentation_graph(bands, 2, 1, 0, softmax=True)
    meta = {"model_type": json.dumps(model_type), "class_names": json.dumps({"0": "background", "1": "object"}),
            "tile_size": "64", "resolution": "50"}
    return save(model, path, None, extra_metadata=meta)
