"""deepstrata:mapgeology: surface-material units (water, vegetation, iron oxides, clay, ...) of a Landsat 4-9 or
Sentinel-2 scene, with band presets that recognise and scale each product to what the model expects."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
)

from .base import engine_errors
from .class_outputs import ClassWorkflow
from .sensor_inputs import add_mtl, add_scene_parameters, apply_mask, scene_arguments, scene_reads
from .spectral_outputs import HELP as SPECTRAL_HELP, add_spectral_outputs, publish_spectral, spectral_request
from .spectral_outputs import write_spectral_outputs
from .workflow import describe

if TYPE_CHECKING:
    from ..inference import Model


class MapGeologyAlgorithm(ClassWorkflow):
    PRESET = "PRESET"
    BANDS = "BANDS"
    MTL = "MTL"
    DEFAULT_MODEL = "geology.onnx"
    WHAT = "Geology"
    ICON = "geology.svg"
    MODEL_HELP = ("A class model for multispectral imagery with a DeepStrata card. Empty: the bundled geology "
                  "model (blue, green, red, NIR, SWIR1, SWIR2 in reflectance: Landsat 4-9 and Sentinel-2 through "
                  "the presets).")

    def name(self) -> str:
        return "mapgeology"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Map geology")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Maps surface materials (water, vegetation, iron oxides, clay, bare rock) from Landsat "
                       "4-9 or Sentinel-2 bands.")

    def tags(self) -> list:
        return self.tr("geology,mineral,alteration,iron oxide,ferric,ferrous,clay,hydroxyl,landsat,sentinel-2,"
                       "multispectral,band ratio,spectral library,classification,deep learning,onnx").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Maps the surface materials exploration geologists look for: water, vegetation, ferric iron oxides "
            "(hematite, goethite, jarosite), ferrous iron, clay / hydroxyl alteration (alunite, kaolinite, micas, "
            "smectites, chlorite, carbonates), other bare rock and soil, and cloud, pixel by pixel, with a network "
            "trained on reflectance spectra of minerals, rocks, soils, vegetation and water from public spectral "
            "libraries, seen through each sensor's bands (see Model info).\n\n"
            "Band preset: how the scene's bands map onto the model's six (blue, green, red, NIR, SWIR1, SWIR2) and "
            "how its values are scaled to the model's unit. 'Automatic' recognises Landsat 4/5 TM, 7 ETM+, 8/9 OLI "
            "and Sentinel-2 and their products (Level-1 DN, Level-2 and Collection 1 surface reflectance, TOA "
            "reflectance, Sentinel-2 L1C / L2A before and after the 04.00 offset) from the MTL (given or beside "
            "the scene), the product metadata, the file and band names, the band count and the values; the log "
            "says which sensor and product it assumed and why. A scene whose product cannot be told is scaled "
            "scene-relative (each band's range mapped onto typical reflectance) and the log says so: pick the "
            "preset, give the MTL or the Sentinel-2 offset for exact values. Landsat 4/5/7 without an MTL uses "
            "typical gains (Chander et al. 2009).\n\n"
            "Cloud / QA mask (advanced): a Landsat QA_PIXEL / BQA or Sentinel-2 SCL raster, given or found "
            "beside the scene; clouds, shadows, cirrus and fill become nodata.\n\n"
            "Bands: optional, the six bands in the model's order (blue, green, red, NIR, SWIR1, SWIR2); empty = "
            "chosen from the preset and the band names or count.\n\n"
            "Outputs: the class raster (styled, with a legend), optional confidence, a class statistics table "
            "and optional polygons per class.\n\n" + SPECTRAL_HELP)

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        from ..inference.workflows.presets import PRESETS

        self.add_common("A multispectral scene: Landsat 4/5 TM, 7 ETM+, 8/9 OLI or Sentinel-2 (a stack of at least "
                        "the six bands blue, green, red, NIR, SWIR1, SWIR2).")
        self.add(QgsProcessingParameterEnum(self.PRESET, self.tr("Band preset"),
                                            options=[self.tr(label) for label in PRESETS.values()], defaultValue=0),
                 "Which product the scene is, so its bands are picked and scaled as the model expects.")
        self.add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands (blue, green, red, NIR, SWIR1, SWIR2)"), None,
                                            self.INPUT, optional=True, allowMultiple=True),
                 "The six bands in the model's order. Empty: picked by the preset from band names or count.")
        add_mtl(self)
        add_scene_parameters(self)
        self.add_class_outputs()
        add_spectral_outputs(self)

    def check_model(self, model: "Model", path: str) -> None:
        card = model.card
        if card.task not in ("segmentation", "classification") or len(card.input.bands) < 3:
            raise QgsProcessingException(
                f"'{card.name}' is {describe(model)}; Map geology needs a "
                "class model for multispectral bands, such as the bundled geology.onnx (leave 'Model' empty).")

    def extra_reads(self, parameters: dict[str, Any], context: QgsProcessingContext, path: str) -> list:
        """The Landsat MTL file and the cloud mask the run reads (given, or found beside the raster)."""
        return scene_reads(self, parameters, context, path)

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..inference import RunOptions
        from ..inference.workflows.presets import PRESETS, resolve_preset

        with engine_errors():
            run = self.start(parameters, context, feedback)
            preset = list(PRESETS)[self.parameterAsEnum(parameters, self.PRESET, context)]
            mapping = resolve_preset(run.path, run.model.card, preset,
                                     self.parameterAsInts(parameters, self.BANDS, context) or None,
                                     **scene_arguments(self, parameters, context))
            run.report.info(mapping.description)
            spectral = spectral_request(self, parameters, context, run, mapping)
            options = RunOptions(bands=mapping.bands, input_scale=mapping.scale, input_offset=mapping.offset,
                                 confidence_path=run.outputs[self.CONFIDENCE] or None)
            with run.report, run.staging() as stage:
                apply_mask(run, mapping, options, stage, run.outputs[self.OUTPUT])
                done = self.run_engine(run, run.outputs[self.OUTPUT], options, stage)
                stats = self.finish_classes(run, done, stage)
                found = write_spectral_outputs(spectral, run, done, stage, options.valid_mask)
            results = self.publish_classes(parameters, context, run, done, stats)
            publish_spectral(context, run, found, results)
            return results
