"""Are borders and voids treated like the rest of the map? Class shares in the cells beside them.

The frame is the outer ``width`` cells of the raster; a hole's ring is the valid cells within ``width`` cells of a
nodata cell. Two measures:

- **raw** (:func:`frame_ratios`, :func:`hole_ratios`): a class's share there over its share elsewhere. It mixes
  artefacts with geography (a DEM whose edge runs along a ridge line has more ridge in its frame, rightly);
- **against the truth** (:func:`excess`, :func:`inset_frame`, :func:`punch_holes`): the map of a DEM cut smaller
  (or with holes punched in it) against the reference map of the whole DEM at the same cells, where every line
  is whole: what the edge or the void changed, and nothing else.

A class is over-represented when its share is more than 1.5 times the other; shares under ``floor`` (2 %) count as
``floor``, so a handful of cells of a rare class cannot make a ratio of 5.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


def near(mask: np.ndarray, width: int) -> np.ndarray:
    """Cells within `width` cells (chessboard distance) of a True cell of `mask`."""
    grown = mask.copy()
    for _ in range(width):
        padded = np.pad(grown, 1, constant_values=False)
        grown = grown | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:] \
            | padded[:-2, :-2] | padded[:-2, 2:] | padded[2:, :-2] | padded[2:, 2:]
    return grown


def frame(shape: tuple[int, ...], width: int = 3) -> np.ndarray:
    out = np.ones(shape[-2:], dtype=bool)
    out[width:-width, width:-width] = False
    return out


def ratios(values: np.ndarray, zone: np.ndarray, rest: np.ndarray, classes: Iterable[int],
           floor: float = 0.02) -> dict[int, float]:
    """For each class: its share in `zone` over its share in `rest` (the latter at least `floor`)."""
    zone_values, rest_values = values[zone], values[rest]
    out = {}
    for value in classes:
        share_zone = float(np.mean(zone_values == value)) if zone_values.size else 0.0
        share_rest = float(np.mean(rest_values == value)) if rest_values.size else 0.0
        out[int(value)] = share_zone / max(share_rest, floor)
    return out


def frame_ratios(values: np.ndarray, valid: np.ndarray, classes: Iterable[int], width: int = 3) -> dict[int, float]:
    """Class shares in the outer `width` cells vs the interior, valid cells only."""
    edge = frame(values.shape, width)
    return ratios(values, edge & valid, ~edge & valid & ~near(~valid, width), classes)


def hole_ratios(values: np.ndarray, valid: np.ndarray, classes: Iterable[int], width: int = 3) -> dict[int, float]:
    """Class shares in the valid cells within `width` of a nodata cell vs the cells away from holes and edges."""
    ring = near(~valid, width) & valid & ~frame(values.shape, width)
    rest = valid & ~near(~valid, width) & ~frame(values.shape, width)
    return ratios(values, ring, rest, classes)


def excess(values: np.ndarray, reference: np.ndarray, zone: np.ndarray, classes: Iterable[int],
           floor: float = 0.02) -> dict[int, float]:
    """For each class: its share in `values` over its share in `reference` (at least `floor`), in `zone`."""
    return {int(value): float(np.mean(values[zone] == value)) / max(float(np.mean(reference[zone] == value)), floor)
            for value in classes} if zone.any() else {int(value): 0.0 for value in classes}


def inset_frame(shape: tuple[int, ...], inset: int, width: int = 3) -> tuple[slice, slice, np.ndarray]:
    """The window of a raster `inset` cells in from each edge, and its own outer `width` cells (window-shaped)."""
    rows, cols = shape[-2:]
    window = (slice(inset, rows - inset), slice(inset, cols - inset))
    return window[0], window[1], frame((rows - 2 * inset, cols - 2 * inset), width)


def punch_holes(valid: np.ndarray, reach: int) -> np.ndarray:
    """Square holes (3 cells, the reach and twice the reach wide, in turn) on a grid through the valid interior,
    each at least twice the reach from the edge and from nodata: the mask of the punched cells."""
    rows, cols = valid.shape
    sizes = (3, max(3, reach), max(3, 2 * reach))
    far = ~near(~valid, 3 * reach) & ~frame(valid.shape, 3 * reach)
    holes = np.zeros_like(valid)
    step = 8 * reach
    k = 0
    for y in range(3 * reach, rows - 3 * reach, step):
        for x in range(3 * reach, cols - 3 * reach, step):
            size = sizes[k % len(sizes)]
            if far[y:y + size, x:x + size].all():
                holes[y:y + size, x:x + size] = True
                k += 1
    return holes
