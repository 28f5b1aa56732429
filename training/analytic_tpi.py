"""An analytic slope-position landform classifier (TPI after Weiss 2001), written as a tiny ONNX graph.

It is the plugin's default DEM model until trained CNNs exist (issue #3). It is NOT a trained network: every
weight is a fixed kernel chosen by hand. Run ``python -m training.analytic_tpi --output
resources/models/landforms_tpi.onnx`` to rebuild it.

The graph, for a (N, 1, H, W) elevation tile in metres at 30 m:

1. One valid (pads 0) (2R+1)^2 convolution gives three channels over the same (H-2R, W-2R) window:
   the standardised TPI ``t = (z - annulus mean) / scale`` and the central-difference gradients dz/dx, dz/dy.
2. An ordinal soft classification of ``t`` with Weiss's breaks at -1, -0.5, +0.5 and +1 standard units:
   with ``c_i = sigmoid(k (t - b_i))``, the five bins are ``1 - c_1, c_1 - c_2, ..., c_4`` (they sum to 1).
3. The middle bin is split into flat and middle slope by a soft 5 degree slope threshold.

The output is (N, 6, H-2R, W-2R) class probabilities: valley, lower slope, flat, middle slope, upper slope,
ridge. Absolute elevation cancels, so the card asks for no normalisation.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RADIUS = 8            # outer annulus radius, pixels (240 m at 30 m)
INNER = 2             # inner annulus radius, pixels (60 m): the centre's own hillslope is left out
SCALE_M = 20.0        # metres of TPI per standard unit
PIXEL_M = 30.0
BREAKS = (-1.0, -0.5, 0.5, 1.0)
SHARPNESS = 8.0       # logistic slope per standard unit of TPI
FLAT_DEG = 5.0
SLOPE_SHARPNESS = 1.5  # logistic slope per degree
COMMAND = "python -m training.analytic_tpi --output resources/models/landforms_tpi.onnx"
CLASSES = (
    ("valley", "#2166ac", "TPI <= -1 standard unit: valley bottoms and incised channels"),
    ("lower slope", "#67a9cf", "-1 < TPI <= -0.5"),
    ("flat", "#e6d7a3", "-0.5 < TPI < 0.5 and slope <= 5 degrees"),
    ("middle slope", "#a1d76a", "-0.5 < TPI < 0.5 and slope > 5 degrees"),
    ("upper slope", "#ef8a62", "0.5 <= TPI < 1"),
    ("ridge", "#b2182b", "TPI >= 1 standard unit: ridges and hilltops"),
)


def annulus(radius: int, inner: int) -> np.ndarray:
    """A (2R+1)^2 kernel averaging the cells whose centres lie between `inner` and `radius` pixels away."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    distance = np.hypot(yy, xx)
    ring = (distance <= radius + 0.5) & (distance >= inner + 0.5)
    return ring / ring.sum()


def feature_kernels(radius: int = RADIUS, inner: int = INNER, scale: float = SCALE_M,
                    pixel: float = PIXEL_M) -> np.ndarray:
    """(3, 1, 2R+1, 2R+1) weights: standardised TPI, dz/dx (east), dz/dy (north; rows run south)."""
    size = 2 * radius + 1
    weights = np.zeros((3, 1, size, size), dtype=np.float64)
    weights[0, 0] = -annulus(radius, inner) / scale
    weights[0, 0, radius, radius] += 1.0 / scale
    weights[1, 0, radius, radius + 1], weights[1, 0, radius, radius - 1] = 0.5 / pixel, -0.5 / pixel
    weights[2, 0, radius - 1, radius], weights[2, 0, radius + 1, radius] = 0.5 / pixel, -0.5 / pixel
    return weights.astype(np.float32)


def _const(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _nodes() -> list[onnx.NodeProto]:
    n = helper.make_node
    return [
        n("Conv", ["elevation", "kernels"], ["features"], kernel_shape=[2 * RADIUS + 1] * 2, pads=[0] * 4),
        n("Split", ["features", "split_1_2"], ["tpi", "gradient"], axis=1),
        # ordinal bins of the standardised TPI
        n("Mul", ["tpi", "sharpness"], ["tpi_k"]),
        n("Sub", ["tpi_k", "breaks_k"], ["cum_logits"]),
        n("Sigmoid", ["cum_logits"], ["cum"]),
        n("Mul", ["tpi", "zero"], ["zeros"]),
        n("Add", ["zeros", "one"], ["ones"]),
        n("Concat", ["ones", "cum"], ["upper_edge"], axis=1),
        n("Concat", ["cum", "zeros"], ["lower_edge"], axis=1),
        n("Sub", ["upper_edge", "lower_edge"], ["bins_raw"]),
        n("Relu", ["bins_raw"], ["bins"]),  # rounding can leave -1e-7 where two sigmoids saturate
        n("Split", ["bins", "split_2_1_2"], ["low_bins", "middle", "high_bins"], axis=1),
        # slope in degrees, and the soft flat / middle slope split of the middle bin
        n("Mul", ["gradient", "gradient"], ["gradient_sq"]),
        n("ReduceSum", ["gradient_sq", "axis_1"], ["tan_sq"], keepdims=1),
        n("Sqrt", ["tan_sq"], ["tan_slope"]),
        n("Atan", ["tan_slope"], ["slope_rad"]),
        n("Mul", ["slope_rad", "slope_gain"], ["slope_k"]),
        n("Sub", ["slope_k", "flat_k"], ["steep_logit"]),
        n("Sigmoid", ["steep_logit"], ["steep"]),
        n("Mul", ["middle", "steep"], ["middle_slope"]),
        n("Sub", ["middle", "middle_slope"], ["flat"]),
        n("Concat", ["low_bins", "flat", "middle_slope", "high_bins"], ["probabilities"], axis=1),
    ]


def _initializers() -> list[onnx.TensorProto]:
    breaks = np.asarray(BREAKS).reshape(1, len(BREAKS), 1, 1) * SHARPNESS
    return [
        _const("kernels", feature_kernels()),
        _const("split_1_2", [1, 2], np.int64),
        _const("split_2_1_2", [2, 1, 2], np.int64),
        _const("axis_1", [1], np.int64),
        _const("sharpness", SHARPNESS),
        _const("breaks_k", breaks),
        _const("zero", 0.0),
        _const("one", 1.0),
        _const("slope_gain", SLOPE_SHARPNESS * 180.0 / math.pi),
        _const("flat_k", SLOPE_SHARPNESS * FLAT_DEG),
    ]


def build_model() -> onnx.ModelProto:
    """The graph (opset 17, dynamic N, H, W), without metadata."""
    inputs = [helper.make_tensor_value_info("elevation", TensorProto.FLOAT, ["N", 1, "H", "W"])]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                             ["N", len(CLASSES), "H_valid", "W_valid"])]
    graph = helper.make_graph(_nodes(), "landforms_tpi", inputs, outputs, _initializers())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="deepstrata training/analytic_tpi.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def build_card() -> dict[str, Any]:
    """The model card (docs/model-card.md): it says plainly that this is an analytic classifier."""
    return {
        "schema": "deepstrata.card/1",
        "name": "Landforms from DEM (TPI slope position, 6 classes)",
        "version": "1.0.0",
        "task": "segmentation",
        "description": (
            f"Analytic slope-position classifier after Weiss (2001), NOT a trained CNN: the topographic position "
            f"index (elevation minus the mean of a {INNER}-{RADIUS} pixel annulus, {INNER * PIXEL_M:g}-"
            f"{RADIUS * PIXEL_M:g} m) divided by a fixed {SCALE_M:g} m (a typical TPI standard deviation at this "
            f"radius in steep 30 m mountain DEMs), split at -1, -0.5, 0.5 and 1, with flat and middle slope "
            f"separated at {FLAT_DEG:g} degrees. Soft (logistic) class boundaries give the confidence. "
            f"Use a 30 m DEM in metres; in gentle terrain most cells come out flat or middle slope."),
        "input": {
            "kind": "dem",
            "bands": [{"name": "elevation", "unit": "m", "description": "Elevation in metres"}],
            "dtype": "float32",
            "normalization": {"method": "none"},
            "pixel_size_m": PIXEL_M,
            "tile_size": 256,
            "margin": 0,
        },
        "output": {
            "activation": "none",
            "crop": RADIUS,
            "classes": [{"value": i + 1, "name": name, "color": color, "description": text}
                        for i, (name, color, text) in enumerate(CLASSES)],
        },
        "training": {
            "data": "none: fixed analytic kernels, no training data",
            "method": "Weiss, A. (2001). Topographic Position and Landforms Analysis. ESRI User Conference poster.",
            "parameters": {"annulus_px": [INNER, RADIUS], "tpi_scale_m": SCALE_M, "breaks_sd": list(BREAKS),
                           "flat_slope_deg": FLAT_DEG, "pixel_size_m": PIXEL_M},
            "metrics": {},
            "created_by": "training/analytic_tpi.py",
            "command": COMMAND,
        },
    }


def write(path: Path) -> Path:
    model = build_model()
    helper.set_model_props(model, {"deepstrata": json.dumps(build_card())})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("resources/models/landforms_tpi.onnx"))
    args = parser.parse_args(argv)
    path = write(args.output)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
