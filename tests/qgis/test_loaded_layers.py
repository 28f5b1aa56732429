"""The outputs of a run as QGIS's own result loading puts them in the Layers panel (issue #16, items 1 and 2): on
top of the layer tree in a group named after the run, polygons over mask over score, visible, legends expanded and
headed with what they show (no "Band 1: ... (Gray)"), ramps labelled with the threshold; a setting turns the
grouping off."""
from __future__ import annotations

import itertools

import pytest
from qgis.core import (QgsLayerTree, QgsLayerTreeGroup, QgsLayerTreeModel, QgsLayerTreeRegistryBridge, QgsProject,
                       QgsRasterLayer, QgsSettings, QgsVectorLayer)
from qgis.PyQt.QtCore import Qt

from qgis_support import DATA, DEM_CLASSES, DEM_MODEL_NAME

REPO = DATA.parents[1]

GEOMORPHONS = ["flat", "peak", "ridge", "shoulder", "spur", "slope", "hollow", "footslope", "valley", "pit"]


def run_and_load(algorithm: str, parameters: dict) -> dict:
    import processing

    return processing.runAndLoadResults(f"deepstrata:{algorithm}", parameters)


def tree(node: QgsLayerTreeGroup) -> list:
    """The layer tree as names: a group is (name, [children])."""
    return [(c.name(), tree(c)) if QgsLayerTree.isGroup(c) else c.name() for c in node.children()]


def legend(project: QgsProject, name: str) -> list[str]:
    """The legend of the layer `name` as the Layers panel shows it (QgsLayerTreeModel's legend nodes)."""
    node = project.layerTreeRoot().findLayer(project.mapLayersByName(name)[0].id())
    model = QgsLayerTreeModel(project.layerTreeRoot())
    return [str(n.data(Qt.ItemDataRole.DisplayRole)) for n in model.layerLegendNodes(node)]


@pytest.fixture
def scene(qgis_new_project, dem):
    """A project with the DEM selected under an opaque layer: QGIS inserts results above the selected layer."""
    project = QgsProject.instance()
    cover = QgsRasterLayer(str(dem), "opaque cover")
    base = QgsRasterLayer(str(dem), "dem")
    project.addMapLayers([cover, base])
    root = project.layerTreeRoot()
    assert tree(root) == ["opaque cover", "dem"]
    bridge = project.layerTreeRegistryBridge()
    bridge.setLayerInsertionPoint(QgsLayerTreeRegistryBridge.InsertionPoint(root, 1))  # "above the dem"
    yield project
    bridge.setLayerInsertionPoint(QgsLayerTreeRegistryBridge.InsertionPoint(root, 0))


@pytest.fixture
def no_grouping():
    settings = QgsSettings()
    key = "Processing/Configuration/DEEPSTRATA_GROUP_OUTPUTS"
    settings.setValue(key, False)
    yield
    settings.remove(key)


def test_anomaly_outputs_load_on_top_in_a_group_polygons_over_mask_over_score(ds_provider, scene, tmp_path):
    run_and_load("detectanomalies", {"INPUT": "dem", "OUTPUT": str(tmp_path / "score.tif"),
                                     "OUTPUT_MASK": str(tmp_path / "mask.tif"),
                                     "OUTPUT_POLYGONS": str(tmp_path / "patches.gpkg")})
    root = scene.layerTreeRoot()
    assert tree(root) == [("Anomalies - dem", ["Anomalies", "Anomaly mask", "Anomaly score"]),
                          "opaque cover", "dem"]
    group = root.children()[0]
    assert group.isExpanded() and group.isVisible()
    for node in group.children():
        assert node.isVisible() and node.isExpanded(), node.name()

    score = legend(scene, "Anomaly score")
    assert score == ["Anomaly score (robust z-score)", "0 ordinary", "6.5 threshold: anomalous from here", "9.75",
                     "13 and above"]
    assert legend(scene, "Anomaly mask") == ["Anomaly mask (score at least 6.5)", "normal", "anomaly"]
    assert legend(scene, "dem")[0] == "Band 1 (Gray)"  # the input is left as it was


def test_landform_legends_are_expanded_and_headed_with_what_they_show(ds_provider, scene, tmp_path):
    run_and_load("classifylandforms", {"INPUT": "dem", "OUTPUT": str(tmp_path / "landforms.tif"),
                                       "CONFIDENCE": str(tmp_path / "confidence.tif"),
                                       "VECTORIZE": str(tmp_path / "landforms.gpkg"),
                                       "STATISTICS": "TEMPORARY_OUTPUT"})
    root = scene.layerTreeRoot()
    assert tree(root) == [("Landforms - dem", ["Landforms polygons", "Landforms", "Landforms confidence",
                                               "Landforms statistics"]),
                          "opaque cover", "dem"]
    assert legend(scene, "Landforms") == ["Landforms", *GEOMORPHONS]
    assert legend(scene, "Landforms confidence") == ["Confidence (probability of the class)", "0 uncertain",
                                                     "0.5", "1 certain"]
    classes = root.findLayer(scene.mapLayersByName("Landforms")[0].id())
    assert classes.isExpanded()
    polygons = scene.mapLayersByName("Landforms polygons")[0]
    assert isinstance(polygons, QgsVectorLayer) and polygons.renderer().type() == "categorizedSymbol"


def test_without_grouping_the_outputs_still_load_together_on_top(ds_provider, scene, no_grouping, tmp_path):
    run_and_load("detectanomalies", {"INPUT": "dem", "OUTPUT": str(tmp_path / "score.tif"),
                                     "OUTPUT_MASK": str(tmp_path / "mask.tif"),
                                     "OUTPUT_POLYGONS": str(tmp_path / "patches.gpkg")})
    assert tree(scene.layerTreeRoot()) == ["Anomalies - dem", "Anomaly mask - dem", "Anomaly score - dem",
                                           "opaque cover", "dem"]


def test_each_run_has_its_own_group_the_newest_on_top(ds_provider, dem_segmenter, scene, tmp_path):
    for name in ("first", "second"):
        run_and_load("runmodel", {"INPUT": "dem", "MODEL": str(dem_segmenter), "OUTPUT": str(tmp_path / f"{name}.tif"),
                                  "CONFIDENCE": str(tmp_path / f"{name}_confidence.tif")})
    name = DEM_MODEL_NAME.split(" (")[0]  # layer names leave out the card's parenthesis; the legend has it all
    layers = [name, f"{name} confidence"]
    root = scene.layerTreeRoot()
    assert tree(root) == [(f"{name} - dem", layers), (f"{name} - dem", layers), "opaque cover", "dem"]
    newest = root.children()[0].children()[0].layer()
    assert newest.source().endswith("second.tif")
    assert legend(scene, name)[0] == DEM_MODEL_NAME
    assert [label for label in legend(scene, name)[1:]] == list(DEM_CLASSES)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_placement_ends_the_same_whatever_order_the_layers_are_loaded_in(qgis_new_project, dem, order):
    """QGIS 3.22 post-processes each layer as it is added (in the order of the file names); 3.40 all at the end."""
    from deepstrata.processing_provider.placement import RANK_MASK, RANK_POLYGONS, RANK_VALUES, RunLayers

    project = QgsProject.instance()
    project.addMapLayer(QgsRasterLayer(str(dem), "dem"))
    run = RunLayers("run", group=False)
    outputs = [("score", RANK_VALUES), ("mask", RANK_MASK), ("polygons", RANK_POLYGONS)]
    for i in order:
        name, rank = outputs[i]
        layer = QgsRasterLayer(str(dem), name)
        project.addMapLayer(layer)
        run.place(layer, rank, project=project)
    assert tree(project.layerTreeRoot()) == ["polygons", "mask", "score", "dem"]


def test_the_grouping_setting_is_in_the_processing_options(ds_provider):
    from processing.core.ProcessingConfig import ProcessingConfig

    setting = ProcessingConfig.settings["DEEPSTRATA_GROUP_OUTPUTS"]
    assert setting.group == "DeepStrata" and setting.default is True
    assert "group named after the run" in setting.description


def test_a_threshold_given_moves_the_ramp_and_its_legend_with_the_mask(ds_provider, scene, tmp_path):
    run_and_load("detectanomalies", {"INPUT": "dem", "THRESHOLD": 4.0, "OUTPUT": str(tmp_path / "score.tif"),
                                     "OUTPUT_MASK": str(tmp_path / "mask.tif")})
    assert legend(scene, "Anomaly score") == ["Anomaly score (robust z-score)", "0 ordinary",
                                              "4 threshold: anomalous from here", "6", "8 and above"]
    assert legend(scene, "Anomaly mask")[0] == "Anomaly mask (score at least 4)"
    assert "threshold: anomalous" in (tmp_path / "score.qml").read_text()  # also for a later drag and drop


@pytest.mark.parametrize("name, raster, expected", [
    ("landforms_filled", "DEM", [("Landforms", ["Landforms", "Landforms statistics"]), "dem"]),
    ("anomaly_patches", "RASTER", ["Strong anomaly patches", ("Anomalies - dem", ["Anomaly score"]), "dem"]),
])
def test_example_models_load_layers_named_for_what_they_are(ds_provider, qgis_new_project, dem, name, raster,
                                                            expected):
    """Inside a model the DeepStrata step's input is a temporary "OUTPUT" of the step before: not repeated in the
    names; the stock step's output is named as the model names it (not "PATCHES")."""
    from qgis.core import QgsProcessingModelAlgorithm

    project = QgsProject.instance()
    project.addMapLayer(QgsRasterLayer(str(dem), "dem"))
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(REPO / "docs" / "examples" / f"{name}.model3"))
    parameters = {d.name(): "TEMPORARY_OUTPUT" for d in model.destinationParameterDefinitions()}
    import processing

    processing.runAndLoadResults(model, {**parameters, raster: "dem", "MIN_PEAK": 7})
    loaded = tree(project.layerTreeRoot())
    # the stock step's layer lands where QGIS puts it: 3.22 as it comes, 3.40 before DeepStrata's post-processors
    assert loaded[-1] == "dem" and sorted(map(str, loaded)) == sorted(map(str, expected))


@pytest.fixture
def results_group():
    from processing.core.ProcessingConfig import ProcessingConfig

    ProcessingConfig.setSettingValue(ProcessingConfig.RESULTS_GROUP_NAME, "Results")
    yield
    ProcessingConfig.setSettingValue(ProcessingConfig.RESULTS_GROUP_NAME, "")


def test_processing_results_group_setting_holds_the_run_groups(ds_provider, scene, results_group, tmp_path):
    run_and_load("detectanomalies", {"INPUT": "dem", "OUTPUT": str(tmp_path / "score.tif"),
                                     "OUTPUT_MASK": str(tmp_path / "mask.tif")})
    assert tree(scene.layerTreeRoot()) == [("Results", [("Anomalies - dem", ["Anomaly mask", "Anomaly score"])]),
                                           "opaque cover", "dem"]
