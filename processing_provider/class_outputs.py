"""The outputs of the class workflows (landforms, geology): the class raster, optional confidence, the class
statistics table (also in the log and the results) and optional polygons per class."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
)

from ..compat import FieldType, ProcessingSourceType, WkbType, field
from .outputs import load_table_on_completion
from .placement import RANK_CONFIDENCE, RANK_TABLE, RANK_VALUES
from .styling import LoadedOutput, keep, style_on_load, style_vector_on_load, table_on_load
from .workflow import Run, WorkflowAlgorithm

if TYPE_CHECKING:
    from ..inference.engine.staging import Staging
    from ..inference.workflows.class_stats import ClassStat
    from ..inference.workflows.resample import ResampledRun

STAT_FIELDS = (("value", FieldType.Int), ("class", FieldType.QString), ("pixels", FieldType.LongLong),
               ("area_m2", FieldType.Double), ("area_ha", FieldType.Double), ("percent", FieldType.Double))


class ClassWorkflow(WorkflowAlgorithm):
    """A workflow whose model writes classes: adds OUTPUT, CONFIDENCE, STATISTICS, VECTORIZE."""

    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    STATISTICS = "STATISTICS"
    VECTORIZE = "VECTORIZE"
    CLASS_STATISTICS = "CLASS_STATISTICS"
    WHAT = "Classes"  # layer names: "<WHAT> - <input layer>"

    def add_class_outputs(self) -> None:
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr(self.WHAT)),
                 "GeoTIFF of class ids on the input's grid, styled with the model's class names and colours.")
        self.add(QgsProcessingParameterRasterDestination(self.CONFIDENCE, self.tr("Confidence (0..1)"),
                                                         optional=True, createByDefault=False),
                 "Optional Float32 raster: the probability of the winning class.")
        self.add(QgsProcessingParameterFeatureSink(self.STATISTICS, self.tr("Class statistics"),
                                                   ProcessingSourceType.Vector, optional=True,
                                                   createByDefault=True),
                 "A table (no geometry): class, pixel count, area in m² and ha, percent of the classified area.")
        self.add(QgsProcessingParameterVectorDestination(self.VECTORIZE, self.tr("Class polygons"),
                                                         ProcessingSourceType.VectorPolygon,
                                                         optional=True, createByDefault=False),
                 "Optional polygons, one per connected patch of a class, with its class name and area.")
        self.addOutput(QgsProcessingOutputString(self.CLASS_STATISTICS,
                                                 self.tr("Class statistics (JSON: class, pixels, area, percent)")))

    def finish_classes(self, run: Run, done: "ResampledRun", stage: "Staging") -> "list[ClassStat]":
        """Inside the run's staging: class statistics (to the log, and to a table file if one was asked for)
        and polygons, read from the staged class raster. Returns the statistics."""
        from ..inference.workflows.class_stats import class_statistics, format_table, write_table
        from ..inference.workflows.vectorize import polygonize_classes

        result = done.result
        classes = list(run.model.card.output.classes)
        stats = class_statistics(stage.current(result.output_path), classes, is_cancelled=run.report.is_cancelled)
        run.report.info(f"{self.WHAT} of '{run.title}':\n" + format_table(stats))
        table = run.outputs[self.STATISTICS]
        if table and not table.startswith("memory:"):
            write_table(stats, table, stage, layer_name=f"{self.WHAT.lower()}_statistics")
        polygons = run.outputs[self.VECTORIZE]
        if polygons:
            count = polygonize_classes(result.output_path, polygons, classes, layer_name=self.WHAT.lower(),
                                       is_cancelled=run.report.is_cancelled, staging=stage)
            run.report.info(f"Class polygons: {count} written to {polygons}")
        return stats

    def publish_classes(self, parameters: dict[str, Any], context: QgsProcessingContext, run: Run,
                        done: "ResampledRun", stats: "list[ClassStat]") -> dict[str, Any]:
        """After the commit: the results, and the names and styles of the layers Processing loads."""
        result = done.result
        classes = list(run.model.card.output.classes)
        results: dict[str, Any] = {self.OUTPUT: result.output_path, self.CONFIDENCE: result.confidence_path,
                                   self.PROVIDER: result.provider,
                                   self.CLASS_STATISTICS: json.dumps([_stat_dict(s) for s in stats])}
        results[self.STATISTICS] = self._statistics_table(parameters, context, run, stats)
        layers = run.layers(self.WHAT)
        polygons = run.outputs[self.VECTORIZE]
        if polygons:
            results[self.VECTORIZE] = polygons
            style_vector_on_load(context, polygons, run.named(f"{self.WHAT} polygons"),
                                 [(c.value, c.name, c.color) for c in classes], layers)
        style_on_load(context, result.output_path, result.style_path, run.named(self.WHAT), layers,
                      RANK_VALUES, self.tr(self.WHAT))
        style_on_load(context, result.confidence_path, result.confidence_style_path,
                      run.named(f"{self.WHAT} confidence"), layers, RANK_CONFIDENCE,
                      self.tr("Confidence (probability of the class)"))
        return results

    def _statistics_table(self, parameters: dict[str, Any], context: QgsProcessingContext, run: Run,
                          stats: "list[ClassStat]") -> str | None:
        """The table's result: the file written in the staging, or a temporary layer made now."""
        title = run.named(f"{self.WHAT} statistics")
        table = run.outputs[self.STATISTICS]
        if not table:
            return None
        if not table.startswith("memory:"):
            load_table_on_completion(run.outputs, self.STATISTICS, table, context, title,
                                     keep(LoadedOutput(run.layers(self.WHAT), RANK_TABLE)))
            return table
        fields = QgsFields()
        for name, kind in STAT_FIELDS:
            fields.append(field(name, kind))
        sink, dest = self.parameterAsSink(parameters, self.STATISTICS, context, fields, WkbType.NoGeometry,
                                          QgsCoordinateReferenceSystem())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.STATISTICS))
        for s in stats:
            feature = QgsFeature(fields)
            feature.setAttributes([s.value, s.name, s.pixels, _number(s.area_m2), _number(s.area_ha),
                                   round(s.percent, 4)])
            sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        table_on_load(context, dest, title, run.layers(self.WHAT))
        return dest


def _number(value: float) -> float | None:
    return None if value != value else value  # NaN (no CRS): an empty (NULL) attribute


def _stat_dict(stat: "ClassStat") -> dict[str, Any]:
    return {"value": stat.value, "class": stat.name, "pixels": stat.pixels, "area_m2": _number(stat.area_m2),
            "area_ha": _number(stat.area_ha), "percent": round(stat.percent, 4)}
