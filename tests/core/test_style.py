"""The QML styles the engine writes: ramps whose legend says what the values mean (issue #16, item 2)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from deepstrata.inference.engine.staging import Staging
from deepstrata.inference.engine.style import CONFIDENCE_LABELS, anomaly_labels, pseudocolor_qml
from deepstrata.inference.workflows.anomaly_outputs import style_score


def items(qml: str) -> list[tuple[str, str]]:
    return [(i.get("value"), i.get("label")) for i in ET.fromstring(qml).iter("item")]


def test_labelled_ramp_lists_its_stops_with_the_threshold():
    qml = pseudocolor_qml(0.0, 13.0, "anomaly", labels=anomaly_labels(6.5))
    assert items(qml) == [("0", "0 ordinary"), ("6.5", "6.5 threshold: anomalous from here"), ("9.75", "9.75"),
                          ("13", "13 and above")]
    legend = ET.fromstring(qml).find(".//colorrampshader/rampLegendSettings")
    assert legend is not None and legend.get("useContinuousLegend") == "0"  # the labels, not a bare gradient


def test_a_plain_ramp_keeps_numbers_and_the_continuous_legend():
    qml = pseudocolor_qml(0.0, 1.0, "confidence")
    assert items(qml) == [("0", "0"), ("0.5", "0.5"), ("1", "1")]
    assert ET.fromstring(qml).find(".//rampLegendSettings") is None
    assert [label for _, label in items(pseudocolor_qml(0.0, 1.0, "confidence", labels=CONFIDENCE_LABELS))] == \
        ["0 uncertain", "0.5", "1 certain"]


def test_labels_must_match_the_stops():
    with pytest.raises(ValueError, match="the 'confidence' ramp has 3 stops, but 2 labels"):
        pseudocolor_qml(0.0, 1.0, "confidence", labels=["low", "high"])


def test_the_score_style_follows_the_threshold_of_the_run(tmp_path):
    style = tmp_path / "score.qml"
    style.write_text(pseudocolor_qml(0.0, 13.0, "anomaly", labels=anomaly_labels(6.5)))
    with Staging() as stage:
        style_score(str(style), 4.0, stage)
        assert "4 threshold" not in style.read_text()  # committed with the run, not before
    assert items(style.read_text())[1] == ("4", "4 threshold: anomalous from here")
