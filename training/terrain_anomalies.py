"""Synthetic terrain anomalies planted into a real DEM, to score a DEM anomaly model where no map of real ones
exists: pits (sinkholes, kettles), mounds (spoil heaps, barrows), quarries (flat-floored cuts with steep walls),
and spikes (single-cell artefacts of the DEM itself). Each returns the modified elevations and its footprint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("pit", "mound", "quarry", "spike")


@dataclass(frozen=True)
class Planted:
    kind: str
    row: int
    col: int
    radius: int


def _bump(size: int, radius: float) -> np.ndarray:
    """A (size, size) smooth bump, 1 at the centre, 0 beyond ``radius`` cells (cosine taper)."""
    y, x = np.mgrid[0:size, 0:size] - size // 2
    r = np.hypot(y, x) / radius
    return np.where(r < 1.0, 0.5 * (1.0 + np.cos(np.pi * r)), 0.0)


def plant(dem: np.ndarray, sites: np.ndarray, rng: np.random.Generator,
          depth_m: tuple[float, float] = (15.0, 40.0)) -> tuple[np.ndarray, np.ndarray, list[Planted]]:
    """Plant one anomaly at each (row, col) of ``sites``, kinds in turn; return (new DEM, footprint mask, list).

    Pits and mounds are cosine bumps of 2-4 cells radius and ``depth_m`` relief; a quarry cuts a square of
    3-5 cells down to ``depth_m`` below its lowest rim cell; a spike lifts one cell by 3 x ``depth_m``.
    NaN (nodata) cells stay NaN and are never in the footprint.
    """
    z = np.array(dem, dtype=np.float64, copy=True)
    footprint = np.zeros(z.shape, dtype=bool)
    planted: list[Planted] = []
    for i, (row, col) in enumerate(np.asarray(sites, dtype=np.int64)):
        kind = KINDS[i % len(KINDS)]
        relief = float(rng.uniform(*depth_m))
        if kind in ("pit", "mound"):
            radius = int(rng.integers(2, 5))
            size = 2 * radius + 1
            bump = _bump(size, radius + 0.5) * relief * (-1.0 if kind == "pit" else 1.0)
            window = (slice(row - radius, row + radius + 1), slice(col - radius, col + radius + 1))
            z[window] += bump
            footprint[window] |= bump != 0
        elif kind == "quarry":
            radius = int(rng.integers(1, 3))
            window = (slice(row - radius, row + radius + 1), slice(col - radius, col + radius + 1))
            z[window] = np.nanmin(z[window]) - relief
            footprint[window] = True
        else:
            radius = 0
            z[row, col] += 3.0 * relief
            footprint[row, col] = True
        planted.append(Planted(kind, int(row), int(col), radius))
    footprint &= np.isfinite(z)
    return z, footprint, planted


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
