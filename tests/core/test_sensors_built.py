"""Sensors and products recognised with nothing but the raster, on stacks built from the nearest real scene of
../shared/data where no real scene of the product exists (each test says what it built)."""
from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import InputError, ModelCard, RunOptions, run_model
from deepstrata.inference.workflows.presets import PRESETS, resolve_preset
from deepstrata.inference.workflows.sensors.masks import write_valid_mask
from ds_testing import models, rasters
from ds_testing.scenes import (L5, L5_STACK, L7, L8, L8_SR, NEEDS_SHARED, S2_L2A, pixel,
                               build_stack, toa)

pytestmark = NEEDS_SHARED


def test_landsat9_collection2_level1_built_from_the_landsat8_scene(tmp_path: Path, refl: ModelCard) -> None:
    """No Landsat 9 scene here: the Landsat 8 L1 bands B1-B7 in one GeoTIFF named as a Landsat 9 product, with a
    Collection 2 MTL of Landsat 9 (its own band 4 rescaling) beside it."""
    scene = "LC09_L1TP_020039_20220804_20220805_02_T1"
    stack = build_stack(tmp_path / f"{scene}_stack.tif", [L8 / f"l8_B{b}.tif" for b in range(1, 8)],
                   (0, 0, 64, 48), gdal.GDT_UInt16)
    rescaling = "".join(f"    REFLECTANCE_MULT_BAND_{b} = {2.2e-5 if b == 4 else 2e-5:.4E}\n"
                        f"    REFLECTANCE_ADD_BAND_{b} = -0.100000\n" for b in range(1, 10))
    (tmp_path / f"{scene}_MTL.txt").write_text(
        'GROUP = LANDSAT_METADATA_FILE\n  GROUP = IMAGE_ATTRIBUTES\n    SPACECRAFT_ID = "LANDSAT_9"\n'
        '    SENSOR_ID = "OLI_TIRS"\n    SUN_ELEVATION = 60.0\n  END_GROUP = IMAGE_ATTRIBUTES\n'
        '  GROUP = PRODUCT_CONTENTS\n    COLLECTION_NUMBER = 02\n    PROCESSING_LEVEL = "L1TP"\n'
        f"  END_GROUP = PRODUCT_CONTENTS\n  GROUP = LEVEL1_RADIOMETRIC_RESCALING\n{rescaling}"
        "  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n", encoding="ascii")
    mapping = resolve_preset(str(stack), refl)
    assert mapping.bands == [2, 3, 4, 5, 6, 7] and mapping.sensor == "Landsat 9 OLI-2"
    assert f"Landsat 9 OLI-2 Level-1 DN, from the MTL {scene}_MTL.txt" in mapping.description
    value = pixel(stack, 4)
    red = (value * 2.2e-5 - 0.1) / math.sin(math.radians(60))
    assert value * mapping.scale[2] + mapping.offset[2] == pytest.approx(red, rel=1e-9)


def test_landsat4_tm_pre_collection_mtl_built_from_the_landsat5_scene(tmp_path: Path, refl: ModelCard) -> None:
    """No Landsat 4 scene here: the Landsat 5 bands B1-B7 named as a Landsat 4 scene, with a pre-collection MTL in the
    oldest spelling (LMAX_BANDn, LMIN_BANDn, QCALMAX_BANDn, QCALMIN_BANDn, ACQUISITION_DATE)."""
    stack = build_stack(tmp_path / "LT40440341989123XXX01_stack.tif", [L5 / f"LT52240631988227CUB02_B{b}.TIF"
                                                                  for b in range(1, 8)], dtype=gdal.GDT_Byte)
    ranges = {1: (-1.52, 171.0), 2: (-2.84, 336.0), 3: (-1.17, 254.0), 4: (-1.51, 221.0), 5: (-0.37, 31.4),
              6: (1.2378, 15.303), 7: (-0.15, 16.6)}
    lines = "".join(f"    LMAX_BAND{b} = {hi}\n    LMIN_BAND{b} = {lo}\n    QCALMAX_BAND{b} = 255.0\n"
                    f"    QCALMIN_BAND{b} = 1.0\n" for b, (lo, hi) in ranges.items())
    (tmp_path / "LT40440341989123XXX01_MTL.txt").write_text(
        'GROUP = L1_METADATA_FILE\n  GROUP = PRODUCT_METADATA\n    SPACECRAFT_ID = "Landsat4"\n'
        '    SENSOR_ID = "TM"\n    ACQUISITION_DATE = 1989-05-03\n  END_GROUP = PRODUCT_METADATA\n'
        f"  GROUP = MIN_MAX_RADIANCE\n{lines}  END_GROUP = MIN_MAX_RADIANCE\n"
        "  GROUP = PRODUCT_PARAMETERS\n    SUN_ELEVATION = 55.5\n  END_GROUP = PRODUCT_PARAMETERS\n"
        "END_GROUP = L1_METADATA_FILE\nEND\n", encoding="ascii")
    mapping = resolve_preset(str(stack), refl)
    assert mapping.bands == [1, 2, 3, 4, 5, 7] and mapping.sensor == "Landsat 4 TM" and not mapping.assumed
    assert "Landsat 4 TM Level-1 DN, from the MTL LT40440341989123XXX01_MTL.txt" in mapping.description
    value = pixel(stack, 7)
    gain = (16.6 + 0.15) / 254
    swir2 = toa(gain, -0.15 - gain, 83.49, datetime.date(1989, 5, 3), 55.5, value)
    assert value * mapping.scale[5] + mapping.offset[5] == pytest.approx(swir2, rel=1e-9)


def _qa_stack(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """The Landsat 8 SR scene as a Collection 2 Level-2 product (UInt16, (rho + 0.2) / 2.75e-5, SR_B2..SR_B7) with a
    QA_PIXEL beside it flagging a cloud block, a shadow block and a dilated-cloud pixel."""
    scene = "LC08_L2SP_232066_20190727_20200827_02_T1"
    ds = gdal.Open(str(L8_SR))
    sr = ds.ReadAsArray().astype(np.float64) / 10000
    dn = np.clip(np.round((sr + 0.2) / 2.75e-5), 1, 65535).astype(np.uint16)
    stack = rasters.write_raster(tmp_path / f"{scene}_SR_stack.tif", dn, geotransform=ds.GetGeoTransform(), epsg=32620,
                                 descriptions=[f"SR_B{b}" for b in range(2, 8)])
    qa = np.full(dn.shape[1:], 21824, np.uint16)  # clear land
    qa[10:30, 20:50] = 1 << 3 | 1 << 1 | 22280  # cloud + dilated
    qa[50:60, 60:80] = 1 << 4 | 21824  # cloud shadow
    qa[100, 100] = 1 << 1 | 21824  # dilated cloud only
    rasters.write_raster(tmp_path / f"{scene}_QA_PIXEL.TIF", qa, geotransform=ds.GetGeoTransform(), epsg=32620)
    return stack, tmp_path / f"{scene}_QA_PIXEL.TIF", qa


def test_collection2_level2_with_qa_pixel_built_from_the_sr_scene(tmp_path: Path, dn: ModelCard,
                                                                   refl: ModelCard) -> None:
    stack, qa_path, qa = _qa_stack(tmp_path)
    mapping = resolve_preset(str(stack), refl)
    assert mapping.preset == "landsat_l2" and mapping.bands == [1, 2, 3, 4, 5, 6] and mapping.sensor == "Landsat 8 OLI"
    assert mapping.scale == [2.75e-5] * 6 and mapping.offset == [-0.2] * 6
    assert "Landsat 8 OLI Collection 2 Level-2 surface reflectance, from the file name" in mapping.description
    assert mapping.mask is not None and mapping.mask.kind == "qa_pixel" and mapping.mask.path == str(qa_path)
    as_dn = resolve_preset(str(stack), dn)
    assert as_dn.scale == [1.375] * 6 and as_dn.offset == [-5000.0] * 6
    given = resolve_preset(str(stack), dn, mask_path=str(qa_path))
    assert given.mask is not None and given.mask.how == "given" and given.mask.kind == "qa_pixel"
    with pytest.raises(InputError, match="Mask file not found: '.*nowhere.tif'"):
        resolve_preset(str(stack), dn, mask_path=str(tmp_path / "nowhere.tif"))
    mask, share = write_valid_mask(as_dn.mask, str(stack), str(tmp_path / "valid.tif"))  # type: ignore[arg-type]
    masked = (qa & 0b11111) != 0
    assert share == pytest.approx(masked.mean()) and masked.sum() == 20 * 30 + 10 * 20 + 1
    out = tmp_path / "out.tif"
    run_model(models.oli_identity(tmp_path / "oli.onnx"), str(stack), str(out),
              RunOptions(bands=as_dn.bands, input_scale=as_dn.scale, input_offset=as_dn.offset, valid_mask=mask))
    result, _, _, nodata = rasters.read_raster(out)
    assert (result[:, masked] == np.float32(nodata[0])).all()
    sr = gdal.Open(str(L8_SR)).ReadAsArray().astype(np.float64) / 10000
    expected = (sr[:, 0, 0] + 0.1) / 2e-5  # a clear pixel: OLI DN of the surface reflectance, within rounding
    np.testing.assert_allclose(result[:, 0, 0], expected, atol=1.375)


def test_sentinel2_baseline_04_with_scl_built_from_the_l2a_patch(tmp_path: Path, refl: ModelCard) -> None:
    """No product of processing baseline 04.00 or later here: the 12-band L2A patch as UInt16 DN with the +1000
    offset (DN = rho x 10000 + 1000), named as a baseline 05.09 product, with a 20 m SCL beside it (half the grid)."""
    name = "S2B_MSIL2A_20230105T140049_N0509_R067_T21MXS_20230105T180000"
    src = gdal.Open(str(S2_L2A))
    rho = src.ReadAsArray().astype(np.float64)
    stack = rasters.write_raster(tmp_path / f"{name}.tif", np.round(rho * 10000 + 1000).astype(np.uint16),
                                 geotransform=src.GetGeoTransform(), epsg=4326,
                                 descriptions=[src.GetRasterBand(i).GetDescription() for i in range(1, 13)])
    gt = list(src.GetGeoTransform())
    gt[1], gt[5] = gt[1] * 2, gt[5] * 2
    h, w = -(-src.RasterYSize // 2), -(-src.RasterXSize // 2)
    scl = np.full((h, w), 4, np.uint8)  # vegetation
    scl[5:15, 5:15] = 9  # cloud, high probability
    scl[20:25, 30:40] = 3  # cloud shadow
    rasters.write_raster(tmp_path / f"{name}_SCL.tif", scl, geotransform=gt, epsg=4326)
    mapping = resolve_preset(str(stack), refl)
    assert mapping.preset == "sentinel2_l2a" and mapping.sensor == "Sentinel-2B MSI"
    assert mapping.scale == [1e-4] * 6 and mapping.offset == [-0.1] * 6
    assert "processing baseline 05.09 in the file name" in mapping.description
    value = pixel(stack, 4)
    assert value * mapping.scale[2] + mapping.offset[2] == pytest.approx(pixel(S2_L2A, 4), abs=6e-5)
    assert mapping.mask is not None and mapping.mask.kind == "scl"
    mask, share = write_valid_mask(mapping.mask, str(stack), str(tmp_path / "valid.tif"))
    valid = gdal.Open(mask).ReadAsArray()
    assert valid.shape == (src.RasterYSize, src.RasterXSize)
    assert (valid[10:30, 10:30] == 0).all() and (valid[40:50, 60:80] == 0).all() and valid[60:, :].all()
    given = resolve_preset(str(stack), refl, s2_offset=0)
    assert given.offset == [0.0] * 6 and "(as given)" in given.description


def test_toa_reflectance_floats_and_x10000_built_from_the_landsat8_scene(tmp_path: Path, refl: ModelCard) -> None:
    """No TOA reflectance product here: the Landsat 8 L1 bands B2-B7 converted with their MTL (sun-corrected), as
    Float32 0..1 and as Int16 x 10000, with band descriptions in the 'Band 2 (blue)' and 'B5 (nir08)' spellings."""
    sine = math.sin(math.radians(64.74360932))
    names = ["Band 2 (blue)", "Band 3 (green)", "Band 4 (red)", "B5 (nir08)", "B6 (swir16)", "B7 (swir22)"]
    bands = [L8 / f"l8_B{b}.tif" for b in range(2, 8)]
    floats = build_stack(tmp_path / "L8_toa_reflectance.tif", bands, (0, 0, 80, 60), gdal.GDT_Float32, 2e-5 / sine,
                    -0.1 / sine, names)
    mapping = resolve_preset(str(floats), refl)
    assert mapping.preset == "reflectance" and mapping.scale == [1.0] * 6 and mapping.offset == [0.0] * 6
    assert "Landsat 8 OLI reflectance 0..1, from the file name 'L8_toa_reflectance.tif'" in mapping.description
    ints = build_stack(tmp_path / "L8_toa_x10000.tif", bands, (0, 0, 80, 60), gdal.GDT_Int16, 2e-1 / sine,
                  -1000 / sine)
    mapping = resolve_preset(str(ints), refl)
    assert mapping.preset == "reflectance_x10000" and mapping.scale == [1e-4] * 6 and not mapping.scene_relative
    assert "TOA reflectance x 10000" in mapping.description and mapping.bands == [1, 2, 3, 4, 5, 6]


def test_six_band_sentinel2_uint16_with_colour_names_built_from_the_l2a_patch(tmp_path: Path, dn: ModelCard) -> None:
    """The issue's stack: Sentinel-2 B02, B03, B04, B8A, B11, B12 as UInt16 x 10000 named blue..swir2, no other cue;
    built from the L2A patch in the order swir2..blue, so only the names can put them right."""
    rho = gdal.Open(str(S2_L2A)).ReadAsArray()[[11, 10, 8, 3, 2, 1]]
    stack = rasters.write_raster(tmp_path / "stack.tif", np.round(rho * 10000).astype(np.uint16),
                                 descriptions=["swir2", "swir1", "nir", "red", "green", "blue"])
    mapping = resolve_preset(str(stack), dn)
    assert mapping.bands == [6, 5, 4, 3, 2, 1] and mapping.preset == "reflectance_x10000"
    assert mapping.scale == [5.0] * 6 and mapping.offset == [5000.0] * 6 and not mapping.scene_relative
    assert "reflectance x 10000" in mapping.description


def test_six_band_8_bit_landsat7_stack_built_from_the_etm_scene(tmp_path: Path, dn: ModelCard) -> None:
    """The issue's other stack: the ETM+ bands B1-B5, B7 as one Byte GeoTIFF named after the satellite."""
    stack = build_stack(tmp_path / "landsat7_etm_stack.tif", [L7.parent / f"lsat7_2000_{b}0.tif" for b in (1, 2, 3, 4, 5, 7)],
                   (0, 0, 100, 80), gdal.GDT_Byte)
    mapping = resolve_preset(str(stack), dn)
    assert mapping.sensor == "Landsat 7 ETM+" and mapping.preset == "landsat_etm_l1" and mapping.bands == [1, 2, 3, 4, 5, 6]
    assert "Landsat 7 ETM+ Level-1 DN, from the file name 'landsat7_etm_stack.tif'; 8-bit values 0-255 without an MTL" \
        in mapping.description
    eight = build_stack(tmp_path / "LE07_L1TP_016035_20000415_20161002_01_T1_stack.tif",
                   [L7.parent / f"lsat7_2000_{b}.tif" for b in ("10", "20", "30", "40", "50", "50", "50", "70")],
                   (0, 0, 100, 80), gdal.GDT_Byte)
    assert resolve_preset(str(eight), dn).bands == [1, 2, 3, 4, 5, 8]  # bands 6 and 7 alike: the two B6 gains


def test_the_forced_presets_added_after_the_old_ones(tmp_path: Path, refl: ModelCard) -> None:
    assert list(PRESETS)[:7] == ["auto", "landsat_l1", "landsat_l2", "sentinel2_l1c", "sentinel2_l2a", "reflectance",
                                 "custom"]
    stack = build_stack(tmp_path / "stack.tif", [L7.parent / f"lsat7_2000_{b}0.tif" for b in (1, 2, 3, 4, 5, 7)],
                   (0, 0, 40, 30), gdal.GDT_Byte)
    tm = resolve_preset(str(stack), refl, "landsat_tm_l1")
    assert tm.sensor == "Landsat 4/5 TM" and "typical TM5 gains" in tm.description
    relative = resolve_preset(str(stack), refl, "scene_relative")
    assert relative.scene_relative and "scene-relative scaling" in relative.description


def test_landsat5_8_bit_dn_without_its_mtl_gets_the_gains_of_its_date(tmp_path: Path, refl: ModelCard) -> None:
    """The Landsat 5 bands B1-B5, B7 in one Byte GeoTIFF named with the Collection 1 id of the scene, no MTL: the
    typical 1984-2003 ranges of Chander et al. (2009) are the MTL's own (LMAX 169 and 333 for B1 and B2), so only
    the assumed sun elevation (45° for 49.76°) and the MTL's rounding separate the result from the exact one."""
    name = "LT05_L1TP_224063_19880814_20161001_01_T1_stack.tif"
    stack = build_stack(tmp_path / name, [L5 / f"LT52240631988227CUB02_B{b}.TIF" for b in (1, 2, 3, 4, 5, 7)],
                   dtype=gdal.GDT_Byte)
    mapping = resolve_preset(str(stack), refl)
    assert mapping.sensor == "Landsat 5 TM" and mapping.assumed and "Earth-Sun distance of 1988-08-14" in \
        mapping.description
    exact = resolve_preset(str(L5_STACK), refl)
    ratio = math.sin(math.radians(49.75588889)) / math.sin(math.radians(45))
    for band in range(6):
        value = pixel(stack, band + 1)
        approx = value * mapping.scale[band] + mapping.offset[band]
        # within the rounding of the MTL's RADIANCE_MULT to three decimals (0.066 for 0.06555 in B7)
        assert approx == pytest.approx(ratio * (value * exact.scale[band] + exact.offset[band]), rel=1e-2)
