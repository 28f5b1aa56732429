"""Names, places and styles for outputs that Processing loads into the project: the QML the engine wrote beside each
raster output, class colours for class polygons, red outlines for anomaly patches; each layer placed with the
other outputs of its run (placement.py) and its legend titled with what it shows."""
from __future__ import annotations

import os
from collections import deque

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)

from .placement import RANK_POLYGONS, RANK_TABLE, RANK_VALUES, RunLayers

# Processing does not own post-processors: keep the recent ones alive until QGIS has used them.
_ALIVE: "deque[QgsProcessingLayerPostProcessorInterface]" = deque(maxlen=64)


class LoadedOutput(QgsProcessingLayerPostProcessorInterface):
    """Once Processing has loaded an output into the project: placed with its run's other outputs, then styled."""

    def __init__(self, run: RunLayers | None = None, rank: int = RANK_VALUES, legend: str = "") -> None:
        super().__init__()
        self.run, self.rank, self.legend = run, rank, legend

    def postProcessLayer(self, layer, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> None:
        if layer is None or not layer.isValid():
            return
        if self.run is not None:
            self.run.place(layer, self.rank, self.legend, context.project() or QgsProject.instance())
        self.style(layer, feedback)
        layer.triggerRepaint()

    def style(self, layer: QgsMapLayer, feedback: QgsProcessingFeedback | None) -> None:
        """Outputs with a style of their own override this."""


class StyleOutput(LoadedOutput):
    """Applies the engine's QML file: class names and colours in the legend, or a ramp for scores."""

    def __init__(self, style_path: str, run: RunLayers | None = None, rank: int = RANK_VALUES,
                 legend: str = "") -> None:
        super().__init__(run, rank, legend)
        self.style_path = style_path

    def style(self, layer: QgsMapLayer, feedback: QgsProcessingFeedback | None) -> None:
        if isinstance(layer, QgsRasterLayer) and os.path.isfile(self.style_path):
            message, ok = layer.loadNamedStyle(self.style_path)
            if not ok and feedback is not None:
                feedback.pushWarning(f"Could not apply the style {self.style_path}: {message}")


class StyleVector(LoadedOutput):
    """Class polygons: one category per class with the card's name and colour; anomaly patches: red outlines."""

    def __init__(self, classes: "list[tuple[int, str, str]] | None", run: RunLayers | None = None,
                 rank: int = RANK_POLYGONS) -> None:
        super().__init__(run, rank)
        self.classes = classes

    def style(self, layer: QgsMapLayer, feedback: QgsProcessingFeedback | None) -> None:
        if not isinstance(layer, QgsVectorLayer):
            return
        if self.classes:
            categories = []
            for value, name, color in self.classes:
                symbol = QgsFillSymbol.createSimple({"color": color, "outline_style": "no"})
                categories.append(QgsRendererCategory(value, symbol, name))
            layer.setRenderer(QgsCategorizedSymbolRenderer("value", categories))
        else:
            layer.setRenderer(QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(
                {"color": "215,25,28,60", "outline_color": "#d7191c", "outline_width": "0.6"})))


def keep(processor: QgsProcessingLayerPostProcessorInterface) -> QgsProcessingLayerPostProcessorInterface:
    """Hold a post-processor until QGIS has used it (Processing does not own it)."""
    _ALIVE.append(processor)
    return processor


def name_on_load(context: QgsProcessingContext, path: str | None, name: str,
                 processor: QgsProcessingLayerPostProcessorInterface | None = None) -> None:
    """If Processing will load `path` into the project, give the layer a name that says what it is (and place and
    style it with `processor` once loaded)."""
    if not path or not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    details.forceName = True
    if processor is not None:
        details.setPostProcessor(keep(processor))


def style_on_load(context: QgsProcessingContext, path: str | None, style_path: str | None, name: str,
                  run: RunLayers | None = None, rank: int = RANK_VALUES, legend: str = "") -> None:
    """If Processing will load the raster `path` into a project, name that layer, then place it with its run's
    outputs (legend headed `legend`) and style it once loaded."""
    if style_path:
        name_on_load(context, path, name, StyleOutput(style_path, run, rank, legend))


def style_vector_on_load(context: QgsProcessingContext, path: str | None, name: str,
                         classes: "list[tuple[int, str, str]] | None" = None, run: RunLayers | None = None) -> None:
    """If Processing will load the vector `path`, name it, place it over its run's rasters and style it (by class,
    or as anomaly patches)."""
    name_on_load(context, path, name, StyleVector(classes, run))


def table_on_load(context: QgsProcessingContext, path: str | None, name: str, run: RunLayers | None) -> None:
    """If Processing will load the table `path`, name it and place it at the bottom of its run's outputs."""
    name_on_load(context, path, name, LoadedOutput(run, RANK_TABLE))
