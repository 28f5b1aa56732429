"""Card parsing: defaults, every documented field, Deepness metadata."""
from __future__ import annotations

import json

import pytest

from deepstrata.inference import CardError, parse_card
from deepstrata.inference.engine.deepness import Graph, card_from_deepness
from ds_testing import models


def test_the_documented_example_parses_with_its_values() -> None:
    text = open(__import__("pathlib").Path(__file__).resolve().parents[2] / "docs" / "model-card.md").read()
    example = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    card = parse_card(example)
    assert card.task == "segmentation" and card.input.kind == "dem"
    assert card.input.normalization.mean == (0.0,) and card.input.normalization.std == (25.0,)
    assert (card.input.tile_size, card.input.margin, card.input.pixel_size_m) == (256, 16, 30.0)
    assert [(c.value, c.name, c.color) for c in card.output.classes] == [(1, "flat", "#dcdcdc"), (2, "peak", "#380000")]
    assert card.training["metrics"]["macro_f1"] == 0.84
    assert card.to_dict() == example


def test_defaults() -> None:
    card = parse_card(models.card("regression", ["elevation"]))
    assert card.input.normalization.method == "none" and card.output.crop == 0 and card.input.size_multiple == 1
    assert card.output.activation == "none" and card.output.anomaly is None


def test_single_normalisation_value_applies_to_every_band() -> None:
    card = parse_card(models.card("regression", 3, normalization={"method": "zscore", "mean": 10, "std": [2]}))
    assert card.input.normalization.mean == (10.0, 10.0, 10.0) and card.input.normalization.std == (2.0,) * 3


@pytest.mark.parametrize("edit,message", [
    (lambda c: c["output"].update(anomaly={"error": "mse", "calibration": {"median": 1}}),
     "output.anomaly.calibration.mad: is required but missing"),
    (lambda c: c["input"].update(margin=-1), "input.margin: must be at least 0, got -1"),
    (lambda c: c["input"]["normalization"].update(method="minmax", min=[5], max=[5]),
     "input.normalization.max: must be greater than min"),
    (lambda c: c["input"].update(kind="lidar"), "input.kind: 'lidar' is not one of dem, multispectral"),
    (lambda c: c["input"].update(pixel_size_m=0), "input.pixel_size_m: must be greater than 0"),
    (lambda c: c.update(name=5), "name: must be a string"),
])
def test_anomaly_and_number_fields_are_checked(edit, message: str) -> None:
    card = models.card("anomaly", 3, output={"anomaly": {"error": "mse", "calibration": {"median": 1, "mad": 1}}})
    edit(card)
    with pytest.raises(CardError, match=message.replace("(", r"\(")):
        parse_card(card)


def test_classes_need_at_least_two_and_values_up_to_65535() -> None:
    with pytest.raises(CardError, match="output.classes: a segmentation model needs at least 2 classes"):
        parse_card(models.card("segmentation", 1, 1))
    card = models.card("segmentation", 1, 2)
    card["output"]["classes"][0]["value"] = 70000
    with pytest.raises(CardError, match=r"output.classes\[0\].value: must be at most 65535"):
        parse_card(card)
    card["output"]["classes"][0]["value"] = 0
    with pytest.raises(CardError, match=r"output.classes\[0\].value: must be at least 1"):
        parse_card(card)


def test_deepness_metadata_becomes_an_equivalent_card() -> None:
    meta = {"model_type": "segmentor", "class_names": json.dumps({"0": "background", "1": "road"}),
            "tile_size": "256", "tiles_overlap": "10", "standardization_mean": "[0.5, 0.5, 0.5]",
            "standardization_std": "[0.25, 0.25, 0.25]", "resolution": "20"}
    graph = Graph(3, None, [["N", 2, "H", "W"]], ["logits"])
    card = parse_card(card_from_deepness(meta, graph, "roads.onnx"))
    assert card.name == "roads"
    assert card.task == "segmentation" and [c.name for c in card.output.classes] == ["background", "road"]
    assert card.output.threshold == 0.5 and card.output.median_filter == 9  # Deepness's own defaults
    assert card.input.normalization.mean == (127.5,) * 3 and card.input.normalization.std == (63.75,) * 3
    assert card.input.tile_size == 256 and card.input.margin == 12 and card.input.pixel_size_m == 0.2


def test_deepness_detectors_are_refused_clearly() -> None:
    graph = Graph(3, 640, [[1, 84, 8400]], ["output0"])
    with pytest.raises(CardError, match="Deepness metadata: model_type: 'Detector' is a Deepness object detection "
                                        "model; DeepStrata .* does not support object detection yet"):
        card_from_deepness({"model_type": json.dumps("Detector")}, graph, "yolo.onnx")
