"""The bundled model by name, not a machine path (issue #16, item 4): Run model's and Model info's MODEL is empty by
default and says which bundled model that runs; an explicit path still runs; a .model3 or script saved with the old
default (the bundled model's path, here or on another machine) still runs. Model info declares no HTML output (no
"HTML output has been generated" after a run that wrote none)."""
from __future__ import annotations

from pathlib import Path

import pytest
from osgeo import gdal
from qgis.core import (QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                       QgsProcessingModelChildParameterSource, QgsProcessingModelOutput, QgsProcessingModelParameter,
                       QgsProcessingOutputFile, QgsProcessingParameterRasterLayer)

from qgis_support import DEM_MODEL_NAME, RecordingFeedback

BUNDLED = "Landforms from DEM"
# where a dialog filled the old default in: the bundled model's path in another user's profile
ELSEWHERE = ("C:\\Users\\ana\\AppData\\Roaming\\QGIS\\QGIS3\\profiles\\default\\python\\plugins\\deepstrata\\"
             "resources\\models\\landforms_geomorphon.onnx")


@pytest.fixture
def small_dem(dem, tmp_path) -> Path:
    """64 x 64 cells of the DEM: enough for the bundled model, quick to run."""
    path = tmp_path / "small_dem.tif"
    gdal.Translate(str(path), str(dem), srcWin=[100, 100, 64, 64])
    return path


def algorithm(alg_id: str):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().algorithmById(alg_id)


@pytest.mark.parametrize("alg_id", ["deepstrata:runmodel", "deepstrata:modelinfo"])
def test_model_parameter_names_the_bundled_model_and_holds_no_path(ds_provider, alg_id):
    from deepstrata.support import DEFAULT_MODEL

    parameter = algorithm(alg_id).parameterDefinition("MODEL")
    assert parameter.defaultValue() in (None, "")
    assert parameter.description() == f"ONNX model (empty: the bundled '{BUNDLED}')"
    assert f"'{BUNDLED}' ({DEFAULT_MODEL}" in parameter.help()
    assert parameter.flags() & parameter.FlagOptional
    assert "/" not in parameter.asPythonString() and "\\" not in parameter.asPythonString()


def test_the_name_is_the_bundled_card_s(ds_provider):
    from deepstrata.inference import load_model
    from deepstrata.support import DEFAULT_MODEL_NAME, default_model

    assert default_model().endswith("landforms_geomorphon.onnx")
    assert load_model(default_model(), "cpu").card.name.startswith(DEFAULT_MODEL_NAME + " (")


def test_model_or_default(tmp_path):
    from deepstrata.support import default_model, model_or_default

    assert model_or_default("") == model_or_default(None) == default_model()
    assert model_or_default(ELSEWHERE) == default_model()
    assert model_or_default(ELSEWHERE.replace("\\", "/").replace("C:", "/home")) == default_model()
    other = str(tmp_path / "mine.onnx")
    assert model_or_default(other) == other  # not found: said so by the run
    gone = str(tmp_path / "deepstrata" / "resources" / "models" / "not_bundled.onnx")
    assert model_or_default(gone) == gone


def run(parameters: dict) -> tuple[dict, RecordingFeedback]:
    import processing

    feedback = RecordingFeedback()
    return processing.run("deepstrata:runmodel", parameters, feedback=feedback), feedback


def model_line(feedback: RecordingFeedback) -> str:
    return next(line for line in feedback.infos if line.startswith("Model: "))


@pytest.mark.parametrize("value", [None, "", ELSEWHERE, "bundled path"])
def test_empty_or_old_default_runs_the_bundled_model(ds_provider, small_dem, tmp_path, value):
    from deepstrata.support import default_model

    parameters = {"INPUT": str(small_dem), "OUTPUT": str(tmp_path / "forms.tif")}
    if value is not None:
        parameters["MODEL"] = default_model() if value == "bundled path" else value
    _, feedback = run(parameters)
    assert model_line(feedback).startswith(f"Model: {BUNDLED} (")
    assert "(landforms_geomorphon.onnx)" in model_line(feedback)
    assert (tmp_path / "forms.tif").is_file()


def test_an_explicit_model_still_runs(ds_provider, small_dem, dem_segmenter, tmp_path):
    _, feedback = run({"INPUT": str(small_dem), "MODEL": str(dem_segmenter), "OUTPUT": str(tmp_path / "o.tif")})
    assert model_line(feedback).startswith(f"Model: {DEM_MODEL_NAME}")


def saved_model(path: Path, model_value: str) -> Path:
    """A .model3 with one Run model step whose MODEL is the static `model_value`, as the modeler saved it when the
    dialog filled in the bundled model's path."""
    model = QgsProcessingModelAlgorithm("Old landforms", "Tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("DEM", "DEM"), QgsProcessingModelParameter("DEM"))
    child = QgsProcessingModelChildAlgorithm("deepstrata:runmodel")
    child.setChildId("run")
    child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("DEM")])
    child.addParameterSources("MODEL", [QgsProcessingModelChildParameterSource.fromStaticValue(model_value)])
    output = QgsProcessingModelOutput("forms", "Landforms")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"forms": output})
    model.addChildAlgorithm(child)
    assert model.toFile(str(path))
    return path


def output_name(model: QgsProcessingModelAlgorithm) -> str:
    """The model's output parameter: "run:forms" on 3.22, named after the output ("landforms") on 3.40."""
    (destination,) = model.destinationParameterDefinitions()
    return destination.name()


@pytest.mark.parametrize("where", ["this machine", "another machine"])
def test_a_model3_saved_with_the_old_default_still_runs(ds_provider, small_dem, tmp_path, where):
    import processing
    from deepstrata.support import default_model

    path = saved_model(tmp_path / "old.model3", default_model() if where == "this machine" else ELSEWHERE)
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(path))
    feedback = RecordingFeedback()
    result = processing.run(model, {"DEM": str(small_dem), output_name(model): str(tmp_path / "forms.tif")},
                            feedback=feedback)
    assert Path(result[output_name(model)]).is_file()
    assert any(line.startswith(f"Model: {BUNDLED} (") for line in feedback.infos)


def test_model_info_declares_no_html_output(ds_provider, dem_segmenter):
    info = algorithm("deepstrata:modelinfo")
    assert not info.hasHtmlOutputs()  # what made the dialog say "HTML output has been generated"
    assert isinstance(info.outputDefinition("OUTPUT_HTML"), QgsProcessingOutputFile)
    assert info.parameterDefinition("OUTPUT_HTML").isDestination()


def test_model_info_of_the_bundled_model_by_default(ds_provider):
    import processing

    result = processing.run("deepstrata:modelinfo", {})
    assert result["NAME"].startswith(BUNDLED + " (")
    assert result["OUTPUT_HTML"] is None


def test_a_model3_step_s_own_model_is_the_one_run(ds_provider, small_dem, tmp_path):
    """The saved value does reach the step: a file that is not there is reported, not replaced by the default."""
    import processing
    from qgis.core import QgsProcessingException

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(saved_model(tmp_path / "mine.model3", str(tmp_path / "mine.onnx"))))
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as caught:
        processing.run(model, {"DEM": str(small_dem), output_name(model): str(tmp_path / "forms.tif")},
                       feedback=feedback)
    told = feedback.textLog() + str(caught.value)  # 3.22 logs the step's error, 3.40 raises it
    assert "Model file not found: '" + str(tmp_path / "mine.onnx") + "'" in told
