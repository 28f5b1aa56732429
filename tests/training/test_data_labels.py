"""Label sources on the image grid: aligned and resampled label rasters, polygons rasterised and reprojected."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_fixtures import (PIXEL, ORIGIN, pixel_square_lonlat, pixel_square_utm,  # noqa: E402
                           write_geojson, write_raster)

from training.data import (DataError, class_mapping, image_grid, load_labels,  # noqa: E402
                           rasterize_polygons, read_label_raster)


@pytest.fixture()
def image(tmp_path: Path) -> Path:
    return write_raster(tmp_path / "image.tif", np.zeros((1, 40, 50), np.uint8))


def test_aligned_label_raster_is_read_as_is_with_nodata_unlabelled(tmp_path: Path, image: Path) -> None:
    values = np.random.default_rng(0).integers(0, 4, size=(40, 50)).astype(np.uint8)
    values[0, :5] = 9
    path = write_raster(tmp_path / "labels.tif", values, nodata=9)
    labels = read_label_raster(path, image_grid(image))
    expected = np.where(values == 9, 0, values)
    assert np.array_equal(labels.array, expected)
    assert labels.classes == {"1": 1, "2": 2, "3": 3}


def test_label_raster_on_a_coarser_grid_is_resampled_nearest(tmp_path: Path, image: Path) -> None:
    coarse = np.arange(1, 20 * 25 + 1, dtype=np.uint16).reshape(20, 25)   # 60 m pixels, same origin
    path = write_raster(tmp_path / "coarse.tif", coarse, pixel=2 * PIXEL)
    labels = read_label_raster(path, image_grid(image))
    assert labels.array.shape == (40, 50)
    assert np.array_equal(labels.array, np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1))


def test_label_raster_shifted_and_smaller_leaves_the_rest_unlabelled(tmp_path: Path, image: Path) -> None:
    part = np.full((10, 10), 3, np.uint8)
    origin = (ORIGIN[0] + 5 * PIXEL, ORIGIN[1] - 7 * PIXEL)
    labels = read_label_raster(write_raster(tmp_path / "part.tif", part, origin=origin), image_grid(image))
    expected = np.zeros((40, 50), np.uint8)
    expected[7:17, 5:15] = 3
    assert np.array_equal(labels.array, expected)


def test_polygons_in_wgs84_are_reprojected_onto_the_utm_grid(tmp_path: Path, image: Path) -> None:
    rings = [pixel_square_lonlat(10, 5, 20, 15), pixel_square_lonlat(30, 20, 45, 38)]
    path = write_geojson(tmp_path / "polygons.geojson", rings, ["water", "forest"])
    labels = rasterize_polygons(path, image_grid(image), "class")
    assert labels.classes == {"forest": 1, "water": 2}
    expected = np.zeros((40, 50), np.uint8)
    expected[5:15, 10:20] = 2
    expected[20:38, 30:45] = 1
    assert np.array_equal(labels.array, expected)


def test_polygons_in_the_image_crs_match_the_reprojected_ones(tmp_path: Path, image: Path) -> None:
    utm = write_geojson(tmp_path / "utm.geojson", [pixel_square_utm(10, 5, 20, 15)], [7], epsg=32622)
    wgs = write_geojson(tmp_path / "wgs.geojson", [pixel_square_lonlat(10, 5, 20, 15)], [7])
    grid = image_grid(image)
    a, b = rasterize_polygons(utm, grid, "class"), rasterize_polygons(wgs, grid, "class")
    assert a.classes == b.classes == {"7": 7}
    assert np.array_equal(a.array, b.array) and np.count_nonzero(a.array == 7) == 100


def test_string_classes_map_to_sorted_ids_whatever_the_feature_order(tmp_path: Path) -> None:
    names = ["water", "forest", "cleared", "water", "bare"]
    rings = [pixel_square_lonlat(i, 0, i + 1, 1) for i in range(len(names))]
    forward = write_geojson(tmp_path / "a.geojson", rings, names)
    backward = write_geojson(tmp_path / "b.geojson", rings[::-1], names[::-1])
    expected = {"bare": 1, "cleared": 2, "forest": 3, "water": 4}
    assert class_mapping([forward], "class") == class_mapping([backward], "class") == expected
    only_water = write_geojson(tmp_path / "c.geojson", rings[:1], ["water"])
    assert class_mapping([only_water, forward], "class") == expected


def test_load_labels_dispatches_on_the_file_kind(tmp_path: Path, image: Path) -> None:
    grid = image_grid(image)
    vector = write_geojson(tmp_path / "v.geojson", [pixel_square_lonlat(0, 0, 2, 2)], ["a"])
    assert load_labels(vector, grid, "class").array[:2, :2].tolist() == [[1, 1], [1, 1]]
    with pytest.raises(DataError, match="class field"):
        load_labels(vector, grid)
    raster = write_raster(tmp_path / "r.tif", np.full((40, 50), 2, np.uint8))
    assert load_labels(raster, grid).classes == {"2": 2}


def test_bad_class_fields_are_refused_with_a_reason(tmp_path: Path) -> None:
    ring = [pixel_square_lonlat(0, 0, 1, 1)]
    with pytest.raises(DataError, match=r"no field 'landuse'.*\['class'\]"):
        class_mapping([write_geojson(tmp_path / "a.geojson", ring, ["x"])], "landuse")
    with pytest.raises(DataError, match="0 means unlabelled"):
        class_mapping([write_geojson(tmp_path / "b.geojson", ring, [0])], "class")
    with pytest.raises(DataError, match="integers in some files"):
        class_mapping([write_geojson(tmp_path / "c.geojson", ring, [1]),
                       write_geojson(tmp_path / "d.geojson", ring, ["x"])], "class")
