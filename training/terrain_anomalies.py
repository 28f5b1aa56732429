"""Synthetic terrain anomalies planted into a real DEM, to score a DEM anomaly detector where no map of real ones
exists. Deterministic (one seed gives the same DEM, footprint and list), and defined at any cell size: every
anomaly is drawn in cells (so it is always "a few cells up") and placed in metres (cell_x, cell_y may differ, as
on a geographic grid at the raster's centre latitude).

| kind        | sign | footprint (cells)               | relief (metres)                          | what it stands for                  |
|-------------|------|---------------------------------|------------------------------------------|-------------------------------------|
| pit         | -    | diameter 3-15 (cosine hollow)   | 0.1-0.3 x diameter in metres             | sinkhole, kettle, shell crater      |
| mound       | +    | diameter 3-15 (cosine bump)     | 0.1-0.3 x diameter in metres             | spoil heap, barrow, hay/ore pile    |
| quarry      | -    | 4-15 x 4-22 (aspect 1-1.5)      | floor 0.15-0.4 x width below the lowest  | quarry, mining pit, borrow pit      |
|             |      |                                 | cell of its rectangle (flat floor)       |                                     |
| embankment  | +    | 12-40 long, base 3-5 wide       | 0.2-0.4 x base width in metres           | road/rail embankment, levee, dam    |
| spike       | +    | 1 (or 2 x 2)                    | 1-4 x cell size                          | DEM artefact: bird, cloud, blunder  |
| void        | -    | diameter 2-6 (blob, flat)       | floor 1-3 x cell size below the lowest   | DEM artefact: void filled too low   |
| stripe      | +/-  | 15-60 long, 1 wide (row/column) | 0.15-0.5 x cell size, constant offset    | DEM artefact: scan-line/tile seam   |

Relief is tied to the anomaly's width (constructed features keep their shape across scales: depth/width 0.1-0.4)
or, for artefacts, to the cell size (a step between neighbours of 1-4 cells' rise for spikes). At 1 km cells the
kinds are shapes rather than real objects; what matters there is that they are shapes terrain does not make.

``footprint`` is where the elevation changed by at least ``FOOTPRINT_FRACTION`` of the anomaly's relief (its body);
``touched`` is every changed cell. Evaluations count the footprint as anomalous, untouched cells as normal, and
leave the fringe (touched, outside the footprint: the last millimetres of a cosine taper) out of both.
NaN (nodata) cells stay NaN and are never touched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

KINDS = ("pit", "mound", "quarry", "embankment", "spike", "void", "stripe")
FOOTPRINT_FRACTION = 0.2


@dataclass(frozen=True)
class KindSpec:
    sign: int  # +1 rise, -1 depression, 0 either (drawn)
    size_cells: tuple[int, int]  # width across (diameter, rectangle side, embankment base, blob diameter)
    length_cells: tuple[int, int]  # along the line (embankment, stripe); (0, 0) for compact kinds
    relief: tuple[float, float]  # x width in metres (pit, mound, quarry, embankment) or x cell size (artefacts)
    per_cell: bool  # relief scales with the cell size rather than the width


SPECS: dict[str, KindSpec] = {
    "pit": KindSpec(-1, (3, 15), (0, 0), (0.1, 0.3), False),
    "mound": KindSpec(1, (3, 15), (0, 0), (0.1, 0.3), False),
    "quarry": KindSpec(-1, (4, 15), (0, 0), (0.15, 0.4), False),
    "embankment": KindSpec(1, (3, 5), (12, 40), (0.2, 0.4), False),
    "spike": KindSpec(1, (1, 2), (0, 0), (1.0, 4.0), True),
    "void": KindSpec(-1, (2, 6), (0, 0), (1.0, 3.0), True),
    "stripe": KindSpec(0, (1, 1), (15, 60), (0.15, 0.5), True),
}
#: The largest reach of any kind from its site, in cells (sites must keep this far from the mask's border).
REACH_CELLS = 21


@dataclass(frozen=True)
class Planted:
    kind: str
    row: int
    col: int
    sign: int  # +1 rise, -1 depression
    size_cells: float  # width across, in cells (along x)
    size_m: float  # the same in metres
    length_cells: float  # along a line (embankment, stripe), 0 for compact kinds
    relief_m: float  # the largest elevation change
    cells: int  # footprint cells


def _cosine(r: np.ndarray) -> np.ndarray:
    """1 at r = 0, smoothly to 0 at r >= 1."""
    return np.where(r < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.clip(r, 0.0, 1.0))), 0.0)


def _window(shape: Sequence[int], row: int, col: int, reach: int) -> tuple[slice, slice]:
    return (slice(max(row - reach, 0), min(row + reach + 1, shape[0])),
            slice(max(col - reach, 0), min(col + reach + 1, shape[1])))


def _offsets_m(win: tuple[slice, slice], row: int, col: int, cell: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) in metres from the site to every cell of the window."""
    rows = (np.arange(win[0].start, win[0].stop) - row)[:, None] * cell[1]
    cols = (np.arange(win[1].start, win[1].stop) - col)[None, :] * cell[0]
    return np.broadcast_to(rows, (rows.shape[0], cols.shape[1])), np.broadcast_to(cols, (rows.shape[0], cols.shape[1]))


def plant_one(z: np.ndarray, kind: str, row: int, col: int, cell: tuple[float, float],
              rng: np.random.Generator) -> tuple[np.ndarray, tuple[slice, slice], Planted]:
    """Plant one anomaly of `kind` in `z` (changed in place); return (change in its window, window, Planted)."""
    spec = SPECS[kind]
    cx, cy = cell
    width = float(rng.uniform(spec.size_cells[0], spec.size_cells[1]))  # cells along x
    if kind == "spike":
        width = float(rng.choice([1, 2], p=[0.7, 0.3]))
    length = float(rng.uniform(*spec.length_cells)) if spec.length_cells[1] else 0.0
    ratio = float(rng.uniform(*spec.relief))
    relief = ratio * (cx if spec.per_cell else width * cx)
    sign = spec.sign or int(rng.choice([-1, 1]))
    reach = int(math.ceil(max(width, length) / 2 * max(1.0, cx / cy))) + 2
    win = _window(z.shape, row, col, reach)
    dy, dx = _offsets_m(win, row, col, cell)
    old = z[win].copy()
    new = old.copy()
    half = width * cx / 2
    if kind in ("pit", "mound"):
        new = old + sign * relief * _cosine(np.hypot(dy, dx) / half)
    elif kind == "quarry":
        aspect = float(rng.uniform(1.0, 1.5))
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half * aspect)
        floor = np.nanmin(old[inside]) - relief
        new = np.where(inside, floor, old)
    elif kind == "embankment":
        angle = float(rng.uniform(0, np.pi))
        along, across = dx * math.cos(angle) + dy * math.sin(angle), -dx * math.sin(angle) + dy * math.cos(angle)
        crest = 0.3 * half
        lateral = np.clip((half - np.abs(across)) / (half - crest), 0.0, 1.0)
        ends = np.clip((length * cx / 2 - np.abs(along)) / (half - crest) + 1.0, 0.0, 1.0)
        new = old + relief * lateral * ends
    elif kind == "spike":
        n = int(width)
        inside = (dy >= 0) & (dy < n * cy - 1e-9) & (dx >= 0) & (dx < n * cx - 1e-9)
        new = np.where(inside, old + relief, old)
    elif kind == "void":
        radius = half * (1.0 + 0.35 * np.sin(3 * np.arctan2(dy, dx) + rng.uniform(0, 2 * np.pi)))
        inside = np.hypot(dy, dx) <= np.maximum(radius, 0.5 * min(cx, cy))
        new = np.where(inside, np.nanmin(old[inside]) - relief, old)
    elif kind == "stripe":
        n = int(round(length / 2))
        inside = np.zeros(old.shape, dtype=bool)
        if rng.random() < 0.5:
            inside[(dy == 0) & (np.abs(dx) <= n * cx)] = True
        else:
            inside[(dx == 0) & (np.abs(dy) <= n * cy)] = True
        new = np.where(inside, old + sign * relief, old)
    else:
        raise ValueError(f"unknown anomaly kind '{kind}': use one of {', '.join(KINDS)}")
    change = np.where(np.isfinite(old), new - old, 0.0)
    z[win] = old + change
    cells = int((np.abs(change) >= FOOTPRINT_FRACTION * relief).sum())
    return change, win, Planted(kind, int(row), int(col), sign, width, width * cx, length, relief, cells)


@dataclass
class Scene:
    """A DEM with anomalies planted: ``labels`` is the 1-based index into ``planted`` on each footprint cell."""

    elevation: np.ndarray  # float64, NaN at nodata
    labels: np.ndarray  # int32, 0 outside every footprint
    touched: np.ndarray  # bool, every changed cell
    planted: list[Planted]

    @property
    def footprint(self) -> np.ndarray:
        return self.labels > 0

    @property
    def normal(self) -> np.ndarray:
        """Valid cells no anomaly touched (the negatives of an evaluation)."""
        return np.isfinite(self.elevation) & ~self.touched

    def kind_mask(self, kind: str) -> np.ndarray:
        indices = np.asarray([0] + [p.kind == kind for p in self.planted], dtype=bool)
        return indices[self.labels]


def plant(dem: np.ndarray, sites: np.ndarray, cell: float | tuple[float, float], seed: int | np.random.Generator,
          kinds: Sequence[str] = KINDS) -> Scene:
    """Plant one anomaly at each (row, col) of ``sites``, `kinds` in turn; ``cell`` is the cell size in metres
    (one number, or (x, y)). The DEM itself is not modified."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    cell_xy = (float(cell), float(cell)) if isinstance(cell, (int, float)) else (float(cell[0]), float(cell[1]))
    if not all(math.isfinite(c) and c > 0 for c in cell_xy):
        raise ValueError(f"the cell size must be positive metres, got {cell}")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown anomaly kind(s) {', '.join(unknown)}: use {', '.join(KINDS)}")
    z = np.array(dem, dtype=np.float64, copy=True)
    labels = np.zeros(z.shape, dtype=np.int32)
    touched = np.zeros(z.shape, dtype=bool)
    planted: list[Planted] = []
    for i, (row, col) in enumerate(np.asarray(sites, dtype=np.int64).reshape(-1, 2)):
        change, win, p = plant_one(z, kinds[i % len(kinds)], int(row), int(col), cell_xy, rng)
        labels[win][np.abs(change) >= FOOTPRINT_FRACTION * p.relief_m] = i + 1
        touched[win] |= change != 0
        planted.append(p)
    valid = np.isfinite(z)
    labels[~valid] = 0
    return Scene(z, labels, touched & valid, planted)


def sites_in(mask: np.ndarray, count: int, spacing: int, rng: np.random.Generator, edge: int = 8) -> np.ndarray:
    """Up to ``count`` (row, col) sites inside ``mask``, at least ``edge`` cells from its border and
    ``spacing`` cells apart (Chebyshev), drawn at random."""
    m = np.asarray(mask, dtype=bool)
    inner = m.copy()
    for axis in (0, 1):
        for shift in range(1, edge + 1):
            inner &= np.roll(m, shift, axis) & np.roll(m, -shift, axis)
    inner[:edge] = inner[-edge:] = False
    inner[:, :edge] = inner[:, -edge:] = False
    candidates = np.argwhere(inner)
    chosen: list[np.ndarray] = []
    for index in rng.permutation(len(candidates)):
        site = candidates[index]
        if all(np.abs(site - other).max() >= spacing for other in chosen):
            chosen.append(site)
            if len(chosen) == count:
                break
    return np.asarray(chosen, dtype=np.int64).reshape(-1, 2)


def plant_scene(dem: np.ndarray, cell: float | tuple[float, float], seed: int, per_kind: int = 10,
                mask: np.ndarray | None = None, spacing: int = 2 * REACH_CELLS + 4,
                kinds: Sequence[str] = KINDS) -> Scene:
    """Up to ``per_kind`` anomalies of each kind at random valid sites (inside ``mask`` if given), kept
    ``spacing`` cells apart and :data:`REACH_CELLS` from the mask's and the raster's border and from nodata."""
    rng = np.random.default_rng(seed)
    allowed = np.isfinite(dem) if mask is None else (np.asarray(mask, bool) & np.isfinite(dem))
    sites = sites_in(allowed, per_kind * len(kinds), spacing, rng, edge=REACH_CELLS)
    return plant(dem, sites, cell, rng, kinds)
