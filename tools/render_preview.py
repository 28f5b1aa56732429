"""Render a styled raster (and optionally a hillshade under it) to a PNG with a legend, headless with PyQGIS.

    .venv/bin/python tools/render_preview.py out/demo/landforms.tif out/demo/landforms.png \
        --hillshade resources/samples/bigtujunga_dem.tif

The raster's style is the .qml the engine wrote beside it (loaded explicitly, so the result does not depend on
QGIS's default-style lookup). The legend lists the renderer's own items: class names and colours for a paletted
raster, ramp stops for a continuous one.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication, QgsHillshadeRenderer, QgsMapRendererParallelJob, QgsMapSettings, QgsRasterLayer,
)
from qgis.PyQt.QtCore import QRectF, QSize, Qt  # noqa: E402
from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter, QPen  # noqa: E402

LEGEND_WIDTH = 230
SWATCH = 18
PAD = 14
LINE = 26
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


def load_styled(path: Path) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), path.stem)
    if not layer.isValid():
        raise SystemExit(f"Cannot open '{path}' as a raster layer.")
    qml = path.with_suffix(".qml")
    if qml.is_file():
        message, ok = layer.loadNamedStyle(str(qml))
        if not ok:
            raise SystemExit(f"Cannot load the style '{qml}': {message}")
    return layer


def hillshade(path: Path) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), "hillshade")
    if not layer.isValid():
        raise SystemExit(f"Cannot open '{path}' as a raster layer.")
    renderer = QgsHillshadeRenderer(layer.dataProvider(), 1, 315.0, 45.0)
    renderer.setZFactor(1.5)
    layer.setRenderer(renderer)
    return layer


def render_map(layers: Sequence[QgsRasterLayer], width: int) -> QImage:
    """The layers (top first) over the first layer's extent, `width` px wide, aspect preserved."""
    extent = layers[0].extent()
    height = max(1, round(width * extent.height() / extent.width()))
    settings = QgsMapSettings()
    settings.setLayers(list(layers))
    settings.setDestinationCrs(layers[0].crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def legend_items(layer: QgsRasterLayer) -> list[tuple[str, QColor]]:
    return [(str(label), QColor(color)) for label, color in layer.renderer().legendSymbologyItems()]


def _draw_legend(painter: QPainter, left: int, title: str, items: Sequence[tuple[str, QColor]]) -> None:
    font = QFont("DejaVu Sans", 11)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor(30, 30, 30))
    painter.drawText(QRectF(left + PAD, PAD, LEGEND_WIDTH - 2 * PAD, 2 * LINE),
                     int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap), title)
    font.setBold(False)
    painter.setFont(font)
    y = PAD + 2 * LINE + 6
    for label, color in items:
        painter.setPen(QPen(QColor(60, 60, 60), 1))
        painter.setBrush(color)
        painter.drawRect(left + PAD, y, SWATCH, SWATCH)
        painter.drawText(left + PAD + SWATCH + 10, y + SWATCH - 4, label)
        y += LINE


def compose(map_image: QImage, title: str, items: Sequence[tuple[str, QColor]]) -> QImage:
    """The map with a legend panel on its right."""
    needed = PAD + 2 * LINE + 6 + LINE * len(items) + PAD
    image = QImage(map_image.width() + LEGEND_WIDTH, max(map_image.height(), needed), QImage.Format.Format_ARGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawImage(0, 0, map_image)
        _draw_legend(painter, map_image.width(), title, items)
    finally:
        painter.end()
    return image


def render(raster: Path, png: Path, width: int | None = None, title: str | None = None,
           under: Path | None = None, opacity: float = 0.7) -> Path:
    """Render `raster` with its .qml style (over a hillshade of `under`, if given) to `png` with a legend."""
    start_qgis()
    layer = load_styled(raster)
    layers = [layer]
    if under is not None:
        layer.renderer().setOpacity(opacity)
        layers.append(hillshade(under))
    # One screen pixel per raster cell by default: resampling a hillshade with nearest neighbour aliases.
    image = compose(render_map(layers, width or layer.width()), title or raster.stem, legend_items(layer))
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
    parser.add_argument("--hillshade", type=Path, default=None, help="a DEM to shade under the raster")
    args = parser.parse_args(argv)
    print(render(args.raster, args.png, args.width, args.title, args.hillshade))
    return 0


if __name__ == "__main__":
    sys.exit(main())
