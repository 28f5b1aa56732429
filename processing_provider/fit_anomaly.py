"""deepstrata:fitanomaly: fit an anomaly model to the input raster itself (any sensor, any band count), calibrate
it on that raster, write it as a reusable carded .onnx, and run it: the score, mask and polygons of Detect
anomalies (whose run this algorithm shares), without PyTorch."""
from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..compat import ProcessingNumberParameterType, ProcessingSourceType
from .base import DEVICES
from .detect_anomalies import DetectAnomaliesAlgorithm
from .fit_support import DEFAULT_COMPONENTS, fitted_model_path


class FitAnomalyAlgorithm(DetectAnomaliesAlgorithm):
    COMPONENTS = "COMPONENTS"
    ICON = "anomalies.svg"

    def name(self) -> str:
        return "fitanomaly"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Fit anomaly model to this raster")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Fits an anomaly model to any raster, saves it as a reusable .onnx, and maps its anomalies.")

    def tags(self) -> list:
        return self.tr("anomaly,outlier,fit,unsupervised,rx,mahalanobis,hyperspectral,multispectral,landsat,"
                       "sentinel,rgb,terrain,onnx").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Fits an anomaly model to the input raster itself, for any sensor and band count (Landsat 4-9, "
            "Sentinel-2, hyperspectral, RGB, a stack of terrain derivatives), without labels and without PyTorch: "
            "robust whitening on the leading principal components and a trimmed Gaussian mixture of the scene's "
            "background. The score of each pixel is how poorly that background explains it.\n\n"
            "The model is calibrated on this raster (about 0 is ordinary; the threshold flags about 0.1 % of its "
            "pixels), saved as a carded .onnx file you can reuse in Detect anomalies on other scenes of the same "
            "sensor and bands, and run on the input: the score, the mask and optional polygons, as Detect anomalies "
            "writes them.\n\n"
            "Needs the 'onnx' Python package to write the model: 'Check and install dependencies' installs it.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster layer")),
                 "Any raster: the model is fitted to it and then run on it.")
        self.add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands"), None, self.INPUT, optional=True,
                                            allowMultiple=True),
                 "The bands to fit on, in this order (the saved model takes them in the same order). Empty: all.")
        self.add(QgsProcessingParameterNumber(self.COMPONENTS, self.tr("Principal components kept (k)"),
                                              ProcessingNumberParameterType.Integer,
                                              defaultValue=DEFAULT_COMPONENTS, minValue=1),
                 "Leading principal components the model whitens (at most the band count): the weaker ones are "
                 "mostly noise.", advanced=True)
        self.add(QgsProcessingParameterFileDestination(self.MODEL, self.tr("Fitted model (.onnx)"),
                                                       self.tr("ONNX models (*.onnx)"), optional=True,
                                                       createByDefault=True),
                 "The fitted, calibrated model with its card: reuse it as 'Model' in Detect anomalies. Empty: a "
                 "temporary file (the log says where).")
        threshold = QgsProcessingParameterNumber(self.THRESHOLD, self.tr("Threshold (score; empty = the model's)"),
                                                 ProcessingNumberParameterType.Double, optional=True)
        self.add(threshold, "Pixels scoring at least this are anomalies. Empty: the fitted model's (about 0.1 %).")
        self.add(QgsProcessingParameterNumber(self.MIN_AREA, self.tr("Minimum anomaly area (m²)"),
                                              ProcessingNumberParameterType.Double, defaultValue=0.0,
                                              minValue=0.0),
                 "Anomaly polygons smaller than this are dropped.")
        self.add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), options=list(DEVICES), defaultValue=0),
                 "auto: the best execution provider available (GPU first, then CPU); the log says which ran.",
                 advanced=True)
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Anomaly score")),
                 "Float32 anomaly score on the input's grid, styled with a ramp.")
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT_MASK, self.tr("Anomaly mask"), optional=True,
                                                         createByDefault=True),
                 "Byte raster: 1 where the score reaches the threshold, 0 elsewhere, 255 nodata.")
        self.add(QgsProcessingParameterVectorDestination(self.OUTPUT_POLYGONS, self.tr("Anomaly polygons"),
                                                         ProcessingSourceType.VectorPolygon, optional=True,
                                                         createByDefault=False),
                 "Optional patches of anomalous pixels with area_m2, pixels, peak_score and mean_score.")
        for key, label in ((self.ANOMALY_PIXELS, "Anomalous pixels"), (self.ANOMALY_PERCENT, "Anomalous percent"),
                           (self.PATCHES, "Anomaly polygons written")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))

    def fits(self, parameters: dict[str, Any], context: QgsProcessingContext) -> bool:
        return True

    def model_destination(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        return fitted_model_path(self.parameterAsFileOutput(parameters, self.MODEL, context))

    def components(self, parameters: dict[str, Any], context: QgsProcessingContext) -> int:
        return self.parameterAsInt(parameters, self.COMPONENTS, context) or DEFAULT_COMPONENTS

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback) -> dict[str, Any]:
        results = super().processAlgorithm(parameters, context, feedback)
        if not self.fitted_path:
            raise QgsProcessingException("The model was not fitted.")  # defensive: fits() is always True here
        results[self.MODEL] = self.fitted_path
        return results
