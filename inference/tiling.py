"""Window arithmetic: tile layout and blending weights. Pure functions of integers; no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np


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


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts covering [0, length): step tile - overlap, the last tile shifted back to end at `length`.

    When the axis is shorter than a tile there is one tile at 0 (it may overhang the end).
    """
    if length <= tile:
        return [0]
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile]


def axis_weights(size: int, margin: int, ramp: int, low_edge: bool, high_edge: bool) -> np.ndarray:
    """Blending weights along one tile axis.

    An edge that lies on the window boundary keeps full weight (nothing else covers it). An inner edge gets
    zero weight on its `margin` unreliable pixels, then a linear ramp of `ramp` pixels up to 1.
    """
    d = np.arange(size, dtype=np.float64)
    w = np.ones(size)
    if not low_edge:
        w = np.minimum(w, np.clip((d - margin + 1) / (ramp + 1), 0.0, 1.0))
    if not high_edge:
        w = np.minimum(w, np.clip((size - d - margin) / (ramp + 1), 0.0, 1.0))
    return w


@lru_cache(maxsize=64)
def tile_weights(h: int, w: int, margin: int, ramp: int, top: bool, bottom: bool, left: bool,
                 right: bool) -> np.ndarray:
    """2-D weights of one tile (the outer product of its axis weights); cached, read-only."""
    out = np.outer(axis_weights(h, margin, ramp, top, bottom), axis_weights(w, margin, ramp, left, right))
    out = out.astype(np.float32)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class TileGrid:
    """Tiles in output space over a window of `width` x `height` pixels (coordinates relative to it)."""

    width: int
    height: int
    tile_w: int
    tile_h: int
    overlap: int
    margin: int

    @property
    def cols(self) -> list[int]:
        return axis_starts(self.width, self.tile_w, self.overlap)

    @property
    def rows(self) -> list[int]:
        return axis_starts(self.height, self.tile_h, self.overlap)

    def __len__(self) -> int:
        return len(self.cols) * len(self.rows)

    def row_tiles(self, y: int) -> Iterator[Window]:
        for x in self.cols:
            yield Window(x, y, self.tile_w, self.tile_h)

    def __iter__(self) -> Iterator[Window]:
        for y in self.rows:
            yield from self.row_tiles(y)

    def weights(self, tile: Window) -> np.ndarray:
        """Weights for `tile`: zero on inner-edge margins, ramps across the rest of the overlap."""
        ramp = max(self.overlap - 2 * self.margin, 0)
        return tile_weights(self.tile_h, self.tile_w, self.margin, ramp, tile.y <= 0, tile.y1 >= self.height,
                            tile.x <= 0, tile.x1 >= self.width)


def chunk_columns(window: Window, chunk_width: int) -> list[Window]:
    """Split a window into column chunks of `chunk_width` (the last may be narrower)."""
    return [Window(window.x + x, window.y, min(chunk_width, window.w - x), window.h)
            for x in range(0, window.w, chunk_width)]


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
