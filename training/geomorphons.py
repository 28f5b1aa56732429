"""Geomorphon landform classes (Jasiewicz & Stepinski 2013) in numpy: the landform CNN's training labels.

From every cell a line of sight runs in each of the eight principal directions (E, NE, N, NW, W, SW, S, SE:
counter-clockwise from east, as in the paper) out to the search radius, in metres, so a diagonal line has
``1/sqrt(2)`` as many steps as an axial one. Each cell ``k`` on the line has the elevation angle
``beta_k = atan((z_k - z_0) / d_k)``. The paper's zenith angle is ``phi = 90 - max(beta)`` and its nadir angle
``psi = 90 + min(beta)`` (degrees). The direction's ternary element compares them, with the flatness
threshold ``t``:

- ``0`` (level) when the line stays within ``t`` of the horizon: ``|max(beta)| <= t`` and ``|min(beta)| <= t``;
- otherwise ``+1`` (the line looks up) when the zenith angle is the smaller, ``phi < psi``, and ``-1`` (it looks
  down) when ``phi > psi``; an exact tie is level. ``psi - phi`` is ``max(beta) + min(beta)``: the highest
  point's elevation angle against the lowest point's depression angle.

The numbers of ``-1`` and ``+1`` elements, ``(n-, n+)``, pick one of the ten forms from :data:`FORMS`.

On the interior of the SRTM sample this reproduces GRASS 8.2 ``r.geomorphon`` cell for cell, given that
r.geomorphon keeps only the cells strictly closer than its search radius and this module those at most
``search_radius_m`` away: ``r.geomorphon search=20 flat=1`` at 30 m equals ``search_radius_m=599.99``.
A line ends at the raster's edge or at its first nodata cell, and is judged on the cells before that; a line
with none is level. So cells near the edge or a void get a class from what can be seen (r.geomorphon
leaves the former null and levels any line that meets a null). Cells with a nodata or NaN centre get 0.

Run ``python -m training geomorphons DEM.tif OUT.tif --radius 600`` to write a label raster.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

NODATA = 0

#: (value, name, colour) of the ten forms, in the conventional r.geomorphon palette.
CLASSES: list[tuple[int, str, str]] = [
    (1, "flat", "#dcdcdc"),
    (2, "peak", "#380000"),
    (3, "ridge", "#c80000"),
    (4, "shoulder", "#ff5014"),
    (5, "spur", "#fad23c"),
    (6, "slope", "#ffff3c"),
    (7, "hollow", "#b4e614"),
    (8, "footslope", "#3cfa96"),
    (9, "valley", "#0000ff"),
    (10, "pit", "#000038"),
]

FLAT, PEAK, RIDGE, SHOULDER, SPUR, SLOPE, HOLLOW, FOOTSLOPE, VALLEY, PIT = range(1, 11)

#: Each form's mirror image when the terrain is turned upside down (n- and n+ swap): peak <-> pit etc.
DUAL: dict[int, int] = {FLAT: FLAT, PEAK: PIT, RIDGE: VALLEY, SHOULDER: FOOTSLOPE, SPUR: HOLLOW,
                        SLOPE: SLOPE, HOLLOW: SPUR, FOOTSLOPE: SHOULDER, VALLEY: RIDGE, PIT: PEAK}

# The paper's (n-, n+) -> form lookup table (r.geomorphon uses the same). Rows: n-, the directions looking down;
# columns: n+, those looking up. "." marks the impossible n- + n+ > 8. Read along the top row: nothing below
# and more and more above goes flat -> footslope -> valley -> pit; down the first column, flat -> shoulder ->
# ridge -> peak. The table is symmetric under (n-, n+) -> (n+, n-) with DUAL, which the tests check.
_TABLE = """
    n+:  0  1  2  3  4  5  6  7  8
n- 0:   FL FL FL FS FS VL VL VL PT
n- 1:   FL FL FS FS FS VL VL VL .
n- 2:   FL SH SL SL HL HL VL .  .
n- 3:   SH SH SL SL SL HL .  .  .
n- 4:   SH SH SP SL SL .  .  .  .
n- 5:   RI RI SP SP .  .  .  .  .
n- 6:   RI RI RI .  .  .  .  .  .
n- 7:   RI RI .  .  .  .  .  .  .
n- 8:   PK .  .  .  .  .  .  .  .
"""
_CODES = {"FL": FLAT, "PK": PEAK, "RI": RIDGE, "SH": SHOULDER, "SP": SPUR, "SL": SLOPE, "HL": HOLLOW,
          "FS": FOOTSLOPE, "VL": VALLEY, "PT": PIT, ".": NODATA}


def _parse_table(text: str) -> np.ndarray:
    rows = [line.split(":")[1].split() for line in text.strip().splitlines()[1:]]
    return np.array([[_CODES[code] for code in row] for row in rows], dtype=np.uint8)


#: FORMS[n_minus, n_plus] is the form's class value (0 where n- + n+ > 8).
FORMS: np.ndarray = _parse_table(_TABLE)

# Zenith and nadir angles closer than this (radians) tie, so rounding cannot decide a mathematically exact tie
# (which synthetic and integer DEMs produce) differently at another cell size or elevation offset.
_TIE_RAD = 1e-9

#: (row step, column step) of the eight lines, counter-clockwise from east; rows run south.
DIRECTIONS: tuple[tuple[int, int], ...] = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def line_steps(cell_size: float, search_radius_m: float, skip_cells: int, diagonal: bool) -> range:
    """The steps k walked along one line: from ``skip_cells + 1`` to the last cell at most the radius away.

    Steps are cells in both kinds of direction (as in r.geomorphon), so a diagonal skip is sqrt(2) times longer.
    A tiny tolerance keeps radii such as 600 m at 30 m cells at exactly 20 steps.
    """
    step_m = cell_size * (math.sqrt(2.0) if diagonal else 1.0)
    last = math.floor(search_radius_m / step_m + 1e-9)
    first = skip_cells + 1
    return range(first, last + 1)


def _validated(dem: np.ndarray, cell_size: float, search_radius_m: float, flat_deg: float,
               nodata_mask: np.ndarray | None, skip_cells: int) -> np.ndarray:
    """The DEM as float64 with NaN wherever it is nodata; ValueError on arguments that make no sense."""
    dem = np.asarray(dem)
    if dem.ndim != 2:
        raise ValueError(f"the DEM must be a 2-D array, got shape {dem.shape}")
    if not (cell_size > 0 and math.isfinite(cell_size)):
        raise ValueError(f"cell_size must be a positive number of metres, got {cell_size}")
    if skip_cells < 0:
        raise ValueError(f"skip_cells must be 0 or more, got {skip_cells}")
    if not line_steps(cell_size, search_radius_m, skip_cells, diagonal=True):
        raise ValueError(f"search_radius_m={search_radius_m} leaves no diagonal step beyond the skip: make it at "
                         f"least {math.sqrt(2.0) * cell_size * (skip_cells + 1):g} m")
    if not flat_deg >= 0:
        raise ValueError(f"flat_deg must be 0 or more degrees, got {flat_deg}")
    z = dem.astype(np.float64)  # a copy: the caller's array is never touched
    if nodata_mask is not None:
        mask = np.asarray(nodata_mask, dtype=bool)
        if mask.shape != dem.shape:
            raise ValueError(f"nodata_mask has shape {mask.shape}, the DEM {dem.shape}")
        z[mask] = np.nan
    z[~np.isfinite(z)] = np.nan
    return z


def _elements(z: np.ndarray, cell_size: float, search_radius_m: float, flat_deg: float,
              skip_cells: int) -> Iterator[np.ndarray]:
    """The ternary element (int8, -1/0/+1) of every cell for each direction in turn.

    Per direction it keeps the running max and min of ``tan(beta)`` (atan is monotonic, so the angles are taken
    once at the end, in radians); memory is a few rasters whatever the radius. The DEM is padded with NaN, so
    the raster's edge ends a line just as a nodata cell does; ended lines feed NaN, which fmax/fmin ignore.
    """
    rows, cols = z.shape
    pad = line_steps(cell_size, search_radius_m, skip_cells, diagonal=False).stop - 1
    padded = np.pad(z, pad, mode="constant", constant_values=np.nan)
    rise = np.empty_like(z)
    flat_rad = math.radians(flat_deg)
    for dr, dc in DIRECTIONS:
        diagonal = dr != 0 and dc != 0
        step_m = cell_size * (math.sqrt(2.0) if diagonal else 1.0)
        highest = np.full_like(z, -np.inf)
        lowest = np.full_like(z, np.inf)
        ended = np.zeros(z.shape, bool)
        for k in range(1, line_steps(cell_size, search_radius_m, skip_cells, diagonal).stop):
            r0, c0 = pad + k * dr, pad + k * dc
            np.subtract(padded[r0:r0 + rows, c0:c0 + cols], z, out=rise)
            ended |= np.isnan(padded[r0:r0 + rows, c0:c0 + cols])
            if k <= skip_cells:
                continue
            rise /= k * step_m
            np.copyto(rise, np.nan, where=ended)
            np.fmax(highest, rise, out=highest)
            np.fmin(lowest, rise, out=lowest)
        level = np.ones(z.shape, bool)   # no valid cell on the line: level
        seen = np.isfinite(highest)
        up, down = np.arctan(highest[seen]), np.arctan(lowest[seen])
        level[seen] = (np.abs(up) <= flat_rad) & (np.abs(down) <= flat_rad)
        balance = np.zeros_like(z)      # psi - phi = max(beta) + min(beta)
        balance[seen] = up + down
        balance[np.abs(balance) <= _TIE_RAD] = 0.0
        yield np.where(level, 0, np.sign(balance)).astype(np.int8)


def ternary_pattern(dem: np.ndarray, cell_size: float, search_radius_m: float, flat_deg: float = 1.0,
                    nodata_mask: np.ndarray | None = None, skip_cells: int = 0) -> np.ndarray:
    """The (8, rows, cols) int8 ternary pattern, directions in :data:`DIRECTIONS` order; 0 at nodata cells."""
    z = _validated(dem, cell_size, search_radius_m, flat_deg, nodata_mask, skip_cells)
    pattern = np.stack(list(_elements(z, cell_size, search_radius_m, flat_deg, skip_cells)))
    pattern[:, np.isnan(z)] = 0
    return pattern


def geomorphons(dem: np.ndarray, cell_size: float, search_radius_m: float, flat_deg: float = 1.0,
                nodata_mask: np.ndarray | None = None, skip_cells: int = 0) -> np.ndarray:
    """Geomorphon classes 1..10 (see :data:`CLASSES`) of a DEM, uint8, 0 where the cell is nodata.

    ``dem`` is in metres on square cells of ``cell_size`` metres; ``search_radius_m`` is the line-of-sight
    length L in metres (at least one diagonal step); ``flat_deg`` the flatness threshold t in degrees;
    ``nodata_mask`` marks nodata cells (True) besides NaN; the first ``skip_cells`` cells of every line are left
    out, which keeps small bumps in a noisy DEM from deciding a cell's form.
    """
    z = _validated(dem, cell_size, search_radius_m, flat_deg, nodata_mask, skip_cells)
    n_minus = np.zeros(z.shape, np.uint8)
    n_plus = np.zeros(z.shape, np.uint8)
    for element in _elements(z, cell_size, search_radius_m, flat_deg, skip_cells):
        n_minus += element < 0
        n_plus += element > 0
    forms = FORMS[n_minus, n_plus]
    forms[np.isnan(z)] = NODATA
    return forms
