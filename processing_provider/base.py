"""What every DeepStrata algorithm shares: the bundled models, the onnxruntime guard, error mapping, feedback.

The engine (`deepstrata.inference`) is imported lazily, inside the methods that run it, so the provider and
its algorithms load (and explain what is missing) on a QGIS without onnxruntime.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Iterator

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

from ..compat import ProcessingFileParameterBehavior, ProcessingParameterFlag
from ..support import (BUNDLED_DEFAULT, DEFAULT_MODEL, DEFAULT_MODEL_NAME, bundled_model, default_model, icon,
                       onnxruntime_problem, tr)
from .reload import output_paths, reload_layers

__all__ = ["bundled_model", "default_model"]  # the bundled models (support.py), for the algorithms
MODEL_HELP = (f"A .onnx file with a DeepStrata model card (or Deepness metadata). Empty: the model bundled with "
              f"the plugin, '{DEFAULT_MODEL_NAME}' ({DEFAULT_MODEL}: the ten geomorphon landforms at any pixel "
              "size).")
ENGINE_LOGGER = f"{__package__.rsplit('.', 1)[0]}.inference" if __package__ else "deepstrata.inference"

# The engine's device names (deepstrata.inference.DEVICES), listed here so that the parameters can be built
# without importing the engine, in the order users pick them (auto, then cpu); a test checks the two agree.
DEVICES = ("auto", "cpu", "cuda", "tensorrt", "directml", "coreml", "openvino")
# The engine's output formats (deepstrata.inference.engine.geotiff.FORMATS) in the order of the OUTPUT_FORMAT choices.
OUTPUT_FORMATS = ("cog", "gtiff")
ADVANCED = ProcessingParameterFlag.Advanced


@contextmanager
def engine_errors() -> Iterator[None]:
    """Turn the engine's typed errors into QgsProcessingException, once, keeping their message."""
    from ..inference import DeepStrataError

    try:
        yield
    except DeepStrataError as exc:
        raise QgsProcessingException(str(exc)) from exc


class FeedbackAdapter:
    """The engine's plain callables and log records, routed to a QgsProcessingFeedback.

    Used as a context manager, it also forwards what the engine says from this thread while it runs, as it
    happens: its warnings (logged) to the log, its notes (scale, resampling, tile count) to the log, and what it
    does now as the progress text (engine/progress.py); `warnings()` pushes the warnings not seen yet.
    """

    # QGIS's dialog writes every progress text into its log too: a text that differs from the last one shown only
    # in its numbers ("Tile 37 of 120" after "Tile 12 of 120") is shown at most every STAGE_SECONDS; others at once.
    STAGE_SECONDS = 5.0

    def __init__(self, feedback: QgsProcessingFeedback | None) -> None:
        self.feedback = feedback if feedback is not None else QgsProcessingFeedback()
        self._seen: set[str] = set()
        self._handler: _FeedbackLogHandler | None = None
        self._stack = ExitStack()
        self._stage = ("", 0.0)  # the last progress text shown, without its numbers, and when

    def on_progress(self, fraction: float) -> None:
        self.feedback.setProgress(100.0 * min(1.0, max(0.0, float(fraction))))

    def is_cancelled(self) -> bool:
        return bool(self.feedback.isCanceled())

    def info(self, message: str) -> None:
        self.feedback.pushInfo(message)

    def warning(self, message: str) -> None:
        if message in self._seen:
            return
        self._seen.add(message)
        self.feedback.pushWarning(message)

    def warnings(self, messages: "list[str] | tuple[str, ...]") -> None:
        for message in messages:
            self.warning(message)

    def doing(self, text: str) -> None:
        """The progress text: what the run does now."""
        kind, now = re.sub(r"\d+", "#", text), time.monotonic()
        if kind == self._stage[0] and now - self._stage[1] < self.STAGE_SECONDS:
            return
        self._stage = (kind, now)
        self.feedback.setProgressText(text)

    def told(self, kind: str, text: str) -> None:
        """The engine's listener (progress.telling): notes to the log, stages as the progress text."""
        if kind == "note":
            self.info(text)
        else:
            self.doing(text)

    def __enter__(self) -> "FeedbackAdapter":
        from ..inference.engine.progress import telling

        self._handler = _FeedbackLogHandler(self)
        logging.getLogger(ENGINE_LOGGER).addHandler(self._handler)
        self._stack.enter_context(telling(self.told))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self._handler is not None:
            logging.getLogger(ENGINE_LOGGER).removeHandler(self._handler)
            self._handler = None


class _FeedbackLogHandler(logging.Handler):
    """Warnings logged by the engine in the thread that runs the algorithm (not by concurrent runs)."""

    def __init__(self, adapter: FeedbackAdapter) -> None:
        super().__init__(logging.WARNING)
        self.adapter = adapter
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            self.adapter.warning(record.getMessage())
        except Exception:  # noqa: BLE001 (a log handler must never raise)
            self.handleError(record)


class DeepStrataAlgorithm(QgsProcessingAlgorithm):
    """Base of the DeepStrata algorithms: one group, the plugin icon, and no run without onnxruntime."""

    ICON = "deepstrata.svg"
    OUTPUT_FORMAT = "OUTPUT_FORMAT"
    DASK = "DASK"

    def tr(self, text: str) -> str:
        return tr(text)

    def createInstance(self) -> "DeepStrataAlgorithm":  # noqa: N802 (QGIS API)
        return type(self)()

    def group(self) -> str:
        return self.tr("Deep learning")

    def groupId(self) -> str:  # noqa: N802 (QGIS API)
        return "deeplearning"

    def icon(self) -> QIcon:
        return icon(self.ICON)

    def helpUrl(self) -> str:  # noqa: N802 (QGIS API)
        return ""

    def createCustomParametersWidget(self, parent=None):  # noqa: N802 (QGIS API)
        """QGIS's algorithm dialog, sized to the parameters when shown (dialog.py); None where Processing's
        dialogs are not available (then QGIS makes its own)."""
        try:
            from .dialog import FittedAlgorithmDialog
        except ImportError:
            return None
        return FittedAlgorithmDialog(self, parent=parent)

    def canExecute(self) -> "tuple[bool, str]":  # noqa: N802 (QGIS API)
        problem = onnxruntime_problem()
        return (False, self.tr(problem)) if problem else (True, "")

    def add(self, parameter: QgsProcessingParameterDefinition, help_text: str, advanced: bool = False) -> None:
        """addParameter with its help text (tooltips, the modeler) and, for tuning knobs, the advanced flag."""
        parameter.setHelp(self.tr(help_text))
        if advanced:
            parameter.setFlags(parameter.flags() | ADVANCED)
        self.addParameter(parameter)

    def add_output_format(self) -> None:
        """The advanced OUTPUT_FORMAT choice of the algorithms that write rasters (RunOptions.output_format)."""
        self.add(QgsProcessingParameterEnum(self.OUTPUT_FORMAT, self.tr("Raster output format"),
                                            options=[self.tr("Cloud-Optimized GeoTIFF with overviews"),
                                                     self.tr("Plain tiled GeoTIFF (no overviews)")], defaultValue=0),
                 "Cloud-Optimized GeoTIFF (the default): internal overviews (nearest for classes and masks, average "
                 "for scores) make a large result draw at once at any scale, and web servers can read it in parts. "
                 "Plain tiled GeoTIFF: no overviews, a little faster to write. The pixels are the same.",
                 advanced=True)

    def add_cluster(self) -> None:
        """The advanced DASK parameter of the algorithms that run a model over a raster (RunOptions.cluster)."""
        self.add(QgsProcessingParameterString(self.DASK, self.tr("Dask cluster (scheduler address)"), defaultValue="",
                                              optional=True),
                 "Compute the tiles on a Dask cluster instead of this machine: local (one worker process per "
                 "core), local:N, a scheduler address such as tcp://host:8786, or a scheduler file (.json). The "
                 "workers need this DeepStrata version and must reach the input; the output is written here and "
                 "equals a run without a cluster. Empty: this machine. Needs dask[distributed] (Check and install "
                 "dependencies). See docs/scale-out.md.", advanced=True)

    def cluster(self, parameters, context: QgsProcessingContext) -> str | None:
        """The DASK parameter: a cluster address, or None for this machine."""
        return self.parameterAsString(parameters, self.DASK, context).strip() or None

    def output_format(self, parameters, context: QgsProcessingContext) -> str:
        """'cog' or 'gtiff', from OUTPUT_FORMAT."""
        return OUTPUT_FORMATS[self.parameterAsEnum(parameters, self.OUTPUT_FORMAT, context)]

    def optional_int(self, parameters, key: str, context: QgsProcessingContext) -> int | None:
        """An optional integer parameter: None when empty or 0."""
        if parameters.get(key) in (None, ""):
            return None
        return self.parameterAsInt(parameters, key, context) or None

    def input_raster(self, parameters, context: QgsProcessingContext) -> "tuple[QgsRasterLayer, str]":
        """The INPUT raster layer and the file GDAL opens for it."""
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        if layer is None:
            raise QgsProcessingException(input_problem(parameters.get("INPUT"))
                                         or self.invalidRasterError(parameters, "INPUT"))
        return layer, gdal_path(layer)

    def checkParameterValues(self, parameters, context: QgsProcessingContext):  # noqa: N802 (QGIS API)
        """QGIS's checks, with the reason an INPUT raster cannot be loaded (missing, empty, not a raster, which
        driver failed) instead of only "Could not load source layer"."""
        ok, message = super().checkParameterValues(parameters, context)
        if ok or self.parameterDefinition("INPUT") is None:
            return ok, message
        if self.parameterAsRasterLayer(parameters, "INPUT", context) is None:
            problem = input_problem(parameters.get("INPUT"))
            if problem:
                return False, problem
        return ok, message

    def parameters_for_provenance(self, parameters) -> dict:
        """The algorithm and its plain parameter values, stored in every output's metadata."""
        plain = {k: v for k, v in parameters.items() if isinstance(v, (str, int, float, bool, list, tuple))}
        return {"algorithm": f"deepstrata:{self.name()}", **plain}

    def prepareAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> bool:
        """Note where the outputs go (on the main thread), so that layers already open there reload afterwards."""
        self._output_paths = output_paths(parameters.get(d.name()) for d in self.destinationParameterDefinitions())
        return True

    def postProcessAlgorithm(self, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                             feedback: QgsProcessingFeedback) -> dict:
        """Layers of the project that were open on an output's file show the new result (see reload.py)."""
        for layer in reload_layers(getattr(self, "_output_paths", [])):
            if feedback is not None:
                feedback.pushInfo(self.tr(f"Reloaded the open layer '{layer.name()}': it shows the new result."))
        return {}

    def check_can_execute(self) -> None:
        """processAlgorithm's guard: qgis_process and processing.run do not call canExecute() themselves."""
        ok, message = self.canExecute()
        if not ok:
            raise QgsProcessingException(message)


def model_parameter(name: str = "MODEL") -> QgsProcessingParameterFile:
    """An optional .onnx file whose empty value means the bundled model, named in its label (not a path, which
    would be saved into models and scripts); `model_or_default` (support.py) resolves the value."""
    parameter = QgsProcessingParameterFile(name, tr("ONNX model (empty: the bundled '{0}')").format(
        DEFAULT_MODEL_NAME), behavior=ProcessingFileParameterBehavior.File, extension="onnx", optional=True)
    parameter.setMetadata({BUNDLED_DEFAULT: DEFAULT_MODEL})  # dialog.py names it in the empty field
    return parameter


def gdal_path(layer: QgsRasterLayer) -> str:
    """What GDAL opens for `layer`; a clear error for layers that are not GDAL files (WMS, XYZ, PostGIS)."""
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"The input layer '{layer.name()}' comes from the '{layer.providerType()}' data provider, but "
            "DeepStrata reads rasters with GDAL from a file. Save it as a GeoTIFF first (right-click the layer > "
            "Export > Save As...) and run the model on that file.")
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or layer.source()
    if parts.get("layerName") or parts.get("openOptions") or not path:
        return layer.source()
    if not path.startswith("/vsi") and not os.path.exists(path):
        raise QgsProcessingException(
            f"The input layer '{layer.name()}' points to '{path}', which does not exist. Fix the layer's "
            "source (right-click > Change Data Source...) or save it as a GeoTIFF.")
    return path


def input_problem(value) -> "str | None":
    """Why an INPUT value QGIS could not load as a raster layer is not a raster; None if no reason is found."""
    if isinstance(value, QgsRasterLayer) or not isinstance(value, str) or not value:
        return None
    if QgsProject.instance().mapLayer(value) is not None:
        return None
    path = QgsProviderRegistry.instance().decodeUri("gdal", value).get("path") or value
    from ..inference import DeepStrataError
    from ..inference.engine.raster import open_raster

    try:
        open_raster(path)
    except DeepStrataError as exc:
        return str(exc)
    return None


def available() -> list:
    """onnxruntime's execution providers here, for the log; empty if it cannot tell."""
    from ..inference import available_providers

    try:
        return available_providers()
    except Exception:  # noqa: BLE001 (only informative here)
        return []


def load_reported(model_path: str, device: str, report: FeedbackAdapter, overrides=None):
    """Load the model and say in the log which one it is and which execution provider runs it."""
    from ..inference import load_model

    model = load_model(model_path, device, overrides=overrides)
    card = model.card
    report.info(f"Model: {card.name}" + (f" {card.version}" if card.version else "")
                + f" ({os.path.basename(model_path)}), task: {card.task}")
    report.info(f"Execution provider: {model.provider} (device '{device}'; available here: "
                f"{', '.join(available())})")
    report.warnings(model.warnings)
    return model


def report_run(report: FeedbackAdapter, result) -> None:
    """The log line every run ends with: provider, tiles, size, time, input bands."""
    bands = ", ".join(map(str, result.bands or []))
    report.info(f"Ran on {result.provider}: {result.tiles} tiles, {result.width} x {result.height} pixels, "
                f"{result.seconds:.2f} s" + (f"; input bands {bands}." if bands else "."))
