"""What the analyst workflows (Classify landforms, Map geology, Detect anomalies) share: the input layer, the
model (a bundled default unless the user picks another), the device, running at the model's resolution, the log.

Each workflow is one algorithm in its own file; this base keeps them to what differs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
    QgsRasterLayer,
)

from ..compat import ProcessingFileParameterBehavior, ProcessingNumberParameterType
from .base import DEVICES, DeepStrataAlgorithm, FeedbackAdapter, bundled_model, load_reported, report_run
from .outputs import Outputs, resolve_outputs
from .placement import RunLayers

if TYPE_CHECKING:
    from ..inference import Model, RunOptions
    from ..inference.engine.staging import Staging
    from ..inference.workflows.resample import ResampledRun


@dataclass
class Run:
    """One workflow run: the layer, its file, the loaded model, the log adapter and the run's destinations."""

    layer: QgsRasterLayer
    path: str
    model: "Model"
    report: FeedbackAdapter
    device: str
    outputs: Outputs
    parameters: dict[str, Any] = field(default_factory=dict)  # for the outputs' provenance
    output_format: str = "cog"  # RunOptions.output_format: 'cog' or 'gtiff'
    cluster: str | None = None  # RunOptions.cluster: a Dask cluster's address, or None for this machine
    loaded: RunLayers | None = None  # the layers the run loads into the project (see `layers`)

    @property
    def title(self) -> str:
        """The layer name outputs are named after ("Landforms - bigtujunga"); inside a model, where the input is
        a previous step's output named like "OUTPUT", the file's name instead."""
        name = self.layer.name()
        return os.path.splitext(os.path.basename(self.path))[0] if not name or name.isupper() else name

    def named(self, what: str) -> str:
        """A loaded layer's name: "<what> - <title>"; just <what> inside a model when the input is a temporary
        output of an earlier step (named like "OUTPUT": nothing worth repeating)."""
        temporary = os.path.realpath(self.path).startswith(os.path.realpath(QgsProcessingUtils.tempFolder()))
        return what if temporary and self.title.isupper() else f"{what} - {self.title}"

    def layers(self, what: str) -> RunLayers:
        """The layers this run loads, together in one group named like them (made on first use)."""
        if self.loaded is None:
            self.loaded = RunLayers(self.named(what))
        return self.loaded

    def staging(self) -> "Staging":
        """Where every output of the run is written; committed together when the block ends cleanly."""
        from ..inference.engine.staging import Staging

        return Staging(self.report.is_cancelled, self.parameters, self.output_format)


def describe(model: "Model") -> str:
    """'an anomaly model for 1 band', 'a segmentation model for 6 bands': for messages about the wrong model."""
    task, n = model.card.task, len(model.card.input.bands)
    return f"{'an' if task[:1] in 'aeiou' else 'a'} {task} model for {n} band{'s' if n != 1 else ''}"


class WorkflowAlgorithm(DeepStrataAlgorithm):
    INPUT = "INPUT"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    PROVIDER = "PROVIDER"
    SEARCH = "SEARCH_DISTANCE"
    DEFAULT_MODEL = ""  # a file in resources/models
    MODEL_HELP = ""

    def add_search_distance(self, what: str) -> None:
        """The terrain models' scale: a search distance in metres (empty: the model's default in cells)."""
        self.add(QgsProcessingParameterNumber(self.SEARCH, self.tr("Search distance (m; empty = adapts to the DEM)"),
                                              ProcessingNumberParameterType.Double, optional=True,
                                              minValue=0.0),
                 f"How far the model looks from each cell, in metres: {what} Empty: a fixed number of the DEM's "
                 "cells (10 for the bundled models), so it adapts to the pixel size; the log says the distance in "
                 "metres and cells at the start. Longer distances than the model reaches are met by averaging the "
                 "DEM to coarser cells, and the results are brought back to its grid.")

    def search_distance(self, parameters: dict[str, Any], context: QgsProcessingContext) -> float | None:
        if parameters.get(self.SEARCH) in (None, ""):
            return None
        return self.parameterAsDouble(parameters, self.SEARCH, context) or None

    def add_common(self, input_help: str) -> None:
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster layer")), input_help)
        # Empty by default: the bundled model is resolved at run time (no machine path in dialogs or models).
        model = QgsProcessingParameterFile(self.MODEL, self.tr("Model (empty: the bundled one)"),
                                           behavior=ProcessingFileParameterBehavior.File, extension="onnx",
                                           optional=True)
        self.add(model, self.MODEL_HELP)
        self.add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), options=list(DEVICES), defaultValue=0),
                 "auto: the best execution provider available (GPU first, then CPU); the log says which ran.",
                 advanced=True)
        self.add_output_format()
        self.add_cluster()
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))

    # ------------------------------------------------------------------ running
    def default_model_for(self, path: str) -> str | None:
        """The bundled model for this input (workflows whose default depends on the input override this)."""
        return bundled_model(self.DEFAULT_MODEL) if self.DEFAULT_MODEL else None

    def start(self, parameters: dict[str, Any], context: QgsProcessingContext,
              feedback: QgsProcessingFeedback) -> Run:
        """Check onnxruntime, resolve the layer and the model, load it and say which provider runs it, then check
        every destination of the run before any work."""
        self.check_can_execute()
        from ..inference.engine.destinations import check_destinations
        from ..inference.engine.raster import input_reads, open_raster
        from ..inference.workflows.inspect import require_data

        layer, path = self.input_raster(parameters, context)
        report = FeedbackAdapter(feedback)
        require_data(path)
        model_path = self.resolve_model(parameters, context, path, report)
        if not model_path:
            raise QgsProcessingException(self.no_model_message(path))
        device = DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
        model = load_reported(model_path, device, report)
        self.check_model(model, model_path)
        outputs = resolve_outputs(self, parameters, context)
        ds = open_raster(path)
        check_destinations(outputs.destinations(),
                           input_reads(ds, path) + model.reads + self.extra_reads(parameters, context, path))
        ds = None
        return Run(layer, path, model, report, device, outputs, self.parameters_for_provenance(parameters),
                   self.output_format(parameters, context), self.cluster(parameters, context))

    def resolve_model(self, parameters: dict[str, Any], context: QgsProcessingContext, path: str,
                      report: FeedbackAdapter) -> str | None:
        """The model file to run: the MODEL parameter, else the bundled one for this input (Detect anomalies
        may fit one to the input here instead)."""
        return self.parameterAsFile(parameters, self.MODEL, context) or self.default_model_for(path)

    def extra_reads(self, parameters: dict[str, Any], context: QgsProcessingContext, path: str) -> list:
        """Files besides the raster and the model that the run reads (workflows that read more override this)."""
        return []

    def no_model_message(self, path: str) -> str:
        return self.tr("No model given and no bundled model fits this input: choose an .onnx file for 'Model'.")

    def check_model(self, model: "Model", path: str) -> None:
        """Raise QgsProcessingException when the chosen model cannot serve this workflow."""

    def run_engine(self, run: Run, output: str, options: "RunOptions", staging: "Staging") -> "ResampledRun":
        """Run the model at its own pixel size (resampling the input there and the outputs back if needed)."""
        from ..inference.workflows.resample import run_at_model_resolution

        options.device = run.device
        options.cluster = run.cluster
        options.labels = {"output": run.outputs.labels.get("OUTPUT", "OUTPUT"),
                          "confidence": run.outputs.labels.get("CONFIDENCE", "CONFIDENCE")}
        done = run_at_model_resolution(run.model, run.path, output, options, on_progress=run.report.on_progress,
                                       is_cancelled=run.report.is_cancelled, staging=staging)
        run.report.warnings(done.result.warnings)
        report_run(run.report, done.result)
        return done
