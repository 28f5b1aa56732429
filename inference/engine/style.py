"""QGIS layer styles (QML) for the outputs, written as plain XML so the engine stays QGIS-free.

QGIS loads `<raster>.qml` automatically when the raster is opened, so outputs look right whichever way they
are opened: the Processing results, drag-and-drop, or a later session.
"""
from __future__ import annotations

from typing import Sequence
from xml.sax.saxutils import quoteattr

from .card import ClassInfo

_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.22\" " \
        "styleCategories=\"Symbology\">\n  <pipe>\n"
_TAIL = "  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n"

# Colour ramps as (position, #rrggbb or #rrggbbaa) stops. Low anomaly scores are transparent, so the hillshade
# or the image under the score shows where nothing is unusual.
RAMPS: dict[str, list[tuple[float, str]]] = {
    "viridis": [(0.0, "#440154"), (0.25, "#3b528b"), (0.5, "#21918c"), (0.75, "#5ec962"), (1.0, "#fde725")],
    "confidence": [(0.0, "#d7191c"), (0.5, "#ffffbf"), (1.0, "#1a9641")],
    "anomaly": [(0.0, "#fdae6100"), (0.5, "#fdae61"), (0.75, "#d7191c"), (1.0, "#67001f")],
}


def rgba(color: str) -> tuple[int, int, int, int]:
    """(r, g, b, a) of '#rrggbb' (opaque) or '#rrggbbaa'."""
    values = [int(color[i:i + 2], 16) for i in range(1, len(color), 2)]
    return (values[0], values[1], values[2], values[3] if len(values) > 3 else 255)


def paletted_qml(classes: Sequence[ClassInfo], band: int = 1) -> str:
    """A paletted renderer: one legend entry per class, with the card's names and colours."""
    entries = "".join(f"        <paletteEntry value=\"{c.value}\" color=\"{c.color[:7]}\" "
                      f"alpha=\"{rgba(c.color)[3]}\" label={quoteattr(c.name)}/>\n" for c in classes)
    return (_HEAD + f"    <rasterrenderer type=\"paletted\" band=\"{band}\" opacity=\"1\" alphaBand=\"-1\" "
            "nodataColor=\"\">\n      <rasterTransparency/>\n      <colorPalette>\n" + entries +
            "      </colorPalette>\n    </rasterrenderer>\n" + _TAIL)


def pseudocolor_qml(minimum: float, maximum: float, ramp: str = "viridis", band: int = 1,
                    labels: Sequence[str] | None = None) -> str:
    """A single-band pseudocolour renderer with an interpolated ramp from `minimum` to `maximum`.

    `labels`, one per stop of the ramp, say in the legend what the values mean (units, the threshold): the legend
    then lists the stops with them instead of a bare gradient from the minimum to the maximum."""
    if not maximum > minimum:
        maximum = minimum + 1.0
    stops = RAMPS[ramp]
    if labels is not None and len(labels) != len(stops):
        raise ValueError(f"the '{ramp}' ramp has {len(stops)} stops, but {len(labels)} labels were given")
    values = [minimum + p * (maximum - minimum) for p, _ in stops]
    texts = list(labels) if labels is not None else [f"{v:.4g}" for v in values]
    items = "".join(
        f"          <item value=\"{v:.6g}\" color=\"{c[:7]}\" alpha=\"{rgba(c)[3]}\" label={quoteattr(t)}/>\n"
        for v, (_, c), t in zip(values, stops, texts))
    legend = ("          <rampLegendSettings useContinuousLegend=\"0\" minimumLabel=\"\" maximumLabel=\"\" prefix=\"\" "
              "suffix=\"\" direction=\"0\" orientation=\"2\"/>\n") if labels is not None else ""
    ramp_props = (f"<colorramp type=\"gradient\" name=\"[source]\"><prop k=\"color1\" v=\"{_rgba(stops[0][1])}\"/>"
                  f"<prop k=\"color2\" v=\"{_rgba(stops[-1][1])}\"/><prop k=\"discrete\" v=\"0\"/>"
                  "<prop k=\"rampType\" v=\"gradient\"/><prop k=\"stops\" v=\""
                  + ":".join(f"{p};{_rgba(c)}" for p, c in stops[1:-1]) + "\"/></colorramp>")
    return (_HEAD + f"    <rasterrenderer type=\"singlebandpseudocolor\" band=\"{band}\" opacity=\"1\" "
            f"alphaBand=\"-1\" classificationMin=\"{minimum:.6g}\" classificationMax=\"{maximum:.6g}\" "
            "nodataColor=\"\">\n      <rasterTransparency/>\n"
            "      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent>"
            "<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower>"
            "<cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>\n"
            f"      <rastershader>\n        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" "
            f"clip=\"0\" minimumValue=\"{minimum:.6g}\" maximumValue=\"{maximum:.6g}\" "
            f"labelPrecision=\"4\">\n          {ramp_props}\n{items}{legend}        </colorrampshader>\n"
            "      </rastershader>\n    </rasterrenderer>\n" + _TAIL)


def anomaly_labels(threshold: float) -> list[str]:
    """The anomaly ramp's legend (stops at 0, 1, 1.5 and 2 thresholds): what a robust z-score means there."""
    return ["0 ordinary", f"{threshold:.4g} threshold: anomalous from here",
            f"{1.5 * threshold:.4g}", f"{2 * threshold:.4g} and above"]


CONFIDENCE_LABELS = ("0 uncertain", "0.5", "1 certain")


def multiband_qml(bands: tuple[int, int, int], limits: tuple[float, float]) -> str:
    """A multiband colour renderer: `bands` as red, green, blue, each stretched linearly from limits[0] to
    limits[1] (values beyond are clipped)."""
    low, high = limits
    parts = "".join(
        f"      <{colour}ContrastEnhancement><minValue>{low:.6g}</minValue><maxValue>{high:.6g}</maxValue>"
        f"<algorithm>StretchToMinimumMaximum</algorithm></{colour}ContrastEnhancement>\n"
        for colour in ("red", "green", "blue"))
    return (_HEAD + f"    <rasterrenderer type=\"multibandcolor\" redBand=\"{bands[0]}\" greenBand=\"{bands[1]}\" "
            f"blueBand=\"{bands[2]}\" opacity=\"1\" alphaBand=\"-1\" nodataColor=\"\">\n      <rasterTransparency/>\n"
            "      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent>"
            "<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower>"
            "<cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>\n"
            + parts + "    </rasterrenderer>\n" + _TAIL)


def _rgba(color: str) -> str:
    return ",".join(map(str, rgba(color)))
