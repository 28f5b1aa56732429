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
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
)

from .base import (DEVICES, DeepStrataAlgorithm, FeedbackAdapter, default_model, engine_errors, load_reported,
                   report_run)
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
    ICON = "run_model.svg"

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
            "Confidence: optionally also write the winning class probability (0..1) per pixel.\n\n"
            "The Provider output names the execution provider that actually ran."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster layer")),
                  "A raster layer read from a file by GDAL (GeoTIFF, VRT, ...).")
        # Optional, falling back to the bundled model: qgis_process (3.22) ignores the default of a required file.
        model = QgsProcessingParameterFile(self.MODEL, self.tr("ONNX model"),
                                           behavior=QgsProcessingParameterFile.Behavior.File, extension="onnx",
                                           defaultValue=default_model(), optional=True)
        self.add(model, "A .onnx file with a DeepStrata model card (or Deepness metadata). Empty: the model "
                         "bundled with the plugin (landforms from a 30 m DEM).")
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
            number = QgsProcessingParameterNumber(key, self.tr(label), QgsProcessingParameterNumber.Type.Integer,
                                                  optional=True, minValue=0)
            self.add(number, help_text, advanced=True)
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Model output")),
                  "GeoTIFF with the model's classes, values or scores; a QML style is written beside it.")
        self.add(QgsProcessingParameterRasterDestination(self.CONFIDENCE, self.tr("Confidence (0..1)"),
                                                          optional=True, createByDefault=False),
                  "Optional Float32 raster: the probability of the winning class (class models only).")
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))

    # ------------------------------------------------------------------ running
    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict:
        self.check_can_execute()
        from ..inference import RunOptions, run_model

        layer, input_path = self.input_raster(parameters, context)
        model_path = self.parameterAsFile(parameters, self.MODEL, context) or default_model()
        if not model_path:
            raise QgsProcessingException(self.tr("No model given and none is bundled: choose an .onnx file for "
                                                 "'ONNX model'."))
        options = RunOptions(
            bands=self.parameterAsInts(parameters, self.BANDS, context) or None,
            extent=self._extent(parameters, context, layer),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            tile_size=self.optional_int(parameters, self.TILE_SIZE, context),
            batch_size=self.optional_int(parameters, self.BATCH_SIZE, context),
            overlap=self.optional_int(parameters, self.OVERLAP, context),
            confidence_path=self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None,
        )
        output_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with FeedbackAdapter(feedback) as report, engine_errors():
            model = load_reported(model_path, options.device, report)
            card = model.card
            result = run_model(model, input_path, output_path, options,
                               on_progress=report.on_progress, is_cancelled=report.is_cancelled)
            report.warnings(result.warnings)
        report_run(report, result)
        if result.classes:
            report.info("Classes: " + ", ".join(f"{c.value}: {c.name}" for c in result.classes))
        title = f"{card.name} - {layer.name()}"
        style_on_load(context, result.output_path, result.style_path, title)
        style_on_load(context, result.confidence_path, result.confidence_style_path,
                      f"{card.name} confidence - {layer.name()}")
        return {self.OUTPUT: result.output_path, self.CONFIDENCE: result.confidence_path,
                self.PROVIDER: result.provider}

    def _extent(self, parameters, context: QgsProcessingContext, layer: QgsRasterLayer):
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        if rect.isNull() or rect.isEmpty():
            return None
        return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
