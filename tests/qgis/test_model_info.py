"""deepstrata:modelinfo through processing.run: outputs read from the card, and the HTML report."""
from __future__ import annotations

import pytest
from qgis.core import QgsProcessingException

from qgis_support import DEM_CLASSES, DEM_MODEL_NAME, RecordingFeedback, named_classes

ALG = "deepstrata:modelinfo"


def run(parameters: dict, feedback=None) -> dict:
    import processing

    return processing.run(ALG, parameters, feedback=feedback)


def test_outputs_describe_the_card(ds_provider, dem_segmenter):
    feedback = RecordingFeedback()
    result = run({"MODEL": str(dem_segmenter)}, feedback)

    assert result["NAME"] == DEM_MODEL_NAME
    assert result["TASK"] == "segmentation"
    assert result["BANDS"] == "elevation"
    assert result["BAND_COUNT"] == 1
    assert result["CLASSES"] == "1: flat, 2: slope, 3: ridge, 4: valley"
    assert result["PROVIDERS"].split(", ")[-1] == "CPUExecutionProvider"
    assert result["OUTPUT_HTML"] is None
    report = result["REPORT"]
    assert report.splitlines()[0].startswith(DEM_MODEL_NAME)
    assert "Task: segmentation" in report and "Normalisation: zscore" in report
    assert "  4: valley" in report
    assert feedback.infos[:len(report.splitlines())] == report.splitlines()  # the log shows the whole report


def test_rgb_model_lists_its_bands(ds_provider, rgb_segmenter):
    result = run({"MODEL": str(rgb_segmenter)})
    assert result["BANDS"] == "b1, b2, b3"
    assert result["BAND_COUNT"] == 3
    assert result["CLASSES"] == "1: class_1, 2: class_2, 3: class_3"


def test_html_report(ds_provider, dem_segmenter, tmp_path):
    target = tmp_path / "card.html"
    result = run({"MODEL": str(dem_segmenter), "OUTPUT_HTML": str(target)})

    assert result["OUTPUT_HTML"] == str(target)
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert f"<title>{DEM_MODEL_NAME}</title>" in page
    for entry in named_classes(DEM_CLASSES):
        assert f"background-color:{entry['color']}" in page and f"<td>{entry['name']}</td>" in page
    assert "&quot;schema&quot;: &quot;deepstrata.card/1&quot;" in page  # the card JSON, escaped


def test_missing_model(ds_provider, tmp_path):
    with pytest.raises(QgsProcessingException, match="Model file not found"):
        run({"MODEL": str(tmp_path / "gone.onnx")})
