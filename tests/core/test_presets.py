"""Sensor band presets: which bands feed a B2-B7 (OLI Level-1 DN) model and how their values are scaled to it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import InputError, ModelCard, RunOptions, parse_card, run_model
from deepstrata.inference.workflows.presets import PRESETS, expects_oli_dn, find_mtl, read_mtl, resolve_preset
from ds_testing import models, rasters
from ds_testing.paths import DATA

SAMPLE = DATA.parents[1] / "resources" / "samples" / "LC80200392015216LGN00_B2-B7_sample.tif"

S2_12 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
SCENE = "LC08_L1TP_044034_20210508_20210518_02_T1"


@pytest.fixture(scope="module")
def oli() -> ModelCard:
    return parse_card(models.card("regression", models.oli_bands(), kind="multispectral"))


def _raster(path: Path, bands: int, value: Any = 1500, dtype: Any = np.uint16, metadata: dict | None = None,
            **kwargs: Any) -> Path:
    """`bands` bands of 8 x 10 px; band i holds value + i (so the chosen bands can be told apart)."""
    array = np.stack([np.full((8, 10), value, dtype=np.float64) + (i if dtype == np.uint16 else 0)
                      for i in range(bands)]).astype(dtype)
    rasters.write_raster(path, array, **kwargs)
    if metadata:
        ds = gdal.Open(str(path), gdal.GA_Update)
        for key, item in metadata.items():
            ds.SetMetadataItem(key, item)
        ds = None
    return path


def _oli_dn(mapping: Any, raw: Sequence[float]) -> np.ndarray:
    return np.asarray(raw) * np.asarray(mapping.scale) + np.asarray(mapping.offset)


def _mtl(path: Path, level: str = "L1TP", mult: float = 2.0e-5, add: float = -0.1, band5: tuple | None = None) -> Path:
    l1 = "".join(f"    REFLECTANCE_MULT_BAND_{b} = {mult:.4E}\n    REFLECTANCE_ADD_BAND_{b} = {add:.6f}\n"
                 for b in range(1, 10))
    if band5:
        l1 = l1.replace(f"REFLECTANCE_MULT_BAND_5 = {mult:.4E}", f"REFLECTANCE_MULT_BAND_5 = {band5[0]:.4E}")
        l1 = l1.replace(f"REFLECTANCE_ADD_BAND_5 = {add:.6f}", f"REFLECTANCE_ADD_BAND_5 = {band5[1]:.6f}")
    l2 = "".join(f"    REFLECTANCE_MULT_BAND_{b} = 2.75E-05\n    REFLECTANCE_ADD_BAND_{b} = -0.200000\n"
                 for b in range(1, 8))
    text = (f'GROUP = LANDSAT_METADATA_FILE\n  GROUP = PRODUCT_CONTENTS\n    PROCESSING_LEVEL = "{level}"\n'
            "  END_GROUP = PRODUCT_CONTENTS\n"
            + (f"  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS\n{l2}  END_GROUP = "
               "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS\n" if level.startswith("L2") else "")
            + '  GROUP = LEVEL1_PROCESSING_RECORD\n    PROCESSING_LEVEL = "L1TP"\n'
            "  END_GROUP = LEVEL1_PROCESSING_RECORD\n"
            f"  GROUP = LEVEL1_RADIOMETRIC_RESCALING\n{l1}  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING\n"
            "    SUN_ELEVATION = 45.0\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n")
    path.write_text(text, encoding="ascii")
    return path


def test_only_b2_b7_dn_models_take_presets(tmp_path: Path, oli: ModelCard) -> None:
    assert expects_oli_dn(oli)
    assert not expects_oli_dn(parse_card(models.card("regression", 6)))
    assert not expects_oli_dn(parse_card(models.card("regression", models.oli_bands()[:5] + [{"name": "B7"}])))
    other = parse_card(models.card("regression", 6))
    raster = _raster(tmp_path / "six.tif", 6)
    with pytest.raises(InputError, match="preset converts to Landsat 8/9 OLI Level-1 DN.*Automatic or Custom"):
        resolve_preset(str(raster), other, "landsat_l1")
    mapping = resolve_preset(str(raster), other, "auto")
    assert (mapping.bands, mapping.scale, mapping.offset) == ([1, 2, 3, 4, 5, 6], [1.0] * 6, [0.0] * 6)
    assert list(PRESETS)[:2] == ["auto", "landsat_l1"] and "custom" in PRESETS
    with pytest.raises(InputError, match="Unknown band preset 'landsat'"):
        resolve_preset(str(raster), oli, "landsat")


def test_sentinel2_l2a_from_baseline_in_metadata(tmp_path: Path, oli: ModelCard) -> None:
    metadata = {"SPACECRAFT_NAME": "Sentinel-2A", "PRODUCT_TYPE": "S2MSI2A", "PROCESSING_BASELINE": "05.09"}
    raster = _raster(tmp_path / "s2.tif", 12, descriptions=S2_12, metadata=metadata)
    mapping = resolve_preset(str(raster), oli)
    assert mapping.preset == "sentinel2_l2a" and mapping.bands == [2, 3, 4, 9, 11, 12]
    assert mapping.scale == [5.0] * 6 and mapping.offset == [0.0] * 6
    assert _oli_dn(mapping, [1500])[0] == pytest.approx(7500.0)  # (1500 - 1000) / 10000 = 0.05 -> 0.15 / 2e-5
    assert "-1000" in mapping.description and "05.09" in mapping.description


def test_sentinel2_offsets_given_old_baseline_metadata_offset_and_assumed(tmp_path: Path, oli: ModelCard) -> None:
    raster = _raster(tmp_path / "S2B_MSIL1C_20200101T000000_N0208_R000_T31TCJ.tif", 13)
    old = resolve_preset(str(raster), oli, "sentinel2_l1c")
    assert old.bands == [2, 3, 4, 9, 12, 13] and old.offset == [5000.0] * 6 and "02.08" in old.description
    given = resolve_preset(str(raster), oli, "sentinel2_l1c", s2_offset=-1000)
    assert given.offset == [0.0] * 6
    tagged = _raster(tmp_path / "tagged.tif", 12, metadata={"BOA_ADD_OFFSET_B2": "-1000", "AOT_QUANTIFICATION_VALUE":
                                                             "1000.0", "BOA_QUANTIFICATION_VALUE": "10000"})
    mapping = resolve_preset(str(tagged), oli, "sentinel2_l2a")
    assert mapping.offset == [0.0] * 6 and mapping.scale == [5.0] * 6  # the BOA quantification, not the AOT one
    bare = resolve_preset(str(_raster(tmp_path / "bare.tif", 12)), oli, "sentinel2_l2a")
    assert bare.offset == [5000.0] * 6 and "assumed" in bare.description
    assert _oli_dn(bare, [1500])[0] == pytest.approx(12500.0)  # 0.15 -> 0.25 / 2e-5


def test_landsat_level2_scale_factors(tmp_path: Path, oli: ModelCard) -> None:
    raster = _raster(tmp_path / "l2.tif", 7)
    mapping = resolve_preset(str(raster), oli, "landsat_l2")
    assert mapping.bands == [2, 3, 4, 5, 6, 7]
    assert mapping.scale == [1.375] * 6 and mapping.offset == [-5000.0] * 6
    assert _oli_dn(mapping, [10000])[0] == pytest.approx(8750.0)  # 10000 * 2.75e-5 - 0.2 = 0.075
    assert "approximation" in mapping.description and "assumed" in mapping.description


def test_landsat_level1_from_mtl_beside_the_raster(tmp_path: Path, oli: ModelCard) -> None:
    raster = _raster(tmp_path / f"{SCENE}_stack.tif", 11)
    mtl = _mtl(tmp_path / f"{SCENE}_MTL.txt", band5=(4.0e-5, -0.2))
    assert find_mtl(str(raster)) == str(mtl)
    mapping = resolve_preset(str(raster), oli)
    assert mapping.preset == "landsat_l1" and mapping.bands == [2, 3, 4, 5, 6, 7]
    assert mapping.scale == [1.0, 1.0, 1.0, 2.0, 1.0, 1.0]  # band 5's MULT 4e-5 is twice the OLI 2e-5
    assert mapping.offset == [0.0, 0.0, 0.0, -5000.0, 0.0, 0.0]  # (-0.2 + 0.1) / 2e-5
    assert mtl.name in mapping.description
    other = _raster(tmp_path / "LC09_L1TP_001002_20220101_20220102_02_T1_B4.tif", 11)
    assert find_mtl(str(other)) is None  # another scene's MTL is not used


@pytest.mark.skipif(not SAMPLE.exists(), reason="the Landsat sample is not in this checkout")
def test_the_landsat_sample_and_its_collection_1_mtl(oli: ModelCard) -> None:
    mapping = resolve_preset(str(SAMPLE), oli)
    assert mapping.preset == "landsat_l1" and mapping.bands == [1, 2, 3, 4, 5, 6]
    assert mapping.scale == [1.0] * 6 and mapping.offset == [0.0] * 6
    assert "LC80200392015216LGN00_MTL.txt" in mapping.description


def test_landsat_level2_mtl_uses_its_level2_group(tmp_path: Path, oli: ModelCard) -> None:
    mtl = _mtl(tmp_path / "scene_MTL.txt", level="L2SP")
    parsed = read_mtl(str(mtl))
    assert parsed.level == "l2" and parsed.rescaling(4, "l1") == (2.0e-5, -0.1)
    assert parsed.rescaling(4, "l2") == (2.75e-5, -0.2)
    raster = _raster(tmp_path / "elsewhere.tif", 6)
    mapping = resolve_preset(str(raster), oli, mtl_path=str(mtl))
    assert mapping.preset == "landsat_l2" and mapping.scale == [1.375] * 6 and mapping.offset == [-5000.0] * 6


def test_landsat_level1_without_mtl_assumes_the_standard_rescaling(tmp_path: Path, oli: ModelCard) -> None:
    mapping = resolve_preset(str(_raster(tmp_path / "stack.tif", 6)), oli, "landsat_l1")
    assert mapping.scale == [1.0] * 6 and mapping.offset == [0.0] * 6
    assert "assumed" in mapping.description and "no MTL" in mapping.description


def test_a_file_that_is_not_an_mtl(tmp_path: Path, oli: ModelCard) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello = world\n", encoding="ascii")
    with pytest.raises(InputError, match="is not a Landsat MTL file"):
        resolve_preset(str(_raster(tmp_path / "stack.tif", 6)), oli, "landsat_l1", mtl_path=str(bad))
    with pytest.raises(InputError, match="MTL file not found"):
        resolve_preset(str(_raster(tmp_path / "stack.tif", 6)), oli, "landsat_l1", mtl_path=str(tmp_path / "no.txt"))


def test_float_reflectance_is_detected_and_scaled(tmp_path: Path, oli: ModelCard) -> None:
    array = (rasters.smooth_random(6, 40, 50, seed=3) * 0.6).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "refl.tif", array)
    mapping = resolve_preset(str(raster), oli)
    assert mapping.preset == "reflectance" and mapping.bands == [1, 2, 3, 4, 5, 6]
    assert mapping.scale == [50000.0] * 6 and mapping.offset == [5000.0] * 6
    assert _oli_dn(mapping, [0.05])[0] == pytest.approx(7500.0)
    floats = rasters.write_raster(tmp_path / "float_dn.tif", array * 20000)
    relative = resolve_preset(str(floats), oli)  # not reflectance, no other cue: scene-relative, said plainly
    assert relative.scene_relative and "floating-point (not reflectance 0..1) values" in relative.description


def test_bands_matched_by_name_in_any_order(tmp_path: Path, oli: ModelCard) -> None:
    words = _raster(tmp_path / "words.tif", 6, value=0.1, dtype=np.float32,
                    descriptions=["SWIR2", "SWIR1", "NIR", "Red", "Green", "Blue"])
    assert resolve_preset(str(words), oli).bands == [6, 5, 4, 3, 2, 1]
    sr = _raster(tmp_path / "sr.tif", 7, descriptions=["SR_B7", "SR_B6", "SR_B5", "SR_B4", "SR_B3", "SR_B2", "SR_B1"])
    mapping = resolve_preset(str(sr), oli)
    assert mapping.bands == [6, 5, 4, 3, 2, 1] and mapping.preset == "landsat_l2"
    s2 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
    mapping = resolve_preset(str(_raster(tmp_path / "s2_10.tif", 10, descriptions=s2)), oli)
    assert mapping.bands == [1, 2, 3, 8, 9, 10] and mapping.preset == "sentinel2_l1c"  # B8A, not B08 or B05
    assert "assumed" in mapping.description  # no baseline anywhere: offset 0 assumed
    gdal_s2 = [f"{b}, central wavelength {w} nm" for b, w in zip(["B4", "B3", "B2", "B8", "B5", "B6", "B7", "B8A",
                                                                 "B11", "B12"], range(400, 1400, 100))]
    mapping = resolve_preset(str(_raster(tmp_path / "gdal.tif", 10, descriptions=gdal_s2)), oli, "sentinel2_l2a")
    assert mapping.bands == [3, 2, 1, 8, 9, 10]


@pytest.mark.parametrize("count,expected", [(6, [1, 2, 3, 4, 5, 6]), (7, [2, 3, 4, 5, 6, 7]),
                                            (8, [2, 3, 4, 5, 6, 7]), (11, [2, 3, 4, 5, 6, 7]),
                                            (12, [2, 3, 4, 9, 11, 12]), (13, [2, 3, 4, 9, 12, 13])])
def test_bands_chosen_by_count(tmp_path: Path, oli: ModelCard, count: int, expected: list[int]) -> None:
    assert resolve_preset(str(_raster(tmp_path / "r.tif", count)), oli, "reflectance").bands == expected


def test_explicit_bands_win_and_must_be_six(tmp_path: Path, oli: ModelCard) -> None:
    raster = _raster(tmp_path / "r.tif", 12, descriptions=S2_12)
    mapping = resolve_preset(str(raster), oli, "sentinel2_l2a", bands=[12, 11, 9, 4, 3, 2])
    assert mapping.bands == [12, 11, 9, 4, 3, 2] and "as selected" in mapping.description
    with pytest.raises(InputError, match=r"5 bands selected \(1, 2, 3, 4, 5\).*takes 6"):
        resolve_preset(str(raster), oli, "sentinel2_l2a", bands=[1, 2, 3, 4, 5])
    with pytest.raises(InputError, match="Band 14 does not exist"):
        resolve_preset(str(raster), oli, "sentinel2_l2a", bands=[1, 2, 3, 4, 5, 14])


def test_a_16_bit_scene_without_scale_information_falls_back_to_scene_relative(tmp_path: Path,
                                                                               oli: ModelCard) -> None:
    raster = _raster(tmp_path / "scene.tif", 6, value=9000)
    mapping = resolve_preset(str(raster), oli)  # no longer "Can't tell which sensor and product ..."
    assert mapping.scene_relative and mapping.preset == "scene_relative"
    assert "scene-relative scaling: the product is not known (16-bit values up to 9005, no MTL, no band names)" \
        in mapping.description
    assert "choose the band preset of the product" in mapping.description
    named = _raster(tmp_path / "named.tif", 6, value=9000, descriptions=list(models.OLI_BANDS))  # L1 or L2?
    assert "band names that do not tell the product" in resolve_preset(str(named), oli).description
    assert resolve_preset(str(named), oli, "landsat_l1").bands == [1, 2, 3, 4, 5, 6]


def test_a_dem_or_an_rgb_image_given_to_a_multispectral_model(tmp_path: Path, oli: ModelCard) -> None:
    dem = _raster(tmp_path / "dem.tif", 1, value=250, dtype=np.int16)
    for preset in ("auto", "landsat_l1", "reflectance"):
        with pytest.raises(InputError, match=r"single-band raster \(e\.g\. a DEM\).*six multispectral bands.*"
                                             "Classify landforms or Detect anomalies"):
            resolve_preset(str(dem), oli, preset)
    with pytest.raises(InputError, match="'rgb.tif' has 3 bands; the model .* needs the six OLI bands B2-B7 "
                                         r"\(blue, green, red, NIR, SWIR1, SWIR2\).*pick a preset and the bands"):
        resolve_preset(str(_raster(tmp_path / "rgb.tif", 3)), oli, "landsat_l1")
    with pytest.raises(InputError, match="has 5 bands, which is not a standard band layout"):
        resolve_preset(str(_raster(tmp_path / "five.tif", 5)), oli, "reflectance")


def test_the_engine_feeds_the_model_oli_dn(tmp_path: Path) -> None:
    """End to end: Sentinel-2 L2A DN (baseline 04.00+) through the preset and the engine into an identity model."""
    dn = (1000 + rasters.smooth_random(12, 30, 40, seed=5) * 3000).astype(np.uint16)
    dn[:, 5:8, 5:9] = 0
    raster = rasters.write_raster(tmp_path / "S2A_MSIL2A_20230105T000000_N0509_R000_T31TCJ.tif", dn, nodata=0,
                                  descriptions=S2_12)
    model = models.oli_identity(tmp_path / "oli.onnx")
    card = parse_card(models.card("regression", models.oli_bands()))
    mapping = resolve_preset(str(raster), card)
    result = run_model(model, str(raster), str(tmp_path / "out.tif"),
                       RunOptions(bands=mapping.bands, input_scale=mapping.scale, input_offset=mapping.offset))
    out, _, _, nodata = rasters.read_raster(tmp_path / "out.tif")
    assert result.bands == [2, 3, 4, 9, 11, 12]
    expected = ((dn[[1, 2, 3, 8, 10, 11]].astype(np.float64) - 1000) / 10000 + 0.1) / 2e-5
    valid = dn[0] != 0
    np.testing.assert_allclose(out[:, valid], expected[:, valid], rtol=1e-6)
    assert (out[:, ~valid] == np.float32(nodata[0])).all()
