"""Styles for outputs that Processing loads into the project: the QML the engine wrote beside each output."""
from __future__ import annotations

import os
from collections import deque

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
)

# Processing does not own post-processors: keep the recent ones alive until QGIS has used them.
_ALIVE: "deque[StyleOutput]" = deque(maxlen=64)


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


def style_on_load(context: QgsProcessingContext, path: str | None, style_path: str | None, name: str) -> None:
    """If Processing will load `path` into a project, name that layer and style it once loaded."""
    if not path or not style_path or not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    details.forceName = True
    processor = StyleOutput(style_path)
    _ALIVE.append(processor)
    details.setPostProcessor(processor)
