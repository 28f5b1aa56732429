"""Are borders and voids treated like the rest of the map? Class shares in the cells beside them vs elsewhere.

The frame is the outer ``width`` cells of the raster; a hole's ring is the valid cells within ``width`` cells of a
nodata cell. A class is over-represented there when its share is more than ``limit`` times its share elsewhere;
classes that are rare elsewhere (under ``floor``, 2 %) are judged against ``floor`` instead, so a handful of cells of
a rare class cannot make a ratio of 5.
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
