"""Is the input inside the model's training domain? Cheap checks on a sample of the raster, said before the wait.

- units: a DEM whose band or vertical CRS says feet, or whose values no metre DEM holds (above 9000 m);
- value ranges (not of elevations, which differ from place to place): the sample's median against the card's
  normalisation (zscore mean/std, minmax min/max), and reflectance bands that hold digital numbers;
- a DSM where a DEM is expected: a heuristic (see `DSM_STEP_M`), on fine rasters only.

The sample: up to 3 x 3 windows of SAMPLE_SIDE px at the raster's own resolution (height jumps need the native
cells), spread over the raster; never the whole raster. The pixel-size check lives with the run (execute.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from osgeo import gdal

from .card import ModelCard
from .georef import mean_pixel_size, srs_of
from .options import RunOptions
from .raster import RasterSource, map_bands, open_mask
from .strips import input_rescaling
from .windows import Window

gdal.UseExceptions()

SAMPLE_SIDE = 128
HIGHEST_M = 9000.0  # above Mount Everest: no DEM in metres holds it
Z_FAR = 4.0  # a band whose median lies this many of the card's std from its mean is outside the training data
# The DSM heuristic: on rasters of at most DSM_PIXEL_M pixels, buildings and trees make sharp steps of a few
# metres from one cell to the next; bare-earth lidar DEMs are smooth at that scale. Measured (docs/troubleshooting.md):
# a 2.5 m lidar DSM of Edinburgh has 5.8 % of its cells with a second difference above 2 m, 2 m and 1 m lidar DEMs
# 0.0 %. Above DSM_SHARE it warns; cliffs and quarries count too, hence a heuristic.
DSM_PIXEL_M = 5.0
DSM_STEP_M = 2.0
DSM_SHARE = 0.01
FEET = ("ft", "foot", "feet", "us survey foot", "us-ft", "ftus", "international foot")


def sample_windows(width: int, height: int, side: int = SAMPLE_SIDE) -> list[Window]:
    """Up to 3 x 3 windows of `side` px (less on small rasters), spread over the raster, without repeats."""
    w, h = min(side, width), min(side, height)
    spots = {(round((width - w) * fx), round((height - h) * fy)) for fy in (0.2, 0.5, 0.8) for fx in (0.2, 0.5, 0.8)}
    return [Window(x, y, w, h) for x, y in sorted(spots)]


def read_sample(source: RasterSource) -> list[tuple[np.ndarray, np.ndarray]]:
    """(values (bands, h, w) float32 after the input scaling, validity (h, w)) of each sample window."""
    windows = []
    for win in sample_windows(source.width, source.height):
        data = np.empty((len(source.bands), win.h, win.w), dtype=np.float32)
        valid = np.empty((win.h, win.w), dtype=bool)
        source.read_rows(win.y, win.x, data, valid)
        windows.append((data, valid))
    return windows


def input_domain(ds: gdal.Dataset, path: str, card: ModelCard, options: RunOptions, name: str) -> list[str]:
    """`domain_warnings` for the raster `ds` at `path` with the bands, scaling and mask of `options`."""
    scale, offset = input_rescaling(options.input_scale, options.input_offset, card) or (None, None)
    source = RasterSource(path, ds, map_bands(ds, card, options.bands, path), scale, offset,
                          open_mask(options.valid_mask, ds, path) if options.valid_mask else None)
    return domain_warnings(source, card, name)


def domain_warnings(source: RasterSource, card: ModelCard, name: str) -> list[str]:
    """What about `source` lies outside `card`'s training domain, one message each naming the fix; `name` names
    the raster ("'dem.tif'")."""
    sample = read_sample(source)
    values = [np.concatenate([data[i][valid] for data, valid in sample]) for i in range(len(source.bands))]
    if card.input.kind != "dem" and [b.unit for b in card.input.bands] != ["m"]:
        return _ranges(values, source.bands, card, name)
    # elevations: absolute heights differ from place to place, so their units are checked instead of a range
    messages = _feet(source, name)
    if not messages and values[0].size:
        messages = _impossible_heights(values[0], name)
    return messages + _dsm(source, sample, name)


def _feet(source: RasterSource, name: str) -> list[str]:
    """The band's unit or the vertical CRS says feet (metres expected); or only the horizontal CRS is in feet."""
    given = source.dataset.GetRasterBand(source.bands[0]).GetUnitType().strip()
    unit = given.lower()
    srs = srs_of(source.dataset)
    vertical = srs.GetAttrValue("VERT_CS|UNIT") if srs is not None and srs.IsCompound() else None
    fix = ("Convert the elevations to metres first (Raster calculator: \"dem@1\" * 0.3048, or gdal_calc.py "
           "--calc=\"A*0.3048\"); if they already are metres, set the band's unit to m (gdal_edit.py -units m).")
    said = given if unit in FEET else (vertical if vertical and vertical.lower() in FEET else None)
    if said:
        return [f"{name} says its elevations are in {said}, but the model was trained on metres: heights and "
                f"slopes are 3.3 times too large for it. {fix}"]
    linear = srs.GetLinearUnitsName() if srs is not None and srs.IsProjected() else ""
    if linear.lower() in FEET and unit not in ("m", "metre", "meter", "metres", "meters"):
        return [f"{name} is in a CRS measured in {linear}; DEMs in such CRSs often hold elevations in feet too, "
                f"and the model was trained on metres. If the elevations are in feet: {fix}"]
    return []


def _impossible_heights(heights: np.ndarray, name: str) -> list[str]:
    high = float(np.percentile(heights, 98))
    if high <= HIGHEST_M:
        return []
    return [f"{name} holds elevations up to {high:,.0f} (98th percentile of a sample), higher than any mountain in "
            "metres: it is probably in feet or centimetres, and the model was trained on metres. Convert it to "
            "metres first (Raster calculator: * 0.3048 for feet, / 100 for centimetres)."]


def _ranges(values: Sequence[np.ndarray], bands: Sequence[int], card: ModelCard, name: str) -> list[str]:
    """One message for the bands whose sample's median lies far outside the values the card's normalisation was
    made for (or, for reflectance bands, that hold digital numbers)."""
    norm, found = card.input.normalization, []
    for i, (band, v) in enumerate(zip(bands, values)):
        if not v.size:
            continue
        median, trained = float(np.median(v)), None
        if norm.method == "zscore" and i < len(norm.mean) and norm.std[i]:
            if abs(median - norm.mean[i]) > Z_FAR * abs(norm.std[i]):
                trained = f"around {norm.mean[i]:.4g} ± {abs(norm.std[i]):.3g}"
        elif norm.method == "minmax" and i < len(norm.min):
            low, high = norm.min[i], norm.max[i]
            if not low - (high - low) <= median <= high + (high - low):
                trained = f"between {low:.4g} and {high:.4g}"
        elif card.input.bands[i].unit.lower() == "reflectance" and median > 2.0:
            trained = "of reflectance (0 to about 1)"
        if trained:
            found.append(f"band {band} about {median:.4g} where the model's '{card.input.bands[i].name}' was "
                         f"trained on values {trained}")
    if not found:
        return []
    return [f"{name} holds values outside those the model was trained on (medians of a sample): "
            f"{'; '.join(found)}. The input is probably in other units (digital numbers, reflectance, a scale "
            "factor) or its bands are in another order: check the band order and the input scaling (the sensor "
            "preset, or --input-scale / --input-offset)."]


def _dsm(source: RasterSource, sample: list[tuple[np.ndarray, np.ndarray]], name: str) -> list[str]:
    """The DSM heuristic (see DSM_STEP_M) on the first band of the sample."""
    pixel = mean_pixel_size(source.dataset)
    if pixel is None or pixel > DSM_PIXEL_M:
        return []
    share = dsm_share(sample)
    if share <= DSM_SHARE:
        return []
    return [f"{name} looks like a surface model (DSM) with buildings or trees, not bare earth: {100 * share:.1f} % "
            f"of a sample of its cells jump by more than {DSM_STEP_M:g} m from their neighbours (bare-earth DEMs: "
            "under 1 %; a heuristic, cliffs count too). The model was trained on bare-earth DEMs: use a DTM, or "
            "filter the DSM to the ground first (e.g. WhiteboxTools RemoveOffTerrainObjects)."]


def dsm_share(sample: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The share of valid inner cells whose second difference across x or y exceeds DSM_STEP_M."""
    sharp = total = 0
    for data, valid in sample:
        z = data[0]
        if min(z.shape) < 3:
            continue
        c = z[1:-1, 1:-1]
        step = np.maximum(np.abs(z[1:-1, :-2] + z[1:-1, 2:] - 2 * c), np.abs(z[:-2, 1:-1] + z[2:, 1:-1] - 2 * c))
        inner = (valid[1:-1, 1:-1] & valid[1:-1, :-2] & valid[1:-1, 2:] & valid[:-2, 1:-1] & valid[2:, 1:-1])
        sharp += int((step[inner] > DSM_STEP_M).sum())
        total += int(inner.sum())
    return sharp / total if total else 0.0
