"""Outputs loaded into the project get the model's name and style: class names and colours, a 0..1 ramp."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsRasterLayer,
                       QgsSingleBandGrayRenderer)

from qgis_support import DEM_CLASSES, DEM_MODEL_NAME, named_classes


def run_and_load(parameters: dict) -> dict:
    import processing

    return processing.runAndLoadResults("deepstrata:runmodel", parameters)


def project_layer(name: str) -> QgsRasterLayer:
    layers = QgsProject.instance().mapLayersByName(name)
    assert len(layers) == 1, [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    return layers[0]


def test_loaded_outputs_are_named_and_styled(ds_provider, dem_segmenter, dem, qgis_new_project, tmp_path):
    out, conf = tmp_path / "classes.tif", tmp_path / "confidence.tif"
    run_and_load({"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out), "CONFIDENCE": str(conf)})

    name = DEM_MODEL_NAME.split(" (")[0]  # in the run's group "<name> - <input>": the input is not repeated
    classes = project_layer(name)
    assert Path(classes.source()) == out
    renderer = classes.renderer()
    assert renderer.type() == "paletted"
    expected = named_classes(DEM_CLASSES)
    assert [(c.value, c.label, c.color.name()) for c in renderer.classes()] == \
        [(e["value"], e["name"], e["color"]) for e in expected]
    assert [label for label, _ in renderer.legendSymbologyItems()] == list(DEM_CLASSES)

    confidence = project_layer(f"{name} confidence")
    ramp = confidence.renderer()
    assert ramp.type() == "singlebandpseudocolor"
    assert (ramp.classificationMin(), ramp.classificationMax()) == (0.0, 1.0)
    items = ramp.shader().rasterShaderFunction().colorRampItemList()
    assert [(i.value, i.color.name()) for i in items] == [(0.0, "#d7191c"), (0.5, "#ffffbf"), (1.0, "#1a9641")]


def test_post_processor_applies_the_engine_style(ds_provider, dem_segmenter, dem, tmp_path):
    """Whatever renderer QGIS picked on its own, the post-processor sets the engine's paletted one."""
    import processing
    from deepstrata.processing_provider.styling import StyleOutput

    out = tmp_path / "classes.tif"
    processing.run("deepstrata:runmodel", {"INPUT": str(dem), "MODEL": str(dem_segmenter), "OUTPUT": str(out)})
    layer = QgsRasterLayer(str(out), "classes", "gdal", QgsRasterLayer.LayerOptions(loadDefaultStyle=False))
    layer.setRenderer(QgsSingleBandGrayRenderer(layer.dataProvider(), 1))

    StyleOutput(str(out.with_suffix(".qml"))).postProcessLayer(layer, QgsProcessingContext(), QgsProcessingFeedback())
    assert layer.renderer().type() == "paletted"
    assert [c.label for c in layer.renderer().classes()] == list(DEM_CLASSES)
