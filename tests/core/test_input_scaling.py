"""RunOptions.input_scale / input_offset: value * scale + offset per model channel, before the card's normalisation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepstrata.inference import InputError, RunOptions, run_model
from deepstrata.inference.engine.writer import FLOAT_NODATA
from ds_testing import models, rasters

SCALE = np.array([5.0, 0.5, -2.0], dtype=np.float32)
OFFSET = np.array([5000.0, -1.0, 0.25], dtype=np.float32)
NODATA = -9999.0


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """3 bands of smooth random values x 1000 with a nodata patch (which the scaling would map to valid values)."""
    array = rasters.smooth_random(3, 90, 130, seed=7) * 1000
    array[:, 20:31, 40:60] = NODATA
    return rasters.write_raster(tmp_path / "raw.tif", array.astype(np.float32), nodata=NODATA), array


def test_scaled_run_equals_a_run_on_a_prescaled_copy(tmp_path: Path, raw: tuple[Path, np.ndarray]) -> None:
    path, array = raw
    nodata = array[0] == NODATA
    prescaled = array.astype(np.float32) * SCALE[:, None, None] + OFFSET[:, None, None]
    prescaled[:, nodata] = NODATA
    copy = rasters.write_raster(tmp_path / "prescaled.tif", prescaled, nodata=NODATA)
    model = models.identity_regressor(tmp_path / "id.onnx", bands=3, tile_size=32,
                                      normalization={"method": "zscore", "mean": [100, 2, 3], "std": [7, 8, 9]})
    run_model(model, str(path), str(tmp_path / "scaled.tif"),
              RunOptions(input_scale=SCALE.tolist(), input_offset=OFFSET.tolist()))
    run_model(model, str(copy), str(tmp_path / "reference.tif"))
    scaled = rasters.read_raster(tmp_path / "scaled.tif")[0]
    reference = rasters.read_raster(tmp_path / "reference.tif")[0]
    np.testing.assert_array_equal(scaled, reference)
    assert (scaled[:, nodata] == np.float32(FLOAT_NODATA)).all()  # nodata stays nodata, whatever the scaling
    expected = (prescaled[:, ~nodata] - np.array([100, 2, 3])[:, None]) / np.array([7, 8, 9])[:, None]
    np.testing.assert_allclose(scaled[:, ~nodata], expected, rtol=1e-5, atol=1e-4)


def test_scale_alone_and_identity_scaling(tmp_path: Path, raw: tuple[Path, np.ndarray]) -> None:
    path, array = raw
    model = models.identity_regressor(tmp_path / "id.onnx", bands=3)
    run_model(model, str(path), str(tmp_path / "plain.tif"))
    run_model(model, str(path), str(tmp_path / "identity.tif"), RunOptions(input_scale=[1, 1, 1],
                                                                            input_offset=[0, 0, 0]))
    run_model(model, str(path), str(tmp_path / "doubled.tif"), RunOptions(input_scale=[2, 2, 2]))
    plain = rasters.read_raster(tmp_path / "plain.tif")[0]
    np.testing.assert_array_equal(rasters.read_raster(tmp_path / "identity.tif")[0], plain)
    valid = array[0] != NODATA
    np.testing.assert_array_equal(rasters.read_raster(tmp_path / "doubled.tif")[0][:, valid], 2 * plain[:, valid])


@pytest.mark.parametrize("options,expected", [
    ({"input_scale": [1.0, 2.0]}, "input scale has 2 values but the model takes 3 bands"),
    ({"input_offset": [0.0] * 4}, "input offset has 4 values but the model takes 3 bands"),
    ({"input_scale": [1.0, float("nan"), 1.0]}, "not a finite number"),
])
def test_scaling_of_the_wrong_length_is_an_input_error(tmp_path: Path, raw: tuple[Path, np.ndarray],
                                                        options: dict, expected: str) -> None:
    model = models.identity_regressor(tmp_path / "id.onnx", bands=3)
    with pytest.raises(InputError, match=expected):
        run_model(model, str(raw[0]), str(tmp_path / "out.tif"), RunOptions(**options))
    assert not (tmp_path / "out.tif").exists()
