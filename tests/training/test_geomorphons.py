"""Geomorphon labels (training/geomorphons.py) on synthetic surfaces with known forms and on the SRTM sample."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from osgeo import gdal, osr

from training.geomorphons import (CLASSES, DUAL, FLAT, FOOTSLOPE, FORMS, HOLLOW, PEAK, PIT, RIDGE, SHOULDER,
                                  SLOPE, SPUR, VALLEY, geomorphons, line_steps, ternary_pattern)
from training.geomorphons_io import main, read_dem

gdal.UseExceptions()
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "bigtujunga" / "bigtujunga_320x240.tif"
CELL = 30.0
RADIUS = 600.0                  # 20 axial and 14 diagonal steps at 30 m
L = 20


def grid(n: int, cell: float = CELL) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) in metres of an n x n grid whose centre cell is at (0, 0); y grows with the row."""
    y, x = (np.mgrid[0:n, 0:n] - n // 2) * cell
    return x, y


def interior(a: np.ndarray, margin: int = L) -> np.ndarray:
    """The cells whose lines of sight stay inside the raster."""
    return a[margin:-margin, margin:-margin]


@pytest.fixture
def sample(tmp_path: Path):
    copy = tmp_path / SAMPLE.name
    shutil.copy(SAMPLE, copy)
    return read_dem(copy)


# The lookup table and the palette


def test_lookup_table_is_the_papers():
    assert FORMS.shape == (9, 9) and FORMS.dtype == np.uint8
    n_minus, n_plus = np.indices(FORMS.shape)
    assert ((FORMS == 0) == (n_minus + n_plus > 8)).all()
    assert set(np.unique(FORMS)) == set(range(11))
    # Turning the terrain upside down swaps n- and n+, and each form with its dual.
    for m in range(9):
        for p in range(9 - m):
            assert FORMS[p, m] == DUAL[int(FORMS[m, p])], (m, p)
    assert FORMS[8, 0] == PEAK and FORMS[0, 8] == PIT and FORMS[0, 0] == FLAT and FORMS[4, 4] == SLOPE
    assert FORMS[6, 0] == RIDGE and FORMS[0, 6] == VALLEY and FORMS[3, 3] == SLOPE
    assert FORMS[3, 0] == SHOULDER and FORMS[0, 3] == FOOTSLOPE and FORMS[4, 2] == SPUR and FORMS[2, 4] == HOLLOW


def test_classes():
    assert [v for v, _, _ in CLASSES] == list(range(1, 11))
    assert [n for _, n, _ in CLASSES] == ["flat", "peak", "ridge", "shoulder", "spur", "slope", "hollow",
                                          "footslope", "valley", "pit"]
    colours = [c for _, _, c in CLASSES]
    assert all(len(c) == 7 and c[0] == "#" and int(c[1:], 16) >= 0 for c in colours)
    assert len(set(colours)) == 10


def test_line_steps():
    assert line_steps(30, 600, 0, diagonal=False) == range(1, 21)
    assert line_steps(30, 600, 0, diagonal=True) == range(1, 15)      # 14 x 42.4 m = 594 m
    assert line_steps(30, 599.99, 0, diagonal=False) == range(1, 20)
    assert line_steps(10, 600, 2, diagonal=True) == range(3, 43)


# Synthetic surfaces with known answers


def test_cone_apex_is_a_peak_and_bowl_bottom_a_pit():
    x, y = grid(61)
    cone = 500 - 0.4 * np.hypot(x, y)
    assert geomorphons(cone, CELL, RADIUS)[30, 30] == PEAK
    assert geomorphons(-cone, CELL, RADIUS)[30, 30] == PIT
    # Still a peak three cells from the edge, judged on the part of each line inside the raster.
    assert geomorphons(cone[27:, 27:], CELL, RADIUS)[3, 3] == PEAK


@pytest.mark.parametrize("aspect", [0.0, 30.0, 45.0, 100.0, 200.0, 333.0])
def test_tilted_plane_is_slope_away_from_the_edges(aspect: float):
    x, y = grid(61)
    a = math.radians(aspect)
    plane = math.tan(math.radians(10)) * (x * math.sin(a) + y * math.cos(a))
    forms = geomorphons(plane, CELL, RADIUS)
    assert (interior(forms) == SLOPE).all()
    assert (forms > 0).all()  # edge cells are classified too


def test_flat_plain_and_a_gentler_than_threshold_plane_are_flat():
    assert (geomorphons(np.full((30, 40), 812.0), CELL, RADIUS) == FLAT).all()
    x, y = grid(41)
    gentle = math.tan(math.radians(0.8)) * x    # every elevation angle within 1 degree of the horizon
    assert (geomorphons(gentle, CELL, RADIUS) == FLAT).all()
    assert (interior(geomorphons(gentle, CELL, RADIUS, flat_deg=0.5), 10) == SLOPE).all()


def test_v_valley_floor_is_valley_and_its_flanks_slope():
    x, _ = grid(61)
    v = 0.3 * np.abs(x)
    forms = interior(geomorphons(v, CELL, RADIUS))
    floor = 30 - L
    assert (forms[:, floor] == VALLEY).all()
    assert (np.delete(forms, floor, axis=1) == SLOPE).all()


def test_inverted_v_crest_is_ridge_and_its_flanks_slope():
    x, _ = grid(61)
    forms = interior(geomorphons(-0.3 * np.abs(x), CELL, RADIUS))
    crest = 30 - L
    assert (forms[:, crest] == RIDGE).all()
    assert (np.delete(forms, crest, axis=1) == SLOPE).all()


def test_pattern_directions_on_a_plane_rising_north():
    x, y = grid(21)
    pattern = ternary_pattern(-0.2 * y, CELL, 300.0)[:, 10, 10]      # rows grow southwards
    #                           E  NE  N  NW  W  SW   S  SE
    assert pattern.tolist() == [0, 1, 1, 1, 0, -1, -1, -1]


def test_diagonal_distances_are_longer():
    x, _ = grid(21)
    plane = math.tan(math.radians(1.2)) * x      # 1.2 degrees east; 0.85 degrees along the diagonals
    assert ternary_pattern(plane, CELL, 300.0)[:, 10, 10].tolist() == [1, 0, 0, 0, -1, 0, 0, 0]
    assert (geomorphons(plane, CELL, 300.0) == FLAT).all()


def test_skip_cells_ignores_a_spike_beside_the_apex():
    x, y = grid(61)
    cone = 500 - 0.4 * np.hypot(x, y)
    cone[30, 31] += 50.0
    assert geomorphons(cone, CELL, RADIUS)[30, 30] == RIDGE      # the east line now looks up: (7-, 1+)
    assert geomorphons(cone, CELL, RADIUS, skip_cells=1)[30, 30] == PEAK


# Invariances


def test_adding_a_constant_changes_nothing(sample):
    forms = geomorphons(sample.elevation, CELL, 450.0)
    assert (geomorphons(sample.elevation + 1000.0, CELL, 450.0) == forms).all()
    assert (geomorphons(sample.elevation - 5000.0, CELL, 450.0) == forms).all()


def separable_terrain(cell: float, n: int) -> np.ndarray:
    """Piecewise-linear terrain g(x) + h(y) whose kinks all lie on the 30 m grid, sampled every `cell` metres.

    Along every line of sight the elevation angle is extreme only at kinks or line ends, which both grids
    sample, so the forms must agree exactly where the grids coincide.
    """
    y, x = np.mgrid[0:n, 0:n] * cell
    g = 0.45 * np.abs(x - 690) - 0.8 * np.abs(x - 1470) + 0.23 * x + 0.6 * np.abs(x - 2100)
    h = -0.55 * np.abs(y - 930) + 0.35 * np.abs(y - 1590) + 0.3 * np.abs(y - 360)
    return 1200.0 + g + h


def test_same_terrain_at_10_m_and_30_m_gives_the_same_forms():
    coarse = geomorphons(separable_terrain(30.0, 91), 30.0, RADIUS)
    fine = geomorphons(separable_terrain(10.0, 271), 10.0, RADIUS)
    expected = interior(coarse)
    assert len(np.unique(expected)) >= 5        # a varied scene, so the comparison bites
    assert (interior(fine[::3, ::3]) == expected).all()


dems = arrays(np.float64, st.tuples(st.integers(3, 13), st.integers(3, 13)),
              elements=st.one_of(st.integers(0, 40).map(float), st.just(math.nan)))


@settings(max_examples=60, deadline=None)
@given(dem=dems, radius=st.sampled_from([15.0, 30.0, 45.0, 80.0]), flat=st.sampled_from([0.0, 1.0, 5.0]))
def test_rotating_reflecting_or_inverting_the_dem_moves_the_forms_with_it(dem, radius, flat):
    forms = geomorphons(dem, 10.0, radius, flat)
    assert ((forms == 0) == np.isnan(dem)).all()
    for k in (1, 2, 3):
        assert (geomorphons(np.rot90(dem, k), 10.0, radius, flat) == np.rot90(forms, k)).all()
    assert (geomorphons(dem.T, 10.0, radius, flat) == forms.T).all()
    dual = np.array([0] + [DUAL[v] for v in range(1, 11)], dtype=np.uint8)
    assert (geomorphons(-dem, 10.0, radius, flat) == dual[forms]).all()


# Nodata


def test_nan_centre_is_nodata_and_its_neighbours_are_classified():
    x, y = grid(41)
    cone = 500 - 0.4 * np.hypot(x, y)
    cone[20, 20] = np.nan
    forms = geomorphons(cone, CELL, RADIUS)
    assert forms[20, 20] == 0
    assert (forms > 0).sum() == forms.size - 1
    assert (geomorphons(np.full((5, 6), np.nan), CELL, RADIUS) == 0).all()


def test_nodata_mask_is_nodata_and_the_input_is_untouched(sample):
    dem = np.round(sample.elevation).astype(np.int16)
    dem[100:110, 150:160] = 32767
    before = dem.copy()
    masked = geomorphons(dem, CELL, 450.0, nodata_mask=dem == 32767)
    assert (dem == before).all()
    assert (masked[100:110, 150:160] == 0).all() and (masked > 0).sum() == dem.size - 100
    as_nan = np.where(dem == 32767, np.nan, dem.astype(np.float64))
    assert (geomorphons(as_nan, CELL, 450.0) == masked).all()


def test_a_line_ends_at_nodata_like_at_the_edge():
    plain = np.zeros((21, 21))
    plain[:, 15] = 100.0                          # a wall five cells east of the centre
    assert ternary_pattern(plain, CELL, 300.0)[0, 10, 10] == 1
    plain[10, 13] = np.nan                        # a void before the wall hides it
    assert ternary_pattern(plain, CELL, 300.0)[0, 10, 10] == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(dem=np.zeros(5)), "2-D"),
    (dict(cell_size=0.0), "cell_size"),
    (dict(search_radius_m=30.0), "search_radius_m"),
    (dict(skip_cells=-1), "skip_cells"),
    (dict(search_radius_m=90.0, skip_cells=2), "beyond the skip"),
    (dict(flat_deg=-1.0), "flat_deg"),
    (dict(nodata_mask=np.zeros((3, 3), bool)), "nodata_mask"),
])
def test_bad_arguments_say_what_is_wrong(kwargs, message):
    args = dict(dem=np.zeros((5, 5)), cell_size=CELL, search_radius_m=RADIUS) | kwargs
    with pytest.raises(ValueError, match=message):
        geomorphons(**args)


# The SRTM sample


def test_sample_matches_r_geomorphon(sample):
    """GRASS 8.2.1 `r.geomorphon search=20 skip=0 flat=1` on this DEM, its cells at least 20 from the edge.

    r.geomorphon keeps cells strictly closer than its radius, hence 599.99 m. The per-cell agreement was 100 %
    when this was written; the class counts pin it without storing GRASS's raster.
    """
    forms = interior(geomorphons(sample.elevation, CELL, 599.99))
    assert np.bincount(forms.ravel(), minlength=11).tolist() == [0, 0, 618, 6300, 0, 12413, 18156, 9992, 0,
                                                                   7350, 1171]


def test_sample_forms_are_plausible(sample):
    forms = geomorphons(sample.elevation, CELL, 450.0)
    assert (forms > 0).all()
    counts = np.bincount(forms.ravel(), minlength=11)
    assert (counts[[PEAK, RIDGE, SHOULDER, SPUR, SLOPE, HOLLOW, FOOTSLOPE, VALLEY]] > 0).all()
    assert counts.argmax() == SLOPE
    # Valleys lie below ridges of the same neighbourhood.
    z = sample.elevation
    lower = windows = 0
    for r in range(0, z.shape[0] - 31, 32):
        for c in range(0, z.shape[1] - 31, 32):
            f, w = forms[r:r + 32, c:c + 32], z[r:r + 32, c:c + 32]
            if (f == VALLEY).any() and (f == RIDGE).any():
                windows += 1
                lower += w[f == VALLEY].mean() < w[f == RIDGE].mean()
    assert windows >= 50 and lower > 0.9 * windows


def test_command_line_writes_a_styled_label_raster(tmp_path: Path, sample):
    source = tmp_path / SAMPLE.name                # the fixture's copy
    output = tmp_path / "forms.tif"
    assert main([str(source), str(output), "--radius", "450", "--flat", "1.5", "--skip", "1"]) == 0
    out = gdal.Open(str(output))
    band = out.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    expected = geomorphons(sample.elevation, CELL, 450.0, flat_deg=1.5, skip_cells=1)
    assert (band.ReadAsArray() == expected).all()
    assert out.GetGeoTransform() == sample.geotransform
    entry = band.GetRasterColorTable().GetColorEntry(VALLEY)
    assert "#%02x%02x%02x" % entry[:3] == CLASSES[VALLEY - 1][2]
    assert band.GetCategoryNames()[PEAK] == "peak"


def test_command_line_refuses_geographic_dems(tmp_path: Path, capsys):
    path = tmp_path / "lonlat.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 8, 8, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((-118.0, 0.001, 0, 34.0, 0, -0.001))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetSpatialRef(srs)
    ds = None
    with pytest.raises(SystemExit) as exit_:
        main([str(path), str(tmp_path / "out.tif"), "--radius", "300"])
    assert exit_.value.code == 1
    assert "geographic" in capsys.readouterr().err
