"""Deepness's own test models (../shared/peers/deepness/test/data/dummy_model) and what DeepStrata makes of each:
the task a user gives where the model has no metadata, and the classes (or band names) per graph output."""
from __future__ import annotations

from pathlib import Path

PEER = Path(__file__).resolve().parents[3] / "shared" / "peers" / "deepness" / "test" / "data"
MODELS = PEER / "dummy_model"

# model -> (task the user gives where the model has no metadata, expected classes per output or band names)
CASES = {
    "dummy_regression_models/dummy_regression_model.onnx": (None, [["_background"]]),
    "dummy_regression_models/dummy_regression_model_batched.onnx": (None, [["_background"]]),
    "dummy_regression_models/one_output_sigmoid_bsx1x512x512.onnx": (None, [["background", "Happiness"]]),
    "dummy_regression_models/one_output_sigmoid_bsx512x512.onnx": ("regression", [["output"]]),
    "dummy_regression_models/two_outputs_sigmoid_bsx1x512x512.onnx": (None, [["background", "Luck"],
                                                                             ["background", "Failure"]]),
    "dummy_regression_models/two_outputs_sigmoid_bsx512x512.onnx": ("regression", [["output"], ["output2"]]),
    "dummy_segmentation_models/different_output_size_512_to_484.onnx": ("segmentation",
                                                                        [["channel_0", "channel_1"]]),
    "dummy_segmentation_models/dummy_model.onnx": ("segmentation", [["channel_0", "channel_1", "channel_2"]]),
    "dummy_segmentation_models/one_output_sigmoid_bsx1x512x512.onnx": (None, [["background", "Coffee"]]),
    "dummy_segmentation_models/one_output_sigmoid_bsx512x512.onnx": (None, [["background", "Coffee"]]),
    "dummy_segmentation_models/one_output_softmax_bsx2x512x512.onnx": ("segmentation",
                                                                       [["channel_0", "channel_1"]]),
    "dummy_segmentation_models/two_outputs_sigmoid_bsx1x512x512.onnx": (None, [["background", "Coffee"],
                                                                               ["background", "Juice"]]),
    "dummy_segmentation_models/two_outputs_sigmoid_bsx512x512.onnx": ("segmentation",
                                                                      [["channel_0", "channel_1"]] * 2),
    "dummy_segmentation_models/two_outputs_softmax_bsx2x512x512.onnx": (None, [["Coffee", "Tea"], ["Juice", "Beer"]]),
}
