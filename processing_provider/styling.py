"""Styles and names for outputs that Processing loads into the project: the QML the engine wrote beside each
raster output, class colours for class polygons, red outlines for anomaly patches."""
from __future__ import annotations

import os
from collections import deque

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)

# Processing does not own post-processors: keep the recent ones alive until QGIS has used them.
_ALIVE: "deque[QgsProcessingLayerPostProcessorInterface]" = deque(maxlen=64)


class StyleOutput(QgsProcessingLayerPostProcessorInterface):
    """Applies the engine's QML file: class names and colours in the legend, or a ramp for scores."""

    def __init__(self, style_path: str) -> None:
        super().__init__()
        self.style_path = style_path

    def postProcessLayer(self, layer, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> None:
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        if os.path.isfile(self.style_path):
            message, ok = layer.loadNamedStyle(self.style_path)
            if not ok and feedback is not None:
                feedback.pushWarning(f"Could not apply the style {self.style_path}: {message}")
        layer.triggerRepaint()


def name_on_load(context: QgsProcessingContext, path: str | None, name: str,
                 processor: QgsProcessingLayerPostProcessorInterface | None = None) -> None:
    """If Processing will load `path` into the project, give the layer a name that says what it is (and style it
    with `processor` once loaded)."""
    if not path or not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    details.forceName = True
    if processor is not None:
        _ALIVE.append(processor)
        details.setPostProcessor(processor)


def style_on_load(context: QgsProcessingContext, path: str | None, style_path: str | None, name: str) -> None:
    """If Processing will load `path` into a project, name that layer and style it once loaded."""
    if style_path:
        name_on_load(context, path, name, StyleOutput(style_path))


class StyleVector(QgsProcessingLayerPostProcessorInterface):
    """Class polygons: one category per class with the card's name and colour; anomaly patches: red outlines."""

    def __init__(self, classes: "list[tuple[int, str, str]] | None") -> None:
        super().__init__()
        self.classes = classes

    def postProcessLayer(self, layer, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> None:
        if not isinstance(layer, QgsVectorLayer) or not layer.isValid():
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
        layer.triggerRepaint()


def style_vector_on_load(context: QgsProcessingContext, path: str | None, name: str,
                         classes: "list[tuple[int, str, str]] | None" = None) -> None:
    """If Processing will load the vector `path`, name it and style it (by class, or as anomaly patches)."""
    name_on_load(context, path, name, StyleVector(classes))
