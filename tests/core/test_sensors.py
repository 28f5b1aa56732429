"""The scene-relative fallback for a product nobody can tell, the QA / SCL decoding, cloud masks through the engine
and band names that name nothing. Real scenes: test_sensors_real.py; stacks built from them: test_sensors_built.py."""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import InputError, ModelCard, RunOptions, run_model
from deepstrata.inference.workflows.presets import resolve_preset
from deepstrata.inference.workflows.sensors import calibration
from deepstrata.inference.workflows.sensors.masks import valid_pixels
from ds_testing import models, rasters
from ds_testing.scenes import (L8_STACK, NEEDS_SHARED)

pytestmark = NEEDS_SHARED


def test_an_unknown_16_bit_product_falls_back_to_scene_relative(tmp_path: Path, refl: ModelCard) -> None:
    """UInt16 values like Level-1 DN with no name, MTL or metadata: the scene-relative mapping, said plainly."""
    dn = gdal.Open(str(L8_STACK)).ReadAsArray(0, 0, 120, 90)[1:7]
    stack = rasters.write_raster(tmp_path / "scene.tif", dn)
    mapping = resolve_preset(str(stack), refl)
    assert mapping.scene_relative and mapping.assumed and mapping.preset == "scene_relative"
    text = mapping.description
    assert "scene-relative scaling: the product is not known (16-bit values up to" in text
    assert "no MTL, no band names" in text
    assert "choose the band preset of the product, give the Landsat MTL, or the Sentinel-2 offset" in text
    low, high = np.percentile(dn[0].astype(np.float64), [2, 98])
    assert low * mapping.scale[0] + mapping.offset[0] == pytest.approx(0.06, abs=0.01)
    assert high * mapping.scale[0] + mapping.offset[0] == pytest.approx(0.20, abs=0.01)


def test_qa_and_scl_decoding() -> None:
    qa = np.array([21824, 1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 7])
    assert valid_pixels(qa, "qa_pixel").tolist() == [True, False, False, False, False, False, True, True]
    c1 = np.array([2720, 1, 1 << 4, 3 << 7, 1 << 7, 3 << 11, 1 << 11])
    assert valid_pixels(c1, "bqa_c1").tolist() == [True, False, False, False, True, False, True]
    pre = np.array([20480, 53248, 28672, 1])
    assert valid_pixels(pre, "bqa_pre").tolist() == [True, False, False, False]
    c1_sr = np.array([66, 1, 1 << 3, 1 << 5, 3 << 8, 1 << 8])
    assert valid_pixels(c1_sr, "pixel_qa").tolist() == [True, False, False, False, False, True]
    scl = np.arange(12)
    assert np.flatnonzero(~valid_pixels(scl, "scl")).tolist() == [0, 1, 3, 8, 9, 10]
    assert calibration.earth_sun_distance(datetime.date(2021, 1, 4)) == pytest.approx(0.98328)


def test_the_engine_refuses_a_mask_on_another_grid(tmp_path: Path) -> None:
    raster = rasters.write_raster(tmp_path / "r.tif", np.full((6, 20, 30), 9000, np.uint16))
    mask = rasters.write_raster(tmp_path / "m.tif", np.ones((10, 15), np.uint8))
    with pytest.raises(InputError, match="is 15 x 10 pixels but 'r.tif' is 30 x 20: a mask must be on the input's"):
        run_model(models.oli_identity(tmp_path / "oli.onnx"), str(raster), str(tmp_path / "o.tif"),
                  RunOptions(valid_mask=str(mask)))


def test_a_cloud_mask_follows_the_input_to_the_models_pixel_size(tmp_path: Path) -> None:
    """A model at 30 m on a 10 m raster: the valid mask is warped with the input, masked pixels come back nodata."""
    from deepstrata.inference.engine.writer import FLOAT_NODATA
    from deepstrata.inference.workflows.resample import run_at_model_resolution

    array = rasters.smooth_random(1, 90, 120, seed=4).astype(np.float32)
    path = rasters.write_raster(tmp_path / "r.tif", array)
    valid = np.ones((90, 120), np.uint8)
    valid[30:60, 45:90] = 0
    mask = rasters.write_raster(tmp_path / "valid.tif", valid)
    model = models.identity_regressor(tmp_path / "id.onnx", pixel_size_m=30)
    done = run_at_model_resolution(model, str(path), str(tmp_path / "out.tif"), RunOptions(valid_mask=str(mask)))
    assert done.plan is not None  # it did resample
    values = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    assert (values[33:57, 48:87] == np.float32(FLOAT_NODATA)).all()
    outside = np.ones_like(valid, bool)
    outside[24:66, 39:96] = False
    assert (values[outside] != np.float32(FLOAT_NODATA)).mean() > 0.97


def test_placeholder_band_names_do_not_pick_bands(tmp_path: Path, dn: ModelCard) -> None:
    """'Band 1'..'Band 13' (GDAL's and QGIS's placeholders) on a 13-band Sentinel-2 stack named as one: the 13-band
    order (B8A is band 9, B11 band 12), not 'Band 8' and 'Band 11'."""
    stack = rasters.write_raster(tmp_path / "S2A_MSIL1C_20200101T000000_N0208_R000_T31TCJ_stack.tif",
                                 np.full((13, 8, 10), 1500, np.uint16), descriptions=[f"Band {i}" for i in range(1, 14)])
    assert resolve_preset(str(stack), dn).bands == [2, 3, 4, 9, 12, 13]
    numbered = rasters.write_raster(tmp_path / "LC08_232066_20190727_sr.tif", np.full((6, 8, 10), 900, np.int16),
                                    descriptions=[f"B{i}" for i in range(1, 7)])  # numbered, not OLI's B1..B6
    assert resolve_preset(str(numbered), dn).bands == [1, 2, 3, 4, 5, 6]
