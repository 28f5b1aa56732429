"""Outputs written over a file that is already open in QGIS: the open layers are reloaded once the run is done.

The engine commits each output by replacing the file, so a layer QGIS already had open on that path would keep
showing the old raster (GDAL holds the replaced file open) until the project is reopened. The algorithm notes the
paths its outputs are written to before it runs (`output_paths`), and after it (on the main thread, in
postProcessAlgorithm) every project layer whose file is one of them reloads its data and redraws.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

from qgis.core import QgsMapLayer, QgsProcessingOutputLayerDefinition, QgsProject, QgsProviderRegistry


def output_paths(values: Iterable[Any]) -> list[str]:
    """The files that parameter values name as outputs: plain paths and output layer definitions (temporary
    outputs name none)."""
    paths = []
    for value in values:
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink.staticValue()
        if isinstance(value, str) and value and value != "TEMPORARY_OUTPUT" and not value.startswith("memory:"):
            paths.append(_normal(value.split("|")[0]))
    return paths


def layer_path(layer: QgsMapLayer) -> str:
    """The file behind a layer ('' for layers that are not files)."""
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    path = parts.get("path") or ""
    return _normal(path) if path else ""


def reload_layers(paths: Iterable[str], project: QgsProject | None = None) -> list[QgsMapLayer]:
    """Reload and redraw every layer of `project` (the current one by default) open on one of `paths`."""
    wanted = {p for p in paths if p}
    project = project or QgsProject.instance()
    reloaded = []
    for layer in project.mapLayers().values():
        if wanted and layer_path(layer) in wanted:
            layer.reload()
            layer.triggerRepaint()
            reloaded.append(layer)
    return reloaded


def _normal(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))
