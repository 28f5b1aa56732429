"""Pixel windows and geotransforms, in one place (after rasterio's windows.py).

A `Window` is a rectangle of pixels. `from_bounds` turns map coordinates into the window that covers them,
`bounds` turns a window back into map coordinates, `transform` gives the geotransform of a window's own grid,
and `block_windows` walks a raster in whole block rows. Geotransforms are GDAL's six numbers
(x0, dx, rx, y0, ry, dy). Pure arithmetic: no I/O, no GDAL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

Bounds = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax
GeoTransform = Sequence[float]
EPS = 1e-6  # pixel fractions closer than this to a pixel edge count as on it


@dataclass(frozen=True)
class Window:
    """A pixel rectangle: column x, row y, width w, height h."""

    x: int
    y: int
    w: int
    h: int

    @property
    def x1(self) -> int:
        return self.x + self.w

    @property
    def y1(self) -> int:
        return self.y + self.h

    def grow(self, by: int) -> "Window":
        return Window(self.x - by, self.y - by, self.w + 2 * by, self.h + 2 * by)

    def intersect(self, other: "Window") -> "Window | None":
        x, y = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        return Window(x, y, x1 - x, y1 - y) if x1 > x and y1 > y else None


def to_pixel(gt: GeoTransform, x: float, y: float) -> tuple[float, float]:
    """(column, row) of the map point (x, y) under the geotransform `gt` (fractional)."""
    det = gt[1] * gt[5] - gt[2] * gt[4]
    if det == 0:
        raise ValueError(f"the geotransform {tuple(gt)} cannot be inverted")
    dx, dy = x - gt[0], y - gt[3]
    return (gt[5] * dx - gt[2] * dy) / det, (gt[1] * dy - gt[4] * dx) / det


def to_map(gt: GeoTransform, col: float, row: float) -> tuple[float, float]:
    """Map coordinates of the pixel corner (col, row)."""
    return gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]


def from_bounds(box: Bounds, gt: GeoTransform, width: int, height: int) -> Window | None:
    """The window of whole pixels covering `box` (xmin, ymin, xmax, ymax), clipped to a raster of
    `width` x `height`; None when the box misses the raster."""
    xmin, ymin, xmax, ymax = box
    corners = [to_pixel(gt, x, y) for x in (xmin, xmax) for y in (ymin, ymax)]
    x0 = max(0, math.floor(min(c[0] for c in corners) + EPS))
    x1 = min(width, math.ceil(max(c[0] for c in corners) - EPS))
    y0 = max(0, math.floor(min(c[1] for c in corners) + EPS))
    y1 = min(height, math.ceil(max(c[1] for c in corners) - EPS))
    return Window(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def bounds(window: Window, gt: GeoTransform) -> Bounds:
    """(xmin, ymin, xmax, ymax) of the window's footprint (its corners' envelope for rotated grids)."""
    corners = [to_map(gt, c, r) for c in (window.x, window.x1) for r in (window.y, window.y1)]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return min(xs), min(ys), max(xs), max(ys)


def transform(window: Window, gt: GeoTransform) -> tuple[float, float, float, float, float, float]:
    """The geotransform of the window's own grid: its top-left corner, the same pixel size and rotation."""
    x, y = to_map(gt, window.x, window.y)
    return (x, float(gt[1]), float(gt[2]), y, float(gt[4]), float(gt[5]))


def is_north_up(gt: GeoTransform) -> bool:
    """No rotation, columns going east and rows going south."""
    return not gt[2] and not gt[4] and gt[1] > 0 and gt[5] < 0


def block_windows(width: int, height: int, rows: int, columns: int | None = None) -> Iterator[Window]:
    """Windows covering a width x height raster, top to bottom: `rows` rows at a time (whole block rows of the
    file), each split into column ranges of at most `columns` (None: the full width)."""
    rows, cols = max(1, rows), max(1, columns or width)
    for y in range(0, height, rows):
        for x in range(0, width, cols):
            yield Window(x, y, min(cols, width - x), min(rows, height - y))


def chunk_columns(window: Window, chunk_width: int) -> list[Window]:
    """Split a window into column chunks of `chunk_width` (the last may be narrower)."""
    return [Window(window.x + x, window.y, min(chunk_width, window.w - x), window.h)
            for x in range(0, window.w, chunk_width)]


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
