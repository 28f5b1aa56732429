"""Bad input through processing.run: a QgsProcessingException with the engine's message, and no output."""
from __future__ import annotations

import pytest
from qgis.core import QgsProcessingException, QgsRasterLayer

from ds_testing import models

ALG = "deepstrata:runmodel"


def run(parameters: dict) -> dict:
    import processing

    return processing.run(ALG, parameters)


def assert_fails(parameters: dict, message: str, out_dir) -> None:
    with pytest.raises(QgsProcessingException) as info:
        run(parameters)
    assert message in str(info.value)
    assert not any(out_dir.iterdir()), f"files left behind: {list(out_dir.iterdir())}"


@pytest.fixture
def out_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_band_count_mismatch(ds_provider, rgb_segmenter, dem, out_dir):
    assert_fails({"INPUT": str(dem), "MODEL": str(rgb_segmenter), "OUTPUT": str(out_dir / "o.tif")},
                 "The model takes 3 bands", out_dir)


def test_band_that_does_not_exist(ds_provider, rgb_segmenter, landsat, out_dir):
    assert_fails({"INPUT": str(landsat), "MODEL": str(rgb_segmenter), "BANDS": [1, 2, 5],
                  "OUTPUT": str(out_dir / "o.tif")}, "Band 5 does not exist", out_dir)


def test_missing_model_file(ds_provider, dem, out_dir, tmp_path):
    missing = tmp_path / "no_such_model.onnx"
    assert_fails({"INPUT": str(dem), "MODEL": str(missing), "OUTPUT": str(out_dir / "o.tif")},
                 f"Model file not found: '{missing}'", out_dir)


def test_file_that_is_not_onnx(ds_provider, dem, out_dir, tmp_path):
    fake = models.write_not_onnx(tmp_path / "notes.onnx")
    with pytest.raises(QgsProcessingException, match="notes.onnx"):
        run({"INPUT": str(dem), "MODEL": str(fake), "OUTPUT": str(out_dir / "o.tif")})
    assert not any(out_dir.iterdir())


def test_model_without_card_says_how_to_add_one(ds_provider, dem, out_dir, tmp_path):
    bare = models.no_card_model(tmp_path / "bare.onnx")
    with pytest.raises(QgsProcessingException, match="(?i)card"):
        run({"INPUT": str(dem), "MODEL": str(bare), "OUTPUT": str(out_dir / "o.tif")})
    assert not any(out_dir.iterdir())


def test_extent_outside_the_raster(ds_provider, dem_segmenter, dem, out_dir):
    assert_fails({"INPUT": str(dem), "MODEL": str(dem_segmenter), "EXTENT": "0,100,0,100 [EPSG:32611]",
                  "OUTPUT": str(out_dir / "o.tif")}, "lies outside the raster", out_dir)


def test_layer_not_read_from_a_file(ds_provider, dem_segmenter, out_dir):
    xyz = QgsRasterLayer("type=xyz&url=http://localhost.invalid/{z}/{x}/{y}.png&zmax=19&zmin=0", "tiles", "wms")
    assert xyz.isValid()
    assert_fails({"INPUT": xyz, "MODEL": str(dem_segmenter), "OUTPUT": str(out_dir / "o.tif")},
                 "comes from the 'wms' data provider, but DeepStrata reads rasters with GDAL from a file", out_dir)


def test_missing_input_raster(ds_provider, dem_segmenter, out_dir, tmp_path):
    with pytest.raises(QgsProcessingException):
        run({"INPUT": str(tmp_path / "nothing.tif"), "MODEL": str(dem_segmenter), "OUTPUT": str(out_dir / "o.tif")})
    assert not any(out_dir.iterdir())


def test_required_parameters_are_checked(ds_provider):
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    ok, message = alg.checkParameterValues({}, QgsProcessingContext())
    assert not ok
    assert "INPUT" in message
