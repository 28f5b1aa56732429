"""deepstrata:runmodel: run an ONNX model over a raster layer and write a GeoTIFF."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
)

from ..compat import ProcessingNumberParameterType
from ..support import model_or_default, tr
from .base import (DEVICES, MODEL_HELP, DeepStrataAlgorithm, FeedbackAdapter, engine_errors, load_reported,
                   model_parameter, report_run)
from .outputs import resolve_outputs
from .placement import RANK_CONFIDENCE, RANK_VALUES, RunLayers
from .styling import style_on_load


class RunModelAlgorithm(DeepStrataAlgorithm):
    INPUT = "INPUT"
    MODEL = "MODEL"
    BANDS = "BANDS"
    EXTENT = "EXTENT"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    BATCH_SIZE = "BATCH_SIZE"
    OVERLAP = "OVERLAP"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    PROVIDER = "PROVIDER"
    RESOLUTION = "RESOLUTION"
    TASK = "TASK"
    CLASSES = "CLASSES"
    THRESHOLD = "THRESHOLD"
    SMOOTHING = "SMOOTHING"
    ICON = "run_model.svg"
    TASKS = ("", "segmentation", "regression")

    def name(self) -> str:
        return "runmodel"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Run ONNX model on raster")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Runs a deep-learning model (ONNX with a DeepStrata model card) over a raster, tile by tile.")

    def tags(self) -> list:
        return self.tr("deep learning,onnx,inference,model,raster,segmentation,classification,regression,"
                       "anomaly,landforms,geology,gpu").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Runs an ONNX deep-learning model over a raster layer and writes a GeoTIFF with the same grid and CRS "
            "as the input (or as the chosen extent).\n\n"
            "The model's card (stored inside the .onnx file) says which bands it expects, how to normalise them, "
            "its tile size and its classes, so most runs need only an input layer and a model. Segmentation and "
            "classification models write a class raster styled with the model's class names and colours; "
            "regression models write Float32 values; anomaly models write a calibrated anomaly score.\n\n"
            "Input layer: a raster read by GDAL from a file (GeoTIFF, VRT, ...). Nodata pixels stay nodata.\n"
            "Bands: the raster bands in the model's channel order; empty = matched by the card's band names, "
            "else bands 1..N.\n"
            "Extent: process only this area (converted to the raster's CRS); empty = the whole raster.\n"
            "Device: 'auto' uses the best onnxruntime execution provider on this machine (a GPU when "
            "onnxruntime-gpu and its drivers are installed) and falls back to CPU with a warning.\n"
            "Tile size, batch size, overlap: 0 or empty = the model card's values.\n"
            "Confidence: optionally also write the winning class probability (0..1) per pixel.\n"
            "Pixel size: by default the raster is resampled to the model's pixel size when its card gives one and "
            "the raster's differs by more than 25 % (as Deepness does), and the outputs come back on the raster's "
            "grid; or run on the raster's own pixels.\n\n"
            "Output format: a Cloud-Optimized GeoTIFF with overviews (nearest for classes, average for scores), "
            "or a plain tiled GeoTIFF.\n\n"
            "Models made for Deepness run as Deepness runs them. A model that carries neither a card nor Deepness "
            "metadata needs its Task (and, if you like, Class names: 'water,land'; outputs separated by ';'). "
            "Class threshold and Median filter override the model's (Deepness: probability threshold and "
            "'remove small segments').\n\n"
            "The Provider output names the execution provider that actually ran."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster layer")),
                  "A raster layer read from a file by GDAL (GeoTIFF, VRT, ...).")
        self.add(model_parameter(self.MODEL), MODEL_HELP)
        self.add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands in model channel order"), None, self.INPUT,
                                             optional=True, allowMultiple=True),
                  "One raster band per model input channel, in order. Empty: bands are matched by the card's "
                  "band names (e.g. B4, elevation), or 1..N.")
        self.add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent to process"), optional=True),
                  "Only this area is processed and written. Empty: the whole raster.")
        self.add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), options=list(DEVICES),
                                             defaultValue=0),
                  "auto: the best execution provider available (GPU first, then CPU).", advanced=True)
        for key, label, help_text in (
                (self.TILE_SIZE, "Tile size (pixels, 0 = from the model card)",
                 "Edge of the square tiles fed to the model. Larger tiles are faster but use more memory."),
                (self.BATCH_SIZE, "Batch size (tiles per run, 0 = automatic)",
                 "How many tiles are sent to the model at once."),
                (self.OVERLAP, "Tile overlap (pixels, 0 = from the model card)",
                 "Pixels shared by neighbouring tiles, blended smoothly; at least twice the card's margin.")):
            number = QgsProcessingParameterNumber(key, self.tr(label), ProcessingNumberParameterType.Integer,
                                                  optional=True, minValue=0)
            self.add(number, help_text, advanced=True)
        self.add(QgsProcessingParameterEnum(self.RESOLUTION, self.tr("Pixel size to run at"),
                                            options=[self.tr("The model's (when its card gives one)"),
                                                     self.tr("The raster's own")], defaultValue=0),
                 "The model's: the raster is resampled to the pixel size the model was trained at and the outputs "
                 "come back on the raster's grid. The raster's own: the model sees the raster's pixels.",
                 advanced=True)
        self.add(QgsProcessingParameterEnum(self.TASK, self.tr("Task (for a model without a card)"),
                                            options=[self.tr("From the model"), self.tr("Segmentation"),
                                                     self.tr("Regression")], defaultValue=0),
                 "What a model that carries neither a DeepStrata card nor Deepness metadata computes.",
                 advanced=True)
        self.add(QgsProcessingParameterString(self.CLASSES, self.tr("Class names (for a model without a card)"),
                                              optional=True),
                 "Comma-separated class names in channel order, e.g. 'water,land'; several outputs separated by "
                 "';'. Empty: channel_0, channel_1, ...", advanced=True)
        threshold = QgsProcessingParameterNumber(self.THRESHOLD, self.tr("Class probability threshold (empty: the "
                                                                         "model's)"),
                                                 ProcessingNumberParameterType.Double, optional=True,
                                                 minValue=0.0, maxValue=1.0)
        self.add(threshold, "Probabilities below it do not count: where no class reaches it, the first class wins.",
                 advanced=True)
        self.add(QgsProcessingParameterNumber(self.SMOOTHING, self.tr("Median filter over classes (pixels, odd; "
                                                                      "empty: the model's)"),
                                              ProcessingNumberParameterType.Integer, optional=True, minValue=1),
                 "A median filter of this size over the class map removes small segments (Deepness's 'remove "
                 "small segments'); 1 turns it off.", advanced=True)
        self.add_output_format()
        self.add_cluster()
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Model output")),
                  "GeoTIFF (Cloud-Optimized, with overviews) with the model's classes, values or scores; a QML "
                  "style is written beside it.")
        self.add(QgsProcessingParameterRasterDestination(self.CONFIDENCE, self.tr("Confidence (0..1)"),
                                                          optional=True, createByDefault=False),
                  "Optional Float32 raster: the probability of the winning class (class models only).")
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))

    # ------------------------------------------------------------------ running
    def _overrides(self, parameters, context: QgsProcessingContext):
        from ..inference.engine.deepness import CardOverrides

        text = self.parameterAsString(parameters, self.CLASSES, context).strip()
        classes = [[n.strip() for n in group.split(",") if n.strip()] for group in text.split(";")] if text else None
        smoothing = self.optional_int(parameters, self.SMOOTHING, context)
        if smoothing is not None and smoothing % 2 == 0:
            raise QgsProcessingException(f"The median filter must be an odd number of pixels (3, 5, 7, ...), not "
                                         f"{smoothing}.")
        threshold = (self.parameterAsDouble(parameters, self.THRESHOLD, context)
                     if parameters.get(self.THRESHOLD) not in (None, "") else None)
        return CardOverrides(self.TASKS[self.parameterAsEnum(parameters, self.TASK, context)] or None, classes,
                             threshold, smoothing)

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict:
        self.check_can_execute()
        from ..inference import RunOptions, run_model
        from ..inference.engine.staging import Staging
        from ..inference.workflows.resample import run_at_model_resolution

        layer, input_path = self.input_raster(parameters, context)
        model_path = model_or_default(self.parameterAsFile(parameters, self.MODEL, context))
        if not model_path:
            raise QgsProcessingException(self.tr("No model given and none is bundled: choose an .onnx file for "
                                                 "'ONNX model'."))
        outputs = resolve_outputs(self, parameters, context)
        overrides = self._overrides(parameters, context)
        options = RunOptions(
            bands=self.parameterAsInts(parameters, self.BANDS, context) or None,
            extent=self._extent(parameters, context, layer),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            tile_size=self.optional_int(parameters, self.TILE_SIZE, context),
            batch_size=self.optional_int(parameters, self.BATCH_SIZE, context),
            overlap=self.optional_int(parameters, self.OVERLAP, context),
            confidence_path=outputs[self.CONFIDENCE] or None, card=overrides,
            cluster=self.cluster(parameters, context),
            labels={"output": outputs.labels[self.OUTPUT], "confidence": outputs.labels[self.CONFIDENCE]})
        at_model_size = self.parameterAsEnum(parameters, self.RESOLUTION, context) == 0
        with FeedbackAdapter(feedback) as report, engine_errors():
            model = load_reported(model_path, options.device, report, overrides)
            card = model.card
            with Staging(report.is_cancelled, self.parameters_for_provenance(parameters),
                         self.output_format(parameters, context)) as stage:
                if at_model_size:
                    result = run_at_model_resolution(model, input_path, outputs[self.OUTPUT], options,
                                                     report.on_progress, report.is_cancelled, staging=stage).result
                else:
                    result = run_model(model, input_path, outputs[self.OUTPUT], options,
                                       on_progress=report.on_progress, is_cancelled=report.is_cancelled,
                                       staging=stage)
            report.warnings(result.warnings)
        report_run(report, result)
        if result.classes:
            report.info("Classes: " + ", ".join(f"{c.value}: {c.name}" for c in result.classes))
        name = _short_name(card.name)
        title = f"{name} - {layer.name()}"
        layers = RunLayers(title)
        style_on_load(context, result.output_path, result.style_path, title, layers, RANK_VALUES,
                      _legend_title(card))
        style_on_load(context, result.confidence_path, result.confidence_style_path,
                      f"{name} confidence - {layer.name()}", layers, RANK_CONFIDENCE,
                      self.tr("Confidence (probability of the class)"))
        return {self.OUTPUT: result.output_path, self.CONFIDENCE: result.confidence_path,
                self.PROVIDER: result.provider}

    def _extent(self, parameters, context: QgsProcessingContext, layer: QgsRasterLayer):
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        if rect.isNull() or rect.isEmpty():
            return None
        return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())


def _legend_title(card) -> str:
    """The heading of the output's legend in the Layers panel: what it shows, not "Band 1: class (Palette)"."""
    return tr("Anomaly score (robust z-score)") if card.task == "anomaly" else card.name


def _short_name(name: str) -> str:
    """A model's name for layer names, without the card's parenthesis: "Landforms from DEM (geomorphon network,
    10 classes, any scale)" is "Landforms from DEM" (the legend is headed with the whole name)."""
    return name.split(" (", 1)[0].strip() or name
