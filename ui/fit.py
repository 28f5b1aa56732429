"""Which analyst workflow fits the active layer, and the words that say why (or why not).

Pure decisions on plain facts about a layer (`LayerFacts`), so they are testable without QGIS layers; the
toolbar turns a QgsMapLayer into facts and a decision into an action's enabled state, tooltip and status tip.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..support import tr

LANDFORMS, GEOLOGY, ANOMALIES = "landforms", "geology", "anomalies"
WORKFLOWS = (LANDFORMS, GEOLOGY, ANOMALIES)
MIN_MULTISPECTRAL_BANDS = 6  # blue, green, red, NIR, SWIR1, SWIR2
RGB_BAND_COUNTS = (3, 4)  # RGB or RGBA
FILE_PROVIDER = "gdal"


@dataclass(frozen=True)
class LayerFacts:
    """What the decision needs to know about a layer.

    `kind`: 'raster', 'vector', 'mesh', 'point cloud', 'vector tile', ... ; `provider`: the QGIS data provider
    key ('gdal', 'wms', ...); `data_type`: the first band's type by its GDAL name ('Byte', 'Int16', ...).
    """

    name: str
    kind: str = "raster"
    provider: str = FILE_PROVIDER
    bands: int = 1
    data_type: str = ""
    valid: bool = True


def _not_raster(layer: LayerFacts) -> str:
    """Says what the layer is instead: "'x' is a vector layer, not a raster", or "'x' is not a raster layer"."""
    kinds = {"vector": tr("vector"), "mesh": tr("mesh"), "point cloud": tr("point cloud"),
             "vector tile": tr("vector tile"), "annotation": tr("annotation"), "plugin": tr("plugin")}
    if layer.kind in kinds:
        return tr("'{0}' is a {1} layer, not a raster").format(layer.name, kinds[layer.kind])
    return tr("'{0}' is not a raster layer").format(layer.name)


def _bands(count: int) -> str:
    return tr("1 band") if count == 1 else tr("{0} bands").format(count)


def _looks_rgb(layer: LayerFacts) -> bool:
    return layer.bands in RGB_BAND_COUNTS and layer.data_type == "Byte"


def _what(layer: LayerFacts) -> str:
    """'DEM, 1 band', 'multispectral, 7 bands' or '3 bands, UInt16': how the layer reads to DeepStrata."""
    if layer.bands == 1:
        return tr("DEM, 1 band")
    if layer.bands >= MIN_MULTISPECTRAL_BANDS:
        return tr("multispectral, {0} bands").format(layer.bands)
    return ", ".join(part for part in (_bands(layer.bands), layer.data_type) if part)


def _needs(workflow: str) -> str:
    """What would fit, as the end of a sentence that starts with the workflow's title."""
    if workflow == LANDFORMS:
        return tr("Landforms needs a single-band DEM")
    if workflow == GEOLOGY:
        return tr("Geology needs a multispectral scene with at least the six bands blue, green, red, NIR, SWIR1, "
                  "SWIR2 (Landsat 8/9 OLI B2-B7 or Sentinel-2 B02, B03, B04, B8A, B11, B12)")
    return tr("Anomalies needs a raster layer: a single-band DEM or a multispectral scene")


def _no_layer(workflow: str) -> str:
    if workflow == LANDFORMS:
        return tr("Select a DEM (a single-band raster layer) in the Layers panel to classify its landforms.")
    if workflow == GEOLOGY:
        return tr("Select a multispectral raster layer (at least six bands: blue, green, red, NIR, SWIR1, SWIR2) "
                  "in the Layers panel to map its geology.")
    return tr("Select a raster layer (a DEM or a multispectral scene) in the Layers panel to detect anomalies in it.")


def _enabled(workflow: str, layer: LayerFacts) -> str:
    quoted = tr("'{0}' ({1})").format(layer.name, _what(layer))
    if workflow == LANDFORMS:
        return tr("Classify the landforms of {0} with the bundled landform model").format(quoted)
    if workflow == GEOLOGY:
        return tr("Map the geology of {0} with the bundled geology model").format(quoted)
    if layer.bands == 1:
        return tr("Detect anomalies in {0} with the bundled terrain anomaly model").format(quoted)
    if layer.bands >= MIN_MULTISPECTRAL_BANDS:
        return tr("Detect anomalies in {0} with the bundled multispectral anomaly model").format(quoted)
    return tr("Detect anomalies in {0}. There is no bundled anomaly model for a {1}-band raster: pick your own "
              "model in the dialog, or tick 'Fit a model to this raster' there").format(
                  quoted, layer.bands)


def _bands_fit(workflow: str, layer: LayerFacts) -> bool:
    if workflow == LANDFORMS:
        return layer.bands == 1
    if workflow == GEOLOGY:
        return layer.bands >= MIN_MULTISPECTRAL_BANDS
    return layer.bands >= 1  # Anomalies: a bundled model for DEMs and multispectral scenes, the user's otherwise


def _band_misfit(workflow: str, layer: LayerFacts) -> str:
    if _looks_rgb(layer):
        return tr("'{0}' looks like an RGB image ({1}, Byte); {2}").format(layer.name, _bands(layer.bands),
                                                                           _needs(workflow))
    return tr("'{0}' has {1}; {2}").format(layer.name, _bands(layer.bands), _needs(workflow))


def title(workflow: str) -> str:
    """The workflow's name as the toolbar shows it."""
    return {LANDFORMS: tr("Landforms"), GEOLOGY: tr("Geology"), ANOMALIES: tr("Anomalies")}[workflow]


def workflow_fit(workflow: str, layer: LayerFacts | None, *, algorithm_loaded: bool = True) -> tuple[bool, str]:
    """(enabled, tip) for a workflow's toolbar action given the active layer (None: no active layer).

    The tip says what will happen when enabled, and why not (naming the layer and what would fit) otherwise.
    `algorithm_loaded` False: the workflow's Processing algorithm is not in the registry.
    """
    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown workflow {workflow!r}; expected one of {', '.join(WORKFLOWS)}")
    if not algorithm_loaded:
        return False, tr("The DeepStrata Processing provider failed to load the {0} algorithm: see the DeepStrata "
                         "tab of the Log Messages panel, then reinstall or re-enable the plugin.").format(
                             title(workflow))
    if layer is None:
        return False, _no_layer(workflow)
    if layer.kind != "raster":
        return False, tr("{0}; {1}. Select one in the Layers panel.").format(_not_raster(layer), _needs(workflow))
    if layer.provider != FILE_PROVIDER:
        return False, tr("DeepStrata reads rasters from files: save '{0}' as a GeoTIFF first (Layers panel: "
                         "right-click, Export > Save As…)").format(layer.name)
    if not layer.valid:
        return False, tr("'{0}' cannot be read: fix its data source (Layer Properties > Source), or select "
                         "another raster layer").format(layer.name)
    if not _bands_fit(workflow, layer):
        return False, _band_misfit(workflow, layer)
    return True, _enabled(workflow, layer)
