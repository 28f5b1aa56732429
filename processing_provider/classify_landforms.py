"""deepstrata:classifylandforms: the ten geomorphon landforms of a DEM, in any CRS, with class statistics."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProcessingParameterBand

from .base import engine_errors
from .class_outputs import ClassWorkflow
from .workflow import describe

if TYPE_CHECKING:
    from ..inference import Model


class ClassifyLandformsAlgorithm(ClassWorkflow):
    BAND = "BAND"
    DEFAULT_MODEL = "landforms_geomorphon.onnx"
    WHAT = "Landforms"
    ICON = "landforms.svg"
    MODEL_HELP = ("A landform model: an .onnx with a DeepStrata card for a 1-band DEM. Empty: the bundled geomorphon "
                  "network, which works at any cell size.")

    def name(self) -> str:
        return "classifylandforms"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Classify landforms")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Classifies a DEM into the ten geomorphon landforms (ridge, valley, slope, ...).")

    def tags(self) -> list:
        return self.tr("landforms,geomorphons,geomorphology,terrain,dem,elevation,ridge,valley,classification,"
                       "deep learning,cnn,onnx").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Classifies every cell of a digital elevation model into the ten geomorphon landforms of Jasiewicz & "
            "Stepinski (2013): flat, peak, ridge, shoulder, spur, slope, hollow, footslope, valley, pit.\n\n"
            "The DEM can be in any CRS, geographic (EPSG:4326) included, with elevations in metres, at any cell "
            "size from 1 m lidar to 1 km grids. The bundled model works on the DEM's own cells: it computes the "
            "geomorphon lines of sight out to the search distance in its graph. The search distance (metres) sets "
            "the scale; empty, it is 10 cells of the DEM. The log states it in metres and cells when the run "
            "starts. A distance beyond the model's reach (24 cells) is met by averaging the DEM to coarser cells "
            "and bringing the classes back onto its grid. Nodata and the raster's edge end a line of sight; a line "
            "cut short is completed from the opposite one, so edges and voids get no invented ridges or valleys.\n\n"
            "Outputs: the landform raster (styled, with a legend), an optional confidence raster, a class "
            "statistics table (class, pixels, area in m² and ha, percent; also printed in the log) and optional "
            "landform polygons.\n\n"
            "Elevation band: the band that holds elevations; needed only for a multi-band raster.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        self.add_common("A DEM: one band of elevations in metres, any CRS (geographic included).")
        self.add(QgsProcessingParameterBand(self.BAND, self.tr("Elevation band"), None, self.INPUT, optional=True),
                 "The band holding elevations. Empty: band 1 of a single-band DEM.")
        self.add_search_distance("the geomorphons' line-of-sight length (r.geomorphon's search with -m). "
                                 "Longer finds broader ridges and valleys, shorter finer ones.")
        self.add_class_outputs()

    def check_model(self, model: "Model", path: str) -> None:
        card = model.card
        if card.task not in ("segmentation", "classification") or len(card.input.bands) != 1:
            raise QgsProcessingException(
                f"'{card.name}' is {describe(model)}; Classify landforms "
                "needs a class model for a 1-band DEM, such as the bundled landforms_geomorphon.onnx (leave 'Model' "
                "empty). Use 'Run ONNX model on raster' for other models.")

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..inference import RunOptions
        from ..inference.workflows.inspect import raster_facts

        with engine_errors():
            run = self.start(parameters, context, feedback)
            facts = raster_facts(run.path)
            band = self.parameterAsInt(parameters, self.BAND, context) if parameters.get(self.BAND) else None
            if facts.looks_like_rgb():
                raise QgsProcessingException(
                    f"'{run.title}' looks like an RGB image ({facts.bands} {facts.data_type} bands), not a DEM: "
                    "Classify landforms needs elevations in metres in one band. Choose a DEM layer (for example "
                    "SRTM, Copernicus DEM or lidar).")
            if band is None and facts.bands > 1:
                raise QgsProcessingException(
                    f"'{run.title}' has {facts.bands} bands; choose the one that holds elevations with "
                    "'Elevation band'.")
            options = RunOptions(bands=[band or 1], confidence_path=run.outputs[self.CONFIDENCE] or None,
                                 search_m=self.search_distance(parameters, context))
            with run.report, run.staging() as stage:
                done = self.run_engine(run, run.outputs[self.OUTPUT], options, stage)
                stats = self.finish_classes(run, done, stage)
            return self.publish_classes(parameters, context, run, done, stats)
