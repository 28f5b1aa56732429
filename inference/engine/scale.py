"""A terrain model's scale: the search distance in metres, and what it is in cells of the raster it runs on.

Terrain models (card `input.scale`) run at the DEM's own cell size, whatever it is, and are told the ground cell
sides and the search distance through a second graph input. The distance defaults to a fixed number of cells,
so it adapts to the pixel size. A distance longer than the graph can reach (`max_cells`) is met by averaging
the DEM to coarser cells first (the workflows do that); one shorter than `min_cells` is refused, since it would
need finer cells than the DEM has.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .card import ScaleSpec
from .errors import InputError

_SLACK = 1e-6  # a distance of exactly max_cells cells fits


@dataclass(frozen=True)
class TerrainScale:
    cell_x_m: float
    cell_y_m: float
    search_m: float
    spec: ScaleSpec

    @property
    def cells(self) -> float:
        """The search distance in cells of the finer side (what the graph must reach)."""
        return self.search_m / min(self.cell_x_m, self.cell_y_m)

    @property
    def coarse_cell_m(self) -> float | None:
        """The cell size to average the DEM to so the search fits the graph's reach; None when it fits."""
        if self.cells <= self.spec.max_cells * (1 + _SLACK):
            return None
        return self.search_m / self.spec.max_cells

    def feed(self) -> np.ndarray:
        """The graph's scale input."""
        return np.array([self.cell_x_m, self.cell_y_m, self.search_m], dtype=np.float32)

    def describe(self) -> str:
        """One sentence for the log, at the start of the run."""
        cell = (self.cell_x_m + self.cell_y_m) / 2
        sides = f"{self.cell_x_m:.3g} x {self.cell_y_m:.3g} m" if abs(self.cell_x_m - self.cell_y_m) > 0.01 * cell \
            else f"{cell:.3g} m"
        text = f"Scale: search distance {self.search_m:.4g} m = {self.search_m / cell:.3g} cells of {sides}"
        coarse = self.coarse_cell_m
        if coarse:
            text += (f"; the model reaches {self.spec.max_cells:g} cells, so the DEM is averaged to {coarse:.4g} m "
                     f"cells for it ({coarse / cell:.3g}x coarser) and the results brought back to its grid")
        return text + "."


def terrain_scale(spec: ScaleSpec, sizes: tuple[float, float] | None, search_m: float | None,
                  name: str = "the raster") -> TerrainScale:
    """The scale of a run on cells of `sizes` (x, y metres); `search_m` None or 0 takes the model's default."""
    if sizes is None:
        raise InputError(f"{name} has no CRS, so its cell size in metres is unknown and the terrain model cannot "
                         "set its scale. Assign the DEM's CRS (Layer Properties > Source, or gdal_edit.py -a_srs).")
    cx, cy = (float(s) for s in sizes)
    if not (cx > 0 and cy > 0 and math.isfinite(cx) and math.isfinite(cy)):
        raise InputError(f"{name} has cells of {cx:g} x {cy:g} m; a DEM needs a positive cell size.")
    if search_m is None or search_m == 0:
        search_m = spec.default_cells * (cx + cy) / 2
    if not (search_m > 0 and math.isfinite(search_m)):
        raise InputError(f"The search distance must be a positive number of metres, got {search_m:g}.")
    shortest = spec.min_cells * max(cx, cy)
    if search_m < shortest * (1 - _SLACK):
        raise InputError(f"A search distance of {search_m:g} m is less than {spec.min_cells:g} cells of {name} "
                         f"({max(cx, cy):.3g} m cells): the model would need finer cells than the DEM has. Use "
                         f"at least {math.ceil(shortest * 100) / 100:g} m, or leave the distance empty for the "
                         f"default ({spec.default_cells:g} cells).")
    return TerrainScale(cx, cy, float(search_m), spec)
