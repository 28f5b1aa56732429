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
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
)

from ..compat import ProcessingNumberParameterType, ProcessingSourceType
from .base import FeedbackAdapter, bundled_model, engine_errors
from .sensor_inputs import add_mtl, add_scene_parameters, apply_mask, scene_arguments, scene_reads
from .placement import RANK_MASK, RANK_VALUES
from .styling import style_on_load, style_vector_on_load
from .workflow import WorkflowAlgorithm, describe

if TYPE_CHECKING:
    from ..inference import Model

DEM_MODEL = "anomaly_dem.onnx"
SPECTRAL_MODEL = "anomaly_multispectral.onnx"
# THRESHOLD_MODE options, in this order for good (the index is the parameter's value)
THRESHOLD_MODES = ("The model's calibrated threshold (fixed: the same score means the same on every scene)",
                   "Recalibrate on this scene: flag the top N % of its pixels")


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
    FIT = "FIT"
    THRESHOLD_MODE = "THRESHOLD_MODE"
    FLAG_PERCENT = "FLAG_PERCENT"
    ICON = "anomalies.svg"
    fitted_path = ""  # the model fitted by this run, when it fits one
    MODEL_HELP = ("An anomaly (autoencoder) model with a calibrated DeepStrata card. Empty: the bundled terrain "
                  "model for a 1-band DEM, the bundled spectral model for Landsat 4-9 or Sentinel-2 scenes. For "
                  "another sensor, tick 'Fit a model to this raster' or run 'Fit anomaly model to this raster'.")

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
            "Fit a model to this raster: fits an anomaly model to the input itself (any sensor and band count; "
            "no PyTorch) instead of using 'Model'; 'Fit anomaly model to this raster' does the same and saves it.\n"
            "Threshold: the score at and above which a pixel is anomalous; empty = the card's (a fixed calibration), "
            "or recalibrated on this scene to flag its top N %.\n"
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
        self.add(QgsProcessingParameterBoolean(self.FIT, self.tr("Fit a model to this raster (ignores 'Model')"),
                                               defaultValue=False),
                 "Fit an anomaly model to the input itself (any sensor and band count; the chosen bands, else all), "
                 "calibrated on it, and run it; no PyTorch needed. To keep the model for other scenes, use 'Fit "
                 "anomaly model to this raster', which saves it.")
        add_mtl(self)
        add_scene_parameters(self)
        threshold = QgsProcessingParameterNumber(self.THRESHOLD, self.tr("Threshold (score; empty = the model's)"),
                                                 ProcessingNumberParameterType.Double, optional=True)
        self.add(threshold, "Pixels scoring at least this are anomalies. Empty: the threshold in the model card, "
                            "or recalibrated on the scene (below).")
        self.add(QgsProcessingParameterEnum(self.THRESHOLD_MODE, self.tr("Threshold when none is given"),
                                            options=[self.tr(mode) for mode in THRESHOLD_MODES], defaultValue=0),
                 "The model's threshold is a fixed calibration: scores compare across scenes, and an ordinary "
                 "scene has about 0.1 % flagged. Recalibrating sets the threshold so that the given share of this "
                 "scene's pixels is flagged, whatever the scene (useful for a scene unlike the model's data).")
        self.add(QgsProcessingParameterNumber(self.FLAG_PERCENT, self.tr("Share flagged when recalibrating (%)"),
                                              ProcessingNumberParameterType.Double, defaultValue=0.1,
                                              minValue=0.0001, maxValue=50.0),
                 "With 'Recalibrate on this scene': the percentage of the scene's valid pixels at or above the "
                 "threshold.")
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
                       "Landsat 4-9 / Sentinel-2 scene of at least 6 bands). Choose an anomaly model for 'Model', or "
                       "tick 'Fit a model to this raster' (or run 'Fit anomaly model to this raster', which also "
                       "saves the model; no PyTorch needed).").format(facts.name, facts.bands)

    def check_model(self, model: "Model", path: str) -> None:
        card = model.card
        if card.task != "anomaly" or card.output.anomaly is None:
            raise QgsProcessingException(
                f"'{card.name}' is {describe(model)}; Detect anomalies needs an anomaly (autoencoder) model with "
                "a calibration in its card. Leave 'Model' empty for the bundled ones, or fit one to your raster "
                "with 'Fit a model to this raster'.")

    def fits(self, parameters: dict[str, Any], context: QgsProcessingContext) -> bool:
        """Whether this run fits a model to its input."""
        return self.parameterAsBoolean(parameters, self.FIT, context)

    def model_destination(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """Where a fitted model is written (Detect anomalies: a temporary file)."""
        from .fit_support import fitted_model_path

        return fitted_model_path("")

    def components(self, parameters: dict[str, Any], context: QgsProcessingContext) -> int:
        from .fit_support import DEFAULT_COMPONENTS

        return DEFAULT_COMPONENTS

    def resolve_model(self, parameters: dict[str, Any], context: QgsProcessingContext, path: str,
                      report: FeedbackAdapter) -> str | None:
        """The chosen or bundled model; with 'Fit', a model fitted to the input here (fit_support.py)."""
        if not self.fits(parameters, context):
            return super().resolve_model(parameters, context, path, report)
        from .fit_support import fit_to_raster

        if not self.parameterDefinition(self.MODEL).isDestination() and \
                self.parameterAsFile(parameters, self.MODEL, context):
            report.warning("'Fit a model to this raster' is ticked: the model chosen for 'Model' is not used.")
        self.fitted_path = self.model_destination(parameters, context)
        plain = self.parameters_for_provenance(parameters)
        command = f"processing.run('deepstrata:{self.name()}', " + \
            repr({k: v for k, v in plain.items() if k != "algorithm"}) + ")"
        fit_to_raster(path, self.fitted_path, self.parameterAsInts(parameters, self.BANDS, context) or None,
                      self.components(parameters, context), report, command)
        return self.fitted_path

    def threshold(self, parameters: dict[str, Any], context: QgsProcessingContext, default: float,
                  score_path: str, report: FeedbackAdapter) -> float:
        """The THRESHOLD given; else the model's, or one recalibrated on the score of this scene."""
        if parameters.get(self.THRESHOLD) not in (None, ""):
            return self.parameterAsDouble(parameters, self.THRESHOLD, context)
        if self.parameterAsEnum(parameters, self.THRESHOLD_MODE, context) != 1:
            return default
        from ..inference.workflows.anomaly_threshold import scene_threshold

        percent = self.parameterAsDouble(parameters, self.FLAG_PERCENT, context)
        value = scene_threshold(score_path, percent / 100.0, report.is_cancelled)
        report.info(f"Threshold recalibrated on this scene: {value:.4g} flags the top {percent:g} % of its pixels "
                    f"(the model's own threshold is {default:g}).")
        return value

    def extra_reads(self, parameters: dict[str, Any], context: QgsProcessingContext, path: str) -> list:
        """The Landsat MTL file and the cloud mask the run reads (given, or found beside the raster)."""
        return scene_reads(self, parameters, context, path)

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..inference import RunOptions
        from ..inference.workflows.anomaly_outputs import anomaly_polygons, style_score, write_mask
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
            mask, polygons = run.outputs[self.OUTPUT_MASK], run.outputs[self.OUTPUT_POLYGONS]
            with run.report, run.staging() as stage:
                apply_mask(run, mapping, options, stage, output)
                done = self.run_engine(run, output, options, stage)
                results: dict[str, Any] = {self.OUTPUT: done.result.output_path,
                                           self.PROVIDER: done.result.provider}
                threshold = self.threshold(parameters, context, spec.threshold, stage.current(output), run.report)
                if threshold != spec.threshold and done.result.style_path:
                    style_score(done.result.style_path, threshold, stage)
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
        layers = run.layers("Anomalies")
        if polygons:
            style_vector_on_load(context, polygons, run.named("Anomalies"), run=layers)
        style_on_load(context, output, done.result.style_path, run.named("Anomaly score"), layers, RANK_VALUES,
                      self.tr("Anomaly score (robust z-score)"))
        if mask:
            style_on_load(context, mask, stats.style_path, run.named("Anomaly mask"), layers, RANK_MASK,
                          self.tr("Anomaly mask (score at least {0:.4g})").format(threshold))
        return results

