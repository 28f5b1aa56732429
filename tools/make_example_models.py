"""Write the graphical-modeler examples in docs/examples/ (*.model3), built with PyQGIS so they can be regenerated.

    .venv/bin/python tools/make_example_models.py [--out docs/examples]

Each model chains a stock QGIS/GDAL step with DeepStrata steps:

* landforms_filled.model3: Fill nodata (gdal:fillnodata) -> Classify landforms (landforms and class statistics).
* anomaly_patches.model3: Detect anomalies -> Extract by expression (native:extractbyexpression): only the anomaly
  patches whose peak score reaches a minimum.

Open them in Processing > Graphical Modeler > Open Model, or run them headless:
    tools/qgis_process run docs/examples/landforms_filled.model3 -- DEM=dem.tif ...
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("GDAL_PAM_ENABLED", "NO")  # no .aux.xml beside the sample checked against
os.environ["QT_HASH_SEED"] = "0"  # the same XML attribute order on every run: regenerating changes nothing

from qgis.core import (  # noqa: E402
    QgsApplication, QgsProcessingContext, QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource as Source, QgsProcessingModelOutput, QgsProcessingModelParameter,
    QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer, QgsProcessingParameterDefinition,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GROUP = "DeepStrata examples"
_KEEP: list = []  # the Python provider object must outlive its registration


def start_processing() -> QgsApplication:
    """A headless QgsApplication with the stock providers (native, gdal) and DeepStrata registered."""
    app = QgsApplication.instance()
    if app is None:
        app = QgsApplication([], False)
        app.initQgis()
        _KEEP.append(app)
    stock = Path(QgsApplication.pkgDataPath()) / "python" / "plugins"  # where QGIS keeps `processing`
    if str(stock) not in sys.path:
        sys.path.append(str(stock))
    from processing.core.Processing import Processing

    Processing.initialize()
    registry = QgsApplication.processingRegistry()
    if registry.providerById("deepstrata") is None:
        plugins = str(REPO.parent) if REPO.name == "deepstrata" else str(REPO / ".build" / "plugins")
        if plugins not in sys.path:
            sys.path.insert(0, plugins)
        from deepstrata.processing_provider.provider import DeepStrataProvider

        provider = DeepStrataProvider()
        registry.addProvider(provider)
        _KEEP.append(provider)
    return app


# ------------------------------------------------------------------------------------------------ helpers
def add_input(model: QgsProcessingModelAlgorithm, definition: QgsProcessingParameterDefinition, help_text: str,
              x: float, y: float) -> None:
    definition.setHelp(help_text)
    component = QgsProcessingModelParameter(definition.name())
    component.setPosition(QPointF(x, y))
    model.addModelParameter(definition, component)


def child(algorithm_id: str, child_id: str, description: str, x: float, y: float,
          sources: dict[str, Source]) -> QgsProcessingModelChildAlgorithm:
    step = QgsProcessingModelChildAlgorithm(algorithm_id)
    step.setChildId(child_id)
    step.setDescription(description)
    step.setPosition(QPointF(x, y))
    for name, source in sources.items():
        step.addParameterSources(name, [source])
    # As the modeler does: the default of every other mandatory input (optional ones stay empty, so MODEL means
    # the bundled model wherever the plugin is installed, not a path on this machine).
    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    if algorithm is None:
        sys.exit(f"Unknown algorithm {algorithm_id}: is the provider installed?")
    for definition in algorithm.parameterDefinitions():
        optional = definition.flags() & QgsProcessingParameterDefinition.Flag.FlagOptional
        if definition.name() not in sources and not definition.isDestination() and not optional:
            step.addParameterSources(definition.name(), [Source.fromStaticValue(definition.defaultValue())])
    return step


def expose(step: QgsProcessingModelChildAlgorithm, child_output: str, name: str) -> None:
    """Make a child's output a model output (a destination parameter of the model), named for what it is as the
    modeler names it (QGIS names the layer it loads after it: "Strong anomaly patches", not "PATCHES")."""
    output = QgsProcessingModelOutput(name, name)
    output.setChildId(step.childId())
    output.setChildOutputName(child_output)
    output.setMandatory(True)
    output.setPosition(step.position() + QPointF(0, 90))
    outputs = dict(step.modelOutputs())
    outputs[name] = output
    step.setModelOutputs(outputs)


def finish(model: QgsProcessingModelAlgorithm, steps: Sequence[QgsProcessingModelChildAlgorithm],
           help_text: dict[str, str]) -> QgsProcessingModelAlgorithm:
    """Add the steps, then the help: `help_text` (the description, outputs) over the inputs' own help."""
    for step in steps:
        model.addChildAlgorithm(step)
    inputs = {p.name(): p.help() for p in model.parameterDefinitions() if p.help() and not p.isDestination()}
    model.setHelpContent({"ALG_CREATOR": "DeepStrata", **inputs, **help_text})
    return model


# ------------------------------------------------------------------------------------------------- models
def landforms_filled() -> QgsProcessingModelAlgorithm:
    """Fill nodata (GDAL) -> Classify landforms: landforms everywhere, holes in the DEM included."""
    model = QgsProcessingModelAlgorithm("Landforms of a DEM with holes filled", GROUP, "deepstrata_examples")
    add_input(model, QgsProcessingParameterRasterLayer("DEM", "DEM (elevations in metres)"),
              "The DEM to classify, in any CRS, elevations in metres. Its nodata holes (voids, masked lakes) are "
              "interpolated first.", 60, 60)
    distance = QgsProcessingParameterNumber("DISTANCE", "Fill: maximum search distance (pixels)",
                                            QgsProcessingParameterNumber.Type.Integer, defaultValue=100, minValue=1)
    add_input(model, distance, "How far (in pixels) Fill nodata looks for valid elevations to interpolate from; "
              "holes wider than twice this stay nodata and are not classified.", 320, 60)
    fill = child("gdal:fillnodata", "fill", "Fill nodata holes in the DEM", 190, 180, {
        "INPUT": Source.fromModelParameter("DEM"),
        "BAND": Source.fromStaticValue(1),
        "DISTANCE": Source.fromModelParameter("DISTANCE"),
        "ITERATIONS": Source.fromStaticValue(0),
        "NO_MASK": Source.fromStaticValue(False),
    })
    classify = child("deepstrata:classifylandforms", "classify", "Classify landforms of the filled DEM",
                     190, 300, {"INPUT": Source.fromChildOutput("fill", "OUTPUT")})
    expose(classify, "OUTPUT", "Landforms")
    expose(classify, "STATISTICS", "Landform statistics")
    return finish(model, [fill, classify], {
        "ALG_DESC": "Fills the nodata holes of a DEM with GDAL's Fill nodata (inverse-distance interpolation from "
                    "the hole's edges), then classifies every cell into the ten geomorphon landforms with the "
                    "bundled DeepStrata model. Without the fill, cells in and around holes stay unclassified.",
        "classify:Landforms": "GeoTIFF of landform ids 1..10 on the DEM's grid, styled with class names and colours.",
        "classify:Landform statistics": "Pixels, area (m², ha) and percent per landform.",
    })


def anomaly_patches() -> QgsProcessingModelAlgorithm:
    """Detect anomalies -> Extract by expression: the anomaly patches that are big and strong enough."""
    model = QgsProcessingModelAlgorithm("Strong anomaly patches", GROUP, "deepstrata_examples")
    add_input(model, QgsProcessingParameterRasterLayer("RASTER", "DEM or multispectral scene"),
              "A 1-band DEM or a Landsat 8/9 / Sentinel-2 scene: the bundled anomaly model is chosen by input.",
              60, 60)
    min_area = QgsProcessingParameterNumber("MIN_AREA", "Minimum patch area (m²)",
                                            QgsProcessingParameterNumber.Type.Double, defaultValue=1800.0,
                                            minValue=0.0)
    add_input(model, min_area, "Anomaly patches smaller than this are dropped (1800 m² = two 30 m pixels).", 300, 60)
    min_peak = QgsProcessingParameterNumber("MIN_PEAK", "Minimum peak score",
                                            QgsProcessingParameterNumber.Type.Double, defaultValue=10.0)
    add_input(model, min_peak, "Keep only the patches whose highest anomaly score reaches this (robust z-score; "
              "the bundled DEM model flags pixels from 7).", 540, 60)
    detect = child("deepstrata:detectanomalies", "detect", "Detect anomalies", 190, 180, {
        "INPUT": Source.fromModelParameter("RASTER"),
        "MIN_AREA": Source.fromModelParameter("MIN_AREA"),
    })
    expose(detect, "OUTPUT", "Anomaly score")
    extract = child("native:extractbyexpression", "keep", "Keep the patches reaching the minimum peak",
                    420, 300, {
                        "INPUT": Source.fromChildOutput("detect", "OUTPUT_POLYGONS"),
                        "EXPRESSION": Source.fromStaticValue('"peak_score" >= @MIN_PEAK'),
                    })
    expose(extract, "OUTPUT", "Strong anomaly patches")
    return finish(model, [detect, extract], {
        "ALG_DESC": "Scores a DEM or a scene with DeepStrata's Detect anomalies (the bundled autoencoder for the "
                    "input), turns the flagged pixels into patches of at least the minimum area, and keeps with "
                    "QGIS's Extract by expression only the patches whose peak score reaches the minimum "
                    "(\"peak_score\" >= MIN_PEAK). Each patch has area_m2, pixels, peak_score and mean_score.",
        "detect:Anomaly score": "Float32 robust z-score on the input's grid.",
        "keep:Strong anomaly patches": "The anomaly polygons passing both filters.",
    })


MODELS = {"landforms_filled.model3": landforms_filled, "anomaly_patches.model3": anomaly_patches}


def check(path: Path, sample: Path = REPO / "resources" / "samples" / "bigtujunga_dem.tif") -> list[str]:
    """Problems with the saved model: it must reload, every child algorithm must exist, and its parameters must
    accept the bundled DEM with temporary outputs."""
    model = QgsProcessingModelAlgorithm()
    if not model.fromFile(str(path)):
        return [f"{path}: QgsProcessingModelAlgorithm.fromFile failed"]
    problems = []
    values = {p.name(): "TEMPORARY_OUTPUT" if p.isDestination() else p.defaultValue()
              for p in model.parameterDefinitions()}
    values.update({p.name(): str(sample) for p in model.parameterDefinitions() if p.type() == "raster"})
    ok, message = model.checkParameterValues(values, QgsProcessingContext())
    if not ok:
        problems.append(f"{path.name}: parameters rejected: {message}")
    for child_id, step in model.childAlgorithms().items():
        if step.algorithm() is None:
            problems.append(f"{path.name}: step '{child_id}' uses the unknown algorithm {step.algorithmId()}")
    ok, message = model.canExecute()
    if not ok:
        problems.append(f"{path.name}: cannot execute: {message}")
    ok, errors = model.validate()
    if not ok:
        problems.extend(f"{path.name}: {e}" for e in errors)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the example .model3 files for the graphical modeler.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "examples")
    args = parser.parse_args(argv)
    start_processing()
    args.out.mkdir(parents=True, exist_ok=True)
    problems = []
    for name, build in MODELS.items():
        path = args.out / name
        model = build()
        if not model.toFile(str(path)):
            sys.exit(f"Cannot write '{path}'.")
        problems += check(path)
        params = ", ".join(p.name() for p in model.parameterDefinitions())
        print(f"{path}: {model.displayName()} ({params})")
    if problems:
        sys.exit("\n".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
