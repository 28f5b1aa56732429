"""deepstrata:detectanomalies: a calibrated anomaly score from an autoencoder, a mask where it reaches the
threshold, and anomaly patches as polygons with their area and peak score."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
)

from ..compat import ProcessingNumberParameterType, ProcessingSourceType
from .base import bundled_model, engine_errors
from .sensor_inputs import add_mtl, add_scene_parameters, apply_mask, scene_arguments, scene_reads
from .styling import style_on_load, style_vector_on_load
from .workflow import WorkflowAlgorithm, describe

if TYPE_CHECKING:
    from ..inference import Model

DEM_MODEL = "anomaly_dem.onnx"
SPECTRAL_MODEL = "anomaly_multispectral.onnx"


class DetectAnomaliesAlgorithm(WorkflowAlgorithm):
    BANDS = "BANDS"
    PRESET = "PRESET"
    THRESHOLD = "THRESHOLD"
    MIN_AREA = "MIN_AREA"
    OUTPUT = "OUTPUT"
    OUTPUT_MASK = "OUTPUT_MASK"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    ANOMALY_PIXELS = "ANOMALY_PIXELS"
    ANOMALY_PERCENT = "ANOMALY_PERCENT"
    PATCHES = "PATCHES"
    ICON = "anomalies.svg"
    MODEL_HELP = ("An anomaly (autoencoder) model with a calibrated DeepStrata card. Empty: the bundled terrain "
                  "model for a 1-band DEM, the bundled spectral model for Landsat 4-9 or Sentinel-2 scenes. For "
                  "another sensor, fit one with 'python -m training fit-anomaly RASTER --out MODEL.onnx'.")

    def name(self) -> str:
        return "detectanomalies"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Detect anomalies")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Finds what is unusual in a DEM or a scene: a calibrated score, a mask and anomaly polygons.")

    def tags(self) -> list:
        return self.tr("anomaly,outlier,change,autoencoder,unusual,pits,mounds,quarries,artefacts,gossan,"
                       "multispectral,dem,deep learning,onnx").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Scores every pixel by how badly an autoencoder trained on normal data reconstructs it.\n\n"
            "The score is a robust z-score from the model card's calibration ((error - median) / (1.4826 x MAD) "
            "on held-out normal pixels), so scores compare across scenes: about 0 is ordinary, and the card's "
            "threshold flags about 1 pixel in 1000 of normal data.\n\n"
            "Model: empty picks the bundled model by input: terrain anomalies (pits, mounds, quarries, spikes) "
            "for a 1-band DEM, resampled to its 30 m pixels and back when needed; spectral anomalies for a "
            "Landsat 4-9 or Sentinel-2 scene (band preset, MTL, Sentinel-2 offset and cloud mask as in Map geology).\n"
            "Threshold: the score at and above which a pixel is anomalous; empty = the card's.\n"
            "Minimum area: anomaly polygons smaller than this (m²) are dropped.\n\n"
            "Outputs: the score (Float32, styled ramp), the mask (1 = anomaly, 0 = normal) and optional polygons "
            "of anomaly patches with their area, pixel count, peak and mean score.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        from ..inference.workflows.presets import PRESETS

        self.add_common("Any raster: a DEM, or a multispectral scene, or what your own autoencoder expects.")
        self.add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands in model order"), None, self.INPUT,
                                            optional=True, allowMultiple=True),
                 "The bands feeding the model, in its order. Empty: from the preset, the band names, or 1..N.")
        self.add(QgsProcessingParameterEnum(self.PRESET, self.tr("Band preset (multispectral models)"),
                                            options=[self.tr(label) for label in PRESETS.values()], defaultValue=0),
                 "For models that take Landsat 8/9 OLI bands: which product the scene is (see Map geology).")
        add_mtl(self)
        add_scene_parameters(self)
        threshold = QgsProcessingParameterNumber(self.THRESHOLD, self.tr("Threshold (score; empty = the model's)"),
                                                 ProcessingNumberParameterType.Double, optional=True)
        self.add(threshold, "Pixels scoring at least this are anomalies. Empty: the threshold in the model card.")
        self.add(QgsProcessingParameterNumber(self.MIN_AREA, self.tr("Minimum anomaly area (m²)"),
                                              ProcessingNumberParameterType.Double, defaultValue=0.0,
                                              minValue=0.0),
                 "Anomaly polygons smaller than this are dropped.")
        self.add_search_distance("for terrain anomaly models, the size of the neighbourhood an anomaly stands "
                                 "out from (about the largest anomaly looked for). Ignored by spectral models.")
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Anomaly score")),
                 "Float32 anomaly score on the input's grid, styled with a ramp (a terrain model adds band 2: the "
                 "signed residual in metres, negative for a depression).")
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT_MASK, self.tr("Anomaly mask"), optional=True,
                                                         createByDefault=True),
                 "Byte raster: 1 where the score reaches the threshold, 0 elsewhere, 255 nodata.")
        self.add(QgsProcessingParameterVectorDestination(self.OUTPUT_POLYGONS, self.tr("Anomaly polygons"),
                                                         ProcessingSourceType.VectorPolygon, optional=True,
                                                         createByDefault=False),
                 "Optional patches of anomalous pixels with area_m2, pixels, peak_score and mean_score; from a terrain "
                 "model also relief (depression or rise) and mean_residual (metres).")
        for key, label in ((self.ANOMALY_PIXELS, "Anomalous pixels"), (self.ANOMALY_PERCENT, "Anomalous percent"),
                           (self.PATCHES, "Anomaly polygons written")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def default_model_for(self, path: str) -> str | None:
        from ..inference.workflows.inspect import raster_facts

        bands = raster_facts(path).bands
        return bundled_model(DEM_MODEL if bands == 1 else SPECTRAL_MODEL) if bands == 1 or bands >= 6 else None

    def no_model_message(self, path: str) -> str:
        from ..inference.workflows.inspect import raster_facts

        facts = raster_facts(path)
        return self.tr("No bundled anomaly model fits '{0}' ({1} bands: the bundled ones take a 1-band DEM or a "
                       "Landsat 4-9 / Sentinel-2 scene of at least 6 bands). Choose an autoencoder for 'Model', or "
                       "fit one to this raster: python -m training fit-anomaly '{2}' --out model.onnx").format(
                           facts.name, facts.bands, path)

    def check_model(self, model: "Model", path: str) -> None:
        card = model.card
        if card.task != "anomaly" or card.output.anomaly is None:
            raise QgsProcessingException(
                f"'{card.name}' is {describe(model)}; Detect anomalies needs an anomaly (autoencoder) model with "
                "a calibration in its card. Leave 'Model' empty for the bundled ones, or fit one to your raster "
                "with 'python -m training fit-anomaly RASTER --out MODEL.onnx'.")

    def extra_reads(self, parameters: dict[str, Any], context: QgsProcessingContext, path: str) -> list:
        """The Landsat MTL file and the cloud mask the run reads (given, or found beside the raster)."""
        return scene_reads(self, parameters, context, path)

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..inference import RunOptions
        from ..inference.workflows.anomaly_outputs import anomaly_polygons, write_mask
        from ..inference.workflows.presets import PRESETS, resolve_preset

        with engine_errors():
            run = self.start(parameters, context, feedback)
            spec = run.model.card.output.anomaly
            assert spec is not None
            preset = list(PRESETS)[self.parameterAsEnum(parameters, self.PRESET, context)]
            mapping = resolve_preset(run.path, run.model.card, preset,
                                     self.parameterAsInts(parameters, self.BANDS, context) or None,
                                     **scene_arguments(self, parameters, context))
            if mapping.description:
                run.report.info(mapping.description)
            output = run.outputs[self.OUTPUT]
            options = RunOptions(bands=mapping.bands, input_scale=mapping.scale, input_offset=mapping.offset,
                                 search_m=self.search_distance(parameters, context))
            threshold = (self.parameterAsDouble(parameters, self.THRESHOLD, context)
                         if parameters.get(self.THRESHOLD) not in (None, "") else spec.threshold)
            mask, polygons = run.outputs[self.OUTPUT_MASK], run.outputs[self.OUTPUT_POLYGONS]
            with run.report, run.staging() as stage:
                apply_mask(run, mapping, options, stage, output)
                done = self.run_engine(run, output, options, stage)
                results: dict[str, Any] = {self.OUTPUT: done.result.output_path,
                                           self.PROVIDER: done.result.provider}
                # the mask, when not asked for, is only a step towards the polygons: written in scratch space
                mask_path = mask or os.path.join(stage.folder(output, "scratch"), "mask.tif")
                stats = write_mask(output if mask else stage.current(output), threshold, mask_path,
                                   staging=stage if mask else None, is_cancelled=run.report.is_cancelled)
                run.report.info(f"Threshold {threshold:g}: {stats.flagged} of {stats.valid} pixels anomalous "
                                f"({100 * stats.fraction:.3f} %).")
                results.update({self.OUTPUT_MASK: mask or None, self.ANOMALY_PIXELS: stats.flagged,
                                self.ANOMALY_PERCENT: 100 * stats.fraction})
                if polygons:
                    min_area = self.parameterAsDouble(parameters, self.MIN_AREA, context)
                    count = anomaly_polygons(mask_path, output, polygons, min_area,
                                             is_cancelled=run.report.is_cancelled, staging=stage)
                    run.report.info(f"Anomaly polygons: {count} patches of at least {min_area:g} m² in {polygons}")
                    results.update({self.OUTPUT_POLYGONS: polygons, self.PATCHES: count})
        if polygons:
            style_vector_on_load(context, polygons, f"Anomalies - {run.title}")
        style_on_load(context, output, done.result.style_path, f"Anomaly score - {run.title}")
        if mask:
            style_on_load(context, mask, stats.style_path, f"Anomaly mask - {run.title}")
        return results

