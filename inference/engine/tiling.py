"""Tile layout and blending weights over a window. Pure functions of integers; no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Iterator

import numpy as np

from .windows import Window, round_up


def axis_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Tile starts covering [0, length), stepping by tile - overlap.

    With `multiple` 1 the last tile is shifted back to end at `length`. Models that pool (size_multiple > 1)
    only give the same answer for the same pixel when tiles start on a multiple of it, so then every start is
    a multiple and the last tile may overhang the end by less than `multiple`. An axis shorter than a tile has
    one tile at 0 (it may overhang too).
    """
    if length <= tile:
        return [0]
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    stride = tile - overlap
    if multiple > 1:
        if stride < multiple:
            raise ValueError(f"tile - overlap ({stride}) must be at least the size multiple ({multiple})")
        stride = stride // multiple * multiple
    starts = list(range(0, length - tile, stride))
    return starts + [round_up(length - tile, multiple)]


def axis_weights(size: int, margin: int, ramp: int, low_edge: bool, high_edge: bool) -> np.ndarray:
    """Blending weights along one tile axis.

    An edge that lies on the window boundary keeps full weight (nothing else covers it). An inner edge gets
    zero weight on its `margin` unreliable pixels, then a linear ramp of `ramp` pixels up to 1.
    """
    d = np.arange(size, dtype=np.float64)
    w: np.ndarray = np.ones(size)
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


Rect = tuple[int, int, int, int]  # rows [y0, y1), columns [x0, x1) inside a tile


def _positive(size: int, margin: int, ramp: int, low_edge: bool, high_edge: bool) -> tuple[int, int]:
    """The interval of a tile axis where its blending weight is above zero."""
    nonzero = np.flatnonzero(axis_weights(size, margin, ramp, low_edge, high_edge) > 0)
    return (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 0)


@dataclass(frozen=True)
class TileGrid:
    """Tiles in output space over a window of `width` x `height` pixels (coordinates relative to it)."""

    width: int
    height: int
    tile_w: int
    tile_h: int
    overlap: int
    margin: int
    multiple: int = 1
    _axes: dict[tuple[str, int], tuple[tuple[int, int], tuple[int, int] | None]] = field(
        default_factory=dict, compare=False, repr=False)

    @cached_property
    def cols(self) -> list[int]:
        return axis_starts(self.width, self.tile_w, self.overlap, self.multiple)

    @cached_property
    def rows(self) -> list[int]:
        return axis_starts(self.height, self.tile_h, self.overlap, self.multiple)

    def row_end(self, y: int) -> int:
        """The first row after tile row `y` that later tiles still reach: rows above it are final."""
        later = [r for r in self.rows if r > y]
        return later[0] if later else self.height

    @property
    def span(self) -> tuple[int, int]:
        """(height, width) the tiles reach from the window origin: the window plus any overhang."""
        return max(self.height, self.rows[-1] + self.tile_h), max(self.width, self.cols[-1] + self.tile_w)

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

    def _axis(self, name: str, start: int) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """Along one axis, for the tile starting at `start`: where its weight is above zero, and the part of that
        no other tile's weight reaches (None when that part is empty or not one interval)."""
        key = (name, start)
        if key not in self._axes:
            starts, size, length = (self.rows, self.tile_h, self.height) if name == "y" else \
                (self.cols, self.tile_w, self.width)
            ramp = max(self.overlap - 2 * self.margin, 0)

            def positive(s: int) -> tuple[int, int]:
                return _positive(size, self.margin, ramp, s <= 0, s + size >= length)

            own = positive(start)
            alone = np.zeros(size, dtype=bool)
            alone[own[0]:own[1]] = True
            for other in starts:
                if other != start and abs(other - start) < size:
                    lo, hi = positive(other)
                    alone[max(0, other + lo - start):max(0, min(size, other + hi - start))] = False
            found = np.flatnonzero(alone)
            exclusive = None
            if found.size and found[-1] - found[0] + 1 == found.size:
                exclusive = (int(found[0]), int(found[-1]) + 1)
            self._axes[key] = (own, exclusive)
        return self._axes[key]

    def row_reach(self, y: int) -> tuple[int, int]:
        """The rows [p0, p1) of the tile row starting at `y` (relative to it) where its weights are above zero."""
        return self._axis("y", y)[0]

    def regions(self, tile: Window) -> tuple[Rect | None, list[Rect]]:
        """The part of `tile` that no other tile's weight reaches (its blended value is the tile's own), and the
        rest of the part where its weight is above zero, as up to four rectangles. (None, []) when no part is the
        tile's alone."""
        (py0, py1), ey = self._axis("y", tile.y)
        (px0, px1), ex = self._axis("x", tile.x)
        if ey is None or ex is None:
            return None, []
        (y0, y1), (x0, x1) = ey, ex
        rest = [(py0, y0, px0, px1), (y1, py1, px0, px1), (y0, y1, px0, x0), (y0, y1, x1, px1)]
        return (y0, y1, x0, x1), [r for r in rest if r[1] > r[0] and r[3] > r[2]]
