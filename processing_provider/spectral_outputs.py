"""Map geology's optional spectral outputs: the index layers (ferric iron, ferrous iron, hydroxyl / clay, NDVI,
MNDWI) and the spectral units, written by inference/workflows/spectral.py from the scene and the run's band preset."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputString,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..compat import ProcessingNumberParameterType
from .placement import RANK_INDICES, RANK_UNITS
from .styling import style_on_load

if TYPE_CHECKING:
    from ..inference.engine.staging import Staging
    from ..inference.workflows.presets import InputMapping
    from ..inference.workflows.resample import ResampledRun
    from ..inference.workflows.spectral import SpectralResult
    from .workflow import Run, WorkflowAlgorithm

INDICES = "INDICES"
UNITS = "UNITS"
UNITS_K = "UNITS_K"
UNITS_LEGEND = "UNITS_LEGEND"
MAX_K = 20

HELP = ("Index layers (optional): a 5-band Float32 GeoTIFF of the layers geologists read, computed from the scene's "
        "reflectance (the band preset's scaling): 1 ferric iron = red / blue (Segal 1983), 2 ferrous iron = "
        "SWIR1 / NIR + green / red (the ASTER ferrous index of Rowan & Mars 2003 on the same spectral regions), "
        "3 hydroxyl / clay = SWIR1 / SWIR2 (Sabins 1999), 4 NDVI (Rouse et al. 1974), 5 MNDWI (Xu 2006). Ratios "
        "are taken on a log scale; each layer is stretched per scene from its 2nd to its 98th percentile to 0..1 "
        "(values beyond are clipped; the percentiles are in the band metadata). It loads as a colour composite: "
        "red = ferric iron, green = ferrous iron, blue = hydroxyl / clay, so iron-stained ground shows red, clay "
        "alteration blue and both together magenta; pick a single band with a colour ramp in the layer's "
        "symbology to read one layer. Vegetation also raises hydroxyl / clay: read the mineral layers where NDVI is "
        "low.\n\n"
        "Spectral units (optional): an unsupervised map of the scene's distinct surfaces, k-means (k-means++ seeds, "
        "a fixed seed) on the standardised index layers and log reflectances of a pixel sample, with the number of "
        "units chosen from 3 to 12 by the silhouette (or given in 'Number of spectral units'). Each unit has a "
        "colour and a legend entry (its share of the scene, its high index layers, the geology class most of it "
        "has); the log lists the mean index layers per unit and says how k was chosen. A start for "
        "reconnaissance mapping: the units are spectrally distinct surfaces, not named rocks.")


@dataclass
class SpectralRequest:
    """The spectral outputs asked for, checked before the model runs."""

    indices: str
    units: str
    k: int  # 0: chosen
    mult: list[float]
    add: list[float]
    bands: list[int]
    sensor: str


def add_spectral_outputs(alg: "WorkflowAlgorithm") -> None:
    alg.add(QgsProcessingParameterRasterDestination(
        INDICES, alg.tr("Index layers (ferric, ferrous, hydroxyl, NDVI, MNDWI)"), optional=True,
        createByDefault=False),
        "Optional 5-band Float32 GeoTIFF: ferric iron, ferrous iron, hydroxyl / clay, NDVI and MNDWI, each stretched "
        "0..1 over the scene; loads as a ferric / ferrous / clay colour composite.")
    alg.add(QgsProcessingParameterRasterDestination(UNITS, alg.tr("Spectral units"), optional=True,
                                                    createByDefault=False),
            "Optional unsupervised map of the scene's spectrally distinct surfaces (k-means), with a legend per unit.")
    alg.add(QgsProcessingParameterNumber(UNITS_K, alg.tr("Number of spectral units (0 = chosen automatically)"),
                                         ProcessingNumberParameterType.Integer, defaultValue=0, minValue=0,
                                         maxValue=MAX_K, optional=True),
            "How many units the spectral units map has. 0: chosen from 3 to 12 by the highest silhouette on a "
            "pixel sample (the log says which k and why).", advanced=True)
    alg.addOutput(QgsProcessingOutputString(
        UNITS_LEGEND, alg.tr("Spectral units legend (JSON: unit, pixels, percent, mean index layers, geology)")))


def spectral_request(alg: "WorkflowAlgorithm", parameters: dict[str, Any], context: QgsProcessingContext,
                     run: "Run", mapping: "InputMapping") -> SpectralRequest | None:
    """What to write, or None when neither output is asked for; the engine's InputError when the model's input
    cannot give reflectance."""
    from ..inference.workflows.indices import reflectance_rescaling, sensor_of

    indices, units = run.outputs[INDICES], run.outputs[UNITS]
    if not indices and not units:
        return None
    k = alg.parameterAsInt(parameters, UNITS_K, context) if parameters.get(UNITS_K) not in (None, "") else 0
    mult, add = reflectance_rescaling(run.model.card, mapping.scale, mapping.offset)
    if mapping.scene_relative:
        run.report.info("The index layers and units are computed on scene-relative values (the product is not "
                        "known): ratios between surfaces hold, absolute index values do not.")
    sensor = sensor_of(f"{mapping.sensor} {mapping.preset}")  # "Landsat 7 ETM+ landsat_l1"
    return SpectralRequest(indices, units, k, mult.tolist(), add.tolist(), list(mapping.bands), sensor)


def write_spectral_outputs(request: SpectralRequest | None, run: "Run", done: "ResampledRun", stage: "Staging",
                           valid_mask: str | None = None) -> "SpectralResult | None":
    """Inside the run's staging: the index layers and the units, the units' legend to the log. `valid_mask`: the
    run's cloud mask on the scene's grid (0 = masked), as handed to the engine."""
    if request is None:
        return None
    from ..inference.workflows.indices import SENSORS
    from ..inference.workflows.spectral import format_units, plan_spectral, write_spectral

    what = " and ".join(n for n, p in (("index layers", request.indices), ("spectral units", request.units)) if p)
    run.report.info(f"Writing the {what} (reflectance on the {SENSORS[request.sensor][0]} bands)...")
    plan = plan_spectral(run.path, request.bands, request.mult, request.add, request.sensor,
                         units=bool(request.units), k=request.k or None, valid_mask=valid_mask or "")
    result = write_spectral(run.path, plan, request.indices, request.units, done.result.output_path,
                            run.model.card.output.classes, stage, run.report.is_cancelled, run.report.on_progress,
                            valid_mask=valid_mask or "")
    if request.units:
        run.report.info(f"Spectral units: {plan.how}.\n" + format_units(result.units))
    return result


def publish_spectral(context: QgsProcessingContext, run: "Run", result: "SpectralResult | None",
                     results: dict[str, Any]) -> None:
    """After the commit: the results, and the names and styles of the layers Processing loads."""
    results[INDICES] = result.indices_path if result and result.indices_path else None
    results[UNITS] = result.units_path if result and result.units_path else None
    results[UNITS_LEGEND] = json.dumps([_unit_dict(u) for u in result.units]) if result else "[]"
    if result is None:
        return
    layers = run.layers("Geology")
    style_on_load(context, result.indices_path, result.indices_style, run.named("Geology index layers"), layers,
                  RANK_INDICES)
    style_on_load(context, result.units_path, result.units_style, run.named("Spectral units"), layers,
                  RANK_UNITS, "Spectral units")


def _unit_dict(unit: Any) -> dict[str, Any]:
    return {"unit": unit.value, "pixels": unit.pixels, "percent": round(unit.percent, 4),
            "means": {k: (round(v, 4) if math.isfinite(v) else None) for k, v in unit.means.items()},
            "geology": unit.geology or None, "geology_percent": round(unit.geology_percent, 2),
            "color": unit.color, "label": unit.label}
