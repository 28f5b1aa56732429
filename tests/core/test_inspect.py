"""What a workflow checks before it runs: the raster's kind (RGB photo or not) and whether it holds any data."""
from __future__ import annotations

import numpy as np
import pytest

from deepstrata.inference.engine.errors import InputError
from deepstrata.inference.workflows.inspect import decimated, raster_facts, require_data
from ds_testing import rasters


def test_rgb_photos_are_told_apart_from_dems_and_scenes(tmp_path):
    photo = rasters.write_raster(tmp_path / "photo.tif", np.zeros((3, 8, 8), np.uint8))
    dem = rasters.write_raster(tmp_path / "dem.tif", np.zeros((8, 8), np.float32))
    scene = rasters.write_raster(tmp_path / "scene.tif", np.zeros((6, 8, 8), np.uint16))
    facts = raster_facts(str(photo))
    assert (facts.bands, facts.data_type, facts.name) == (3, "Byte", "photo.tif") and facts.looks_like_rgb()
    assert not raster_facts(str(dem)).looks_like_rgb() and not raster_facts(str(scene)).looks_like_rgb()
    assert raster_facts(str(dem)).has_crs


def test_an_all_nodata_raster_is_refused_with_the_fix(tmp_path):
    empty = rasters.write_raster(tmp_path / "empty.tif", np.full((40, 30), -1.0, np.float32), nodata=-1.0)
    with pytest.raises(InputError, match="Every pixel of 'empty.tif' is nodata.*nodata value"):
        require_data(str(empty))


def test_one_valid_pixel_is_enough_even_when_the_decimated_sample_misses_it(tmp_path):
    array = np.full((1200, 1100), -1.0, np.float32)
    probe = rasters.write_raster(tmp_path / "probe.tif", np.arange(1200 * 1100, dtype=np.float32).reshape(1200, 1100))
    sampled = set(decimated(str(probe))[0].ravel().astype(int).tolist())  # the source pixels the sample reads
    missed = next(i for i in range(600 * 1100, 1200 * 1100) if i not in sampled)
    array.ravel()[missed] = 5.0
    sparse = rasters.write_raster(tmp_path / "sparse.tif", array, nodata=-1.0)
    _, valid = decimated(str(sparse))
    assert valid.shape == (512, 469) and not valid.any()
    require_data(str(sparse))  # the full pass finds it: no error
    array.ravel()[missed] = -1.0
    with pytest.raises(InputError):
        require_data(str(rasters.write_raster(tmp_path / "none.tif", array, nodata=-1.0)))


def test_mask_bands_count_as_nodata_in_the_sample(tmp_path):
    mask = np.zeros((30, 30), np.uint8)
    mask[:, :10] = 255
    masked = rasters.write_raster(tmp_path / "masked.tif", np.ones((30, 30), np.float32), mask=mask)
    _, valid = decimated(str(masked))
    assert valid[:, :10].all() and not valid[:, 10:].any()
