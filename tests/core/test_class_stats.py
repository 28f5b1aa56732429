"""Class statistics: counts against numpy, nodata, zero-pixel classes, projected and ellipsoidal areas, outputs."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import CancelledError, ClassInfo
from deepstrata.inference.workflows.class_stats import CSV_HEADER, class_statistics, format_table, write_csv
from ds_testing import rasters

WGS84_A, WGS84_INVF = 6378137.0, 298.257223563
WGS84_SURFACE_KM2 = 510_065_621.724  # area of the WGS84 ellipsoid (Moritz, Geodetic Reference System 1980 / WGS84)
CLASSES = [ClassInfo(1, "water", "#1f77b4"), ClassInfo(2, "forest", "#2ca02c"), ClassInfo(3, "urban", "#7f7f7f"),
           ClassInfo(4, "glacier", "#ffffff")]


def _local_cell_area(lat_top: float, lat_bottom: float, dlon: float, steps: int = 2000) -> float:
    """Independent reference: integrate M(φ) N(φ) cos φ dφ dλ numerically (midpoint rule), in m²."""
    f = 1.0 / WGS84_INVF
    e2 = f * (2.0 - f)
    step = math.radians(lat_top - lat_bottom) / steps  # from the difference: tiny cells keep their precision
    phi = math.radians(lat_bottom) + (np.arange(steps) + 0.5) * step
    w2 = 1.0 - e2 * np.sin(phi) ** 2
    integrand = WGS84_A ** 2 * (1.0 - e2) * np.cos(phi) / w2 ** 2
    return float(integrand.sum() * step * math.radians(dlon))


@pytest.fixture
def classified(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """300 x 520 px of classes {1, 2, 3, 7} with nodata 255 patches: more than one block row and column."""
    rng = np.random.default_rng(4)
    array = rng.choice(np.array([1, 2, 3, 7], dtype=np.uint8), size=(300, 520), p=[0.5, 0.3, 0.15, 0.05])
    array[20:60, 100:180] = 255
    array[-5:, :] = 255
    return rasters.write_raster(tmp_path / "classes.tif", array, nodata=255), array


def test_counts_match_numpy_and_zero_classes_are_listed(classified: tuple[Path, np.ndarray]) -> None:
    path, array = classified
    stats = class_statistics(str(path), CLASSES)
    values, counts = np.unique(array[array != 255], return_counts=True)
    assert [s.value for s in stats] == [1, 2, 3, 4, 7]
    assert [s.name for s in stats] == ["water", "forest", "urban", "glacier", "class 7"]
    by_value = {s.value: s for s in stats}
    for v, n in zip(values.tolist(), counts.tolist()):
        assert by_value[v].pixels == n
    assert by_value[4].pixels == 0 and by_value[4].area_m2 == 0 and by_value[4].percent == 0
    assert sum(s.pixels for s in stats) == int((array != 255).sum())
    assert sum(s.percent for s in stats) == pytest.approx(100.0, abs=1e-9)
    assert by_value[1].percent == pytest.approx(100.0 * counts[0] / counts.sum())


def test_projected_areas_are_exact(classified: tuple[Path, np.ndarray]) -> None:
    path, array = classified  # 10 m pixels in EPSG:32633
    for s in class_statistics(str(path), CLASSES):
        assert s.area_m2 == s.pixels * 100.0
        assert s.area_ha == pytest.approx(s.pixels / 100.0, rel=1e-12)


def test_area_uses_the_crs_linear_units(tmp_path: Path) -> None:
    """EPSG:2229 (California zone 5) is in US survey feet: a 3 ft pixel is 0.9144 m wide."""
    path = rasters.write_raster(tmp_path / "ft.tif", np.ones((4, 5), np.uint8), epsg=2229,
                                geotransform=(6_400_000.0, 3.0, 0.0, 1_900_000.0, 0.0, -3.0))
    [stat] = class_statistics(str(path))
    assert stat.area_m2 == pytest.approx(20 * (3 * 1200 / 3937) ** 2, rel=1e-12)


def test_names_come_from_the_band_categories_without_classes(tmp_path: Path) -> None:
    path = rasters.write_raster(tmp_path / "named.tif", np.array([[0, 1, 2, 2]], np.uint8), nodata=0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(1).SetCategoryNames(["", "ridge", "valley"])
    ds = None
    stats = class_statistics(str(path))
    assert [(s.value, s.name, s.pixels) for s in stats] == [(1, "ridge", 1), (2, "valley", 2)]


def test_geographic_rows_have_ellipsoidal_areas(tmp_path: Path) -> None:
    """A 1 x 1 degree cell at the equator, and 1 arcsec cells at 34N, row by row (one class per row)."""
    equator = rasters.write_raster(tmp_path / "eq.tif", np.ones((1, 1), np.uint8), epsg=4326,
                                   geotransform=(0.0, 1.0, 0.0, 1.0, 0.0, -1.0))
    [cell] = class_statistics(str(equator))
    assert cell.area_m2 == pytest.approx(_local_cell_area(1.0, 0.0, 1.0), rel=1e-9)
    assert cell.area_m2 / 1e6 == pytest.approx(12_308.8, abs=0.5)  # published 1 x 1 degree value on WGS84

    arcsec = 1.0 / 3600
    rows = np.repeat(np.arange(1, 4, dtype=np.uint8)[:, None], 5, axis=1)
    path = rasters.write_raster(tmp_path / "arcsec.tif", rows, epsg=4326,
                                geotransform=(-118.0, arcsec, 0.0, 34.0 + 1.5 * arcsec, 0.0, -arcsec))
    stats = class_statistics(str(path))
    for s in stats:
        top = 34.0 + 1.5 * arcsec - (s.value - 1) * arcsec
        expected = 5 * _local_cell_area(top, top - arcsec, arcsec)
        assert s.area_m2 == pytest.approx(expected, rel=1e-9)
    assert 5 * 25.5 * 30.8 < stats[0].area_m2 < 5 * 25.8 * 31.0  # about 25.6 m x 30.8 m at 34N


def test_a_hemisphere_adds_up_to_half_the_ellipsoid(tmp_path: Path) -> None:
    path = rasters.write_raster(tmp_path / "north.tif", np.ones((90, 360), np.uint8), epsg=4326,
                                geotransform=(-180.0, 1.0, 0.0, 90.0, 0.0, -1.0))
    [stat] = class_statistics(str(path))
    assert stat.area_m2 / 1e6 == pytest.approx(WGS84_SURFACE_KM2 / 2, rel=1e-9)


def test_without_crs_areas_are_nan_and_shown_as_na(tmp_path: Path) -> None:
    path = rasters.write_raster(tmp_path / "nocrs.tif", np.array([[1, 2]], np.uint8), epsg=None, geotransform=None)
    stats = class_statistics(str(path))
    assert all(math.isnan(s.area_m2) and math.isnan(s.area_ha) for s in stats)
    assert [s.pixels for s in stats] == [1, 1]
    assert "n/a" in format_table(stats)
    with open(write_csv(stats, str(path.with_suffix(".csv"))), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[1] == ["1", "class 1", "1", "", "", "50.000000"]


def test_masks_floats_and_wide_value_ranges(tmp_path: Path) -> None:
    """A per-dataset mask is honoured, NaN skipped, and values far apart (np.unique path) counted."""
    array = np.array([[-5, 2_000_000, 2_000_000, 9], [np.nan, 9, 9, 9]], np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    path = rasters.write_raster(tmp_path / "float.tif", array, mask=mask)
    stats = class_statistics(str(path))
    assert [(s.value, s.pixels) for s in stats] == [(-5, 1), (9, 3), (2_000_000, 2)]


def test_csv_and_table(classified: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    stats = class_statistics(str(classified[0]), CLASSES)
    out = write_csv(stats, str(tmp_path / "stats.csv"))
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_HEADER == ("value", "class", "pixels", "area_m2", "area_ha", "percent")
    assert len(rows) == 1 + len(stats)
    water = rows[1]
    assert water[:3] == ["1", "water", str(stats[0].pixels)]
    assert float(water[3]) == stats[0].area_m2 and float(water[5]) == pytest.approx(stats[0].percent, abs=1e-6)
    table = format_table(stats)
    for name in ("water", "forest", "urban", "glacier", "class 7"):
        assert name in table
    total = table.splitlines()[-1]
    assert "total" in total and f"{sum(s.pixels for s in stats):,}" in total and "100.00%" in total


def test_cancel(classified: tuple[Path, np.ndarray]) -> None:
    with pytest.raises(CancelledError):
        class_statistics(str(classified[0]), is_cancelled=lambda: True)
