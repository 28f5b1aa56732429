"""Render a styled raster (over a hillshade or a true-colour scene, with polygons outlined) to a PNG with a legend,
headless with PyQGIS.

    .venv/bin/python tools/render_preview.py out/demo/landforms.tif out/demo/landforms.png \
        --under resources/samples/bigtujunga_dem.tif
    .venv/bin/python tools/render_preview.py out/demo/anomalies_landsat.tif out/demo/anomalies_landsat.png \
        --under resources/samples/LC80200392015216LGN00_B2-B7_sample.tif --outline out/demo/anomalies_landsat.gpkg

The raster's style is the .qml the engine wrote beside it (loaded explicitly, so the result does not depend on
QGIS's default-style lookup). The legend lists the renderer's own items: class names and colours for a paletted
raster, a colour bar with its stops for a continuous one (an anomaly score). `under` is shaded when it has one
band (a DEM) and drawn in true colour (bands named B4, B3, B2, else 3, 2, 1) when it has three or more.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication, QgsContrastEnhancement, QgsFillSymbol, QgsHillshadeRenderer, QgsMapLayer,
    QgsMapRendererParallelJob, QgsMapSettings, QgsMultiBandColorRenderer, QgsRasterLayer, QgsRasterMinMaxOrigin,
    QgsSingleBandPseudoColorRenderer, QgsSingleSymbolRenderer, QgsVectorLayer,
)
from qgis.PyQt.QtCore import QPointF, QRect, QRectF, QSize, Qt  # noqa: E402
from qgis.PyQt.QtGui import QColor, QFont, QFontMetrics, QImage, QLinearGradient, QPainter, QPen  # noqa: E402
from osgeo import gdal  # noqa: E402

LEGEND_WIDTH = 260
SWATCH = 18
PAD = 14
LINE = 26
RAMP_HEIGHT = 180
OUTLINE = QColor("#00e5ff")  # patches outlined in cyan: distinct from the red end of the score ramp
TRUE_COLOUR = ("B4", "B3", "B2")  # red, green, blue: the same band names in Landsat 8/9 OLI and Sentinel-2
_APP: QgsApplication | None = None


def start_qgis() -> QgsApplication:
    """One headless QgsApplication per process (reused when the caller already made one)."""
    global _APP
    existing = QgsApplication.instance()
    if existing is not None:
        return existing
    _APP = QgsApplication([], False)
    _APP.initQgis()
    return _APP


def open_raster(path: Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name)
    if not layer.isValid():
        raise SystemExit(f"Cannot open '{path}' as a raster layer.")
    return layer


def load_styled(path: Path) -> QgsRasterLayer:
    layer = open_raster(path, path.stem)
    qml = path.with_suffix(".qml")
    if qml.is_file():
        message, ok = layer.loadNamedStyle(str(qml))
        if not ok:
            raise SystemExit(f"Cannot load the style '{qml}': {message}")
    return layer


def hillshade(path: Path) -> QgsRasterLayer:
    layer = open_raster(path, "hillshade")
    renderer = QgsHillshadeRenderer(layer.dataProvider(), 1, 315.0, 45.0)
    renderer.setZFactor(1.5)
    layer.setRenderer(renderer)
    return layer


def true_colour(path: Path, bands: Sequence[int] | None = None) -> QgsRasterLayer:
    """A multispectral scene as red/green/blue, each band stretched between its 2 % and 98 % cumulative cuts."""
    layer = open_raster(path, "true colour")
    if bands is None:
        ds = gdal.Open(str(path))
        names = {ds.GetRasterBand(b).GetDescription(): b for b in range(1, ds.RasterCount + 1)}
        bands = [names[n] for n in TRUE_COLOUR] if all(n in names for n in TRUE_COLOUR) else [3, 2, 1]
    layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), *bands))
    layer.setContrastEnhancement(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum,
                                 QgsRasterMinMaxOrigin.Limits.CumulativeCut)
    return layer


def backdrop(path: Path) -> QgsRasterLayer:
    """What to draw under the styled raster: a hillshade of a DEM, a true-colour composite of a scene."""
    bands = open_raster(path, "under").bandCount()
    return hillshade(path) if bands < 3 else true_colour(path)


def outlines(path: Path) -> QgsVectorLayer:
    layer = QgsVectorLayer(str(path), path.stem, "ogr")
    if not layer.isValid():
        raise SystemExit(f"Cannot open '{path}' as a vector layer.")
    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": OUTLINE.name(), "outline_width": "0.5"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    return layer


def caption(image: QImage, text: str) -> QImage:
    """`text` in a white box in the image's top-left corner."""
    painter = QPainter(image)
    try:
        font = QFont("DejaVu Sans", 10)
        painter.setFont(font)
        size = QFontMetrics(font).boundingRect(text)
        box = QRect(6, 6, size.width() + 12, size.height() + 8)
        painter.fillRect(box, QColor(255, 255, 255, 220))
        painter.setPen(QColor(30, 30, 30))
        painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
    finally:
        painter.end()
    return image


def side_by_side(left: QImage, right: QImage, gap: int = 8) -> QImage:
    image = QImage(left.width() + gap + right.width(), max(left.height(), right.height()),
                   QImage.Format.Format_ARGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    try:
        painter.drawImage(0, 0, left)
        painter.drawImage(left.width() + gap, 0, right)
    finally:
        painter.end()
    return image


def render_map(layers: Sequence[QgsMapLayer], width: int) -> QImage:
    """The layers (top first) over the extent of the first raster, `width` px wide, aspect preserved."""
    reference = next(layer for layer in layers if isinstance(layer, QgsRasterLayer))
    extent = reference.extent()
    height = max(1, round(width * extent.height() / extent.width()))
    settings = QgsMapSettings()
    settings.setLayers(list(layers))
    settings.setDestinationCrs(reference.crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def legend_items(layer: QgsRasterLayer) -> list[tuple[str, QColor]]:
    return [(str(label), QColor(color)) for label, color in layer.renderer().legendSymbologyItems()]


def ramp_stops(layer: QgsRasterLayer) -> list[tuple[float, QColor]]:
    """The colour stops of a continuous (pseudocolour, interpolated) style; empty for anything else."""
    renderer = layer.renderer()
    if not isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        return []
    shader = renderer.shader().rasterShaderFunction()
    return [(item.value, QColor(item.color)) for item in shader.colorRampItemList()]


class Legend:
    """The panel right of the map: a title, then a colour bar, an outline swatch and class swatches, as given."""

    def __init__(self, title: str, items: Sequence[tuple[str, QColor]] = (),
                 ramp: Sequence[tuple[float, QColor]] = (), ramp_label: str = "", outline_label: str = "",
                 notes: Sequence[str] = ()) -> None:
        self.title, self.items, self.ramp, self.ramp_label = title, list(items), list(ramp), ramp_label
        self.outline_label, self.notes = outline_label, list(notes)

    def title_height(self) -> int:
        font = QFont("DejaVu Sans", 11)
        font.setBold(True)
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)
        return QFontMetrics(font).boundingRect(QRect(0, 0, LEGEND_WIDTH - 2 * PAD, 1000), flags, self.title).height()

    def height(self) -> int:
        ramp = (LINE + RAMP_HEIGHT + LINE) if self.ramp else 0
        rows = len(self.items) + bool(self.outline_label) + len(self.notes)
        return PAD + self.title_height() + 12 + ramp + LINE * rows + PAD

    def draw(self, painter: QPainter, left: int) -> None:
        font = QFont("DejaVu Sans", 11)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(30, 30, 30))
        title = self.title_height()
        painter.drawText(QRectF(left + PAD, PAD, LEGEND_WIDTH - 2 * PAD, title),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap), self.title)
        font.setBold(False)
        painter.setFont(font)
        y = PAD + title + 12
        if self.ramp:
            y = self._draw_ramp(painter, left + PAD, y)
        if self.outline_label:
            painter.setPen(QPen(OUTLINE, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(left + PAD + 1, y + 1, SWATCH - 2, SWATCH - 2)
            painter.setPen(QColor(30, 30, 30))
            painter.drawText(left + PAD + SWATCH + 10, y + SWATCH - 4, self.outline_label)
            y += LINE
        for label, color in self.items:
            painter.setPen(QPen(QColor(60, 60, 60), 1))
            painter.setBrush(color)
            painter.drawRect(left + PAD, y, SWATCH, SWATCH)
            painter.drawText(left + PAD + SWATCH + 10, y + SWATCH - 4, self._elide(painter, label))
            y += LINE
        painter.setPen(QColor(90, 90, 90))
        for note in self.notes:
            painter.drawText(left + PAD, y + SWATCH - 4, self._elide(painter, note, indent=0))
            y += LINE

    def _draw_ramp(self, painter: QPainter, x: int, y: int) -> int:
        """A vertical colour bar, highest value on top, a tick and label at each stop."""
        painter.setPen(QColor(30, 30, 30))
        painter.drawText(x, y + SWATCH - 4, self.ramp_label)
        top, bar = y + LINE, QRectF(x, y + LINE, SWATCH + 6, RAMP_HEIGHT)
        low, high = self.ramp[0][0], self.ramp[-1][0]
        span = (high - low) or 1.0
        gradient = QLinearGradient(QPointF(0, bar.bottom()), QPointF(0, bar.top()))
        for value, color in self.ramp:
            gradient.setColorAt((value - low) / span, color)
        painter.setPen(QPen(QColor(60, 60, 60), 1))
        painter.setBrush(gradient)
        painter.drawRect(bar)
        for value, _ in self.ramp:
            ty = bar.bottom() - (value - low) / span * RAMP_HEIGHT
            painter.drawLine(QPointF(bar.right(), ty), QPointF(bar.right() + 5, ty))
            painter.drawText(QPointF(bar.right() + 9, ty + 5), f"{value:g}")
        return int(top + RAMP_HEIGHT + LINE // 2)

    @staticmethod
    def _elide(painter: QPainter, text: str, indent: int = SWATCH + 10) -> str:
        width = LEGEND_WIDTH - 2 * PAD - indent
        return QFontMetrics(painter.font()).elidedText(text, Qt.TextElideMode.ElideRight, width)


def compose(map_image: QImage, legend: Legend) -> QImage:
    """The map with the legend panel on its right."""
    image = QImage(map_image.width() + LEGEND_WIDTH, max(map_image.height(), legend.height()),
                   QImage.Format.Format_ARGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawImage(0, 0, map_image)
        legend.draw(painter, map_image.width())
    finally:
        painter.end()
    return image


def render(raster: Path, png: Path, width: int | None = None, title: str | None = None,
           under: Path | None = None, opacity: float = 0.7, outline: Path | None = None,
           outline_label: str = "anomaly patch", ramp_label: str = "score", notes: Sequence[str] = (),
           beside: tuple[str, str] | None = None) -> Path:
    """Render `raster` with its .qml style to `png` with a legend: over `under` (a hillshade of a DEM, a scene in
    true colour) at `opacity`, with the polygons of `outline` drawn as outlines, if given.

    `beside`: two captioned panels, (left, right): `under` with the outlines on the left, the styled raster over
    it on the right (at opacity 1 it hides `under`, as a score raster does best)."""
    start_qgis()
    layer = load_styled(raster)
    ramp = ramp_stops(layer)
    top: list[QgsMapLayer] = [outlines(outline)] if outline is not None else []
    bottom: list[QgsMapLayer] = []
    if under is not None:
        layer.renderer().setOpacity(opacity)
        bottom.append(backdrop(under))
    legend = Legend(title or raster.stem, [] if ramp else legend_items(layer), ramp, ramp_label,
                    outline_label if outline is not None else "", notes)
    # One screen pixel per raster cell by default: resampling a hillshade with nearest neighbour aliases.
    width = width or layer.width()
    image = render_map(top + [layer] + bottom, width)
    if beside and bottom:
        image = side_by_side(caption(render_map(top + bottom, width), beside[0]), caption(image, beside[1]))
    image = compose(image, legend)
    png.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(png), "PNG"):
        raise SystemExit(f"Cannot write '{png}'.")
    return png


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render a styled raster to a PNG preview with a legend.")
    parser.add_argument("raster", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=None,
                        help="map width in pixels, legend not included (default: the raster's width)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--under", "--hillshade", type=Path, default=None,
                        help="drawn under the raster: a DEM (shaded) or a multispectral scene (true colour)")
    parser.add_argument("--opacity", type=float, default=0.7, help="of the raster over --under (default 0.7)")
    parser.add_argument("--outline", type=Path, default=None, help="polygons to outline over the raster")
    parser.add_argument("--beside", nargs=2, default=None, metavar=("LEFT", "RIGHT"),
                        help="two panels with these captions: --under (and --outline) alone, and the map")
    args = parser.parse_args(argv)
    print(render(args.raster, args.png, args.width, args.title, args.under, args.opacity, args.outline,
                 beside=args.beside))
    return 0


if __name__ == "__main__":
    sys.exit(main())
