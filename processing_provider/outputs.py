"""Every destination of an algorithm run, resolved once and checked before any work (the engine's
destinations.py does the checking), and a table written by the engine where a file was asked for.

Destination parameters are resolved exactly once: QGIS makes a new temporary path (and registers another layer
to load) at each call of parameterAsOutputLayer on a TEMPORARY_OUTPUT.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
    QgsProperty,
)

if TYPE_CHECKING:
    from ..inference.engine.destinations import Destination


@dataclass
class Outputs:
    """Destination parameter -> what to write ('' when not asked; 'memory:' for a temporary table)."""

    paths: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # raster | vector | table
    labels: dict[str, str] = field(default_factory=dict)  # "Landforms (OUTPUT)"
    definitions: dict[str, QgsProcessingOutputLayerDefinition] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.paths.get(name, "")

    def destinations(self) -> "list[Destination]":
        """The file destinations, for the engine's checks."""
        from ..inference.engine.destinations import Destination, parse_vector_destination

        found = []
        for name, value in self.paths.items():
            if not value or value.startswith("memory:"):
                continue
            kind = self.kinds[name]
            path, layer = parse_vector_destination(value) if kind != "raster" else (value, None)
            found.append(Destination(path, self.labels[name], kind, layer))
        return found


def _sink_value(value: Any, context: QgsProcessingContext) -> tuple[str, QgsProcessingOutputLayerDefinition | None]:
    """A feature sink's destination without creating it: a path, 'memory:' or ''."""
    definition = value if isinstance(value, QgsProcessingOutputLayerDefinition) else None
    if definition is not None:
        sink = definition.sink
        value = sink.valueAsString(context.expressionContext())[0] if isinstance(sink, QgsProperty) else sink
    text = "" if value is None else str(value)
    if text in ("TEMPORARY_OUTPUT", "memory:") or text.startswith("memory:"):
        return "memory:", definition
    return text, definition


def resolve_outputs(algorithm: QgsProcessingAlgorithm, parameters: dict[str, Any],
                    context: QgsProcessingContext) -> Outputs:
    """Resolve every destination parameter of `algorithm` once."""
    outputs = Outputs()
    for definition in algorithm.destinationParameterDefinitions():
        name = definition.name()
        outputs.labels[name] = f"{definition.description()} ({name})"
        if isinstance(definition, QgsProcessingParameterFeatureSink):
            value, layer_definition = _sink_value(parameters.get(name, definition.defaultValue()), context)
            outputs.paths[name], outputs.kinds[name] = value, "table"
            if layer_definition is not None:
                outputs.definitions[name] = layer_definition
            continue
        if isinstance(definition, QgsProcessingParameterFileDestination):
            continue  # a plain file (a fitted model): the algorithm resolves and checks it itself
        kind = "raster" if isinstance(definition, QgsProcessingParameterRasterDestination) else "vector"
        outputs.paths[name] = algorithm.parameterAsOutputLayer(parameters, name, context) or ""
        outputs.kinds[name] = kind
    return outputs


def load_table_on_completion(outputs: Outputs, name: str, path: str, context: QgsProcessingContext,
                             title: str, processor: QgsProcessingLayerPostProcessorInterface | None = None) -> None:
    """Have Processing load a table the engine wrote (as parameterAsSink does for the sinks it creates), and run
    `processor` (kept alive by the caller) on it once loaded."""
    definition = outputs.definitions.get(name)
    if definition is None or definition.destinationProject is None:
        return
    details = QgsProcessingContext.LayerDetails(title, definition.destinationProject, name,
                                                QgsProcessingUtils.LayerHint.Vector)
    details.forceName = True
    if processor is not None:
        details.setPostProcessor(processor)
    context.addLayerToLoadOnCompletion(path, details)
