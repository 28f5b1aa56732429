"""A run cut into bands of rows writes what one run writes (the exact blocks a cluster needs, issue #15): each
band computes only the tile rows whose weights reach it, and adds their contributions in the same order."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepstrata.inference import CardOverrides, RunOptions, run_array
from deepstrata.inference.engine.errors import InputError
from ds_testing import models, rasters


def _bands(height: int, cuts: list[int]) -> list[tuple[int, int]]:
    edges = [0] + cuts + [height]
    return list(zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("cuts", [[100], [37, 38, 190], [64, 128, 192], [1, 254]])
def test_bands_of_rows_equal_the_whole_run(tmp_path: Path, cuts: list[int]) -> None:
    array = rasters.smooth_random(3, 255, 230, seed=len(cuts)).astype(np.float32)
    array[:, 20:40, 50:90] = -1.0  # nodata inside some bands
    cases = [
        (models.conv_segmenter(tmp_path / "seg.onnx", classes=4, layers=3), RunOptions(tile_size=48), True),
        (tmp_path / "seg.onnx", RunOptions(tile_size=48, overlap=20), True),  # ramps: blended bands
        (models.probability_segmenter(tmp_path / "p.onnx", classes=3), RunOptions(tile_size=40,
                                                                                  card=CardOverrides(threshold=.4)),
         False),
        (models.regressor(tmp_path / "reg.onnx", bands=3, outputs=2), RunOptions(tile_size=56), False),
        (models.autoencoder(tmp_path / "ae.onnx", bands=3), RunOptions(tile_size=64), False),
    ]
    for model, options, confidence in cases:
        whole = run_array(model, array, options, nodata=-1.0, confidence=confidence)
        for r0, r1 in _bands(array.shape[1], cuts):
            part = run_array(model, array, options, nodata=-1.0, confidence=confidence, rows=(r0, r1))
            assert len(part) == len(whole)
            for got, want in zip(part, whole):
                np.testing.assert_array_equal(got, want[:, r0:r1], err_msg=f"{model} rows {r0}-{r1}")


def test_a_band_outside_the_array_or_with_a_median_filter_is_refused(tmp_path: Path) -> None:
    array = rasters.smooth_random(3, 60, 70, seed=1).astype(np.float32)
    model = models.conv_segmenter(tmp_path / "seg.onnx", classes=3)
    with pytest.raises(InputError, match="not a band of the array's 60 rows"):
        run_array(model, array, rows=(50, 61))
    with pytest.raises(InputError, match="median filter needs its whole result"):
        run_array(model, array, RunOptions(card=CardOverrides(median_filter=3)), rows=(0, 30))


def test_run_model_writes_a_band_at_its_place(tmp_path: Path) -> None:
    """Bands written as GeoTIFFs (what a cluster's workers would write), put together, are the whole run's
    file: the same pixels, each band's origin at its first row."""
    from osgeo import gdal

    from deepstrata.inference import run_model

    array = rasters.smooth_random(3, 300, 260, seed=9).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.conv_segmenter(tmp_path / "seg.onnx", classes=4, layers=3)
    options = {"tile_size": 64, "output_format": "gtiff", "extent": None}
    run_model(model, str(raster), str(tmp_path / "whole.tif"), RunOptions(**options))
    whole = gdal.Open(str(tmp_path / "whole.tif"))
    gt = whole.GetGeoTransform()
    parts = []
    for i, (r0, r1) in enumerate(_bands(300, [45, 190])):
        path = tmp_path / f"band{i}.tif"
        result = run_model(model, str(raster), str(path), RunOptions(rows=(r0, r1), **options))
        assert (result.width, result.height) == (260, r1 - r0)
        ds = gdal.Open(str(path))
        assert ds.GetGeoTransform() == pytest.approx((gt[0], gt[1], 0.0, gt[3] + r0 * gt[5], 0.0, gt[5]))
        assert ds.GetProjection() == whole.GetProjection()
        assert json.loads(ds.GetMetadataItem("DEEPSTRATA_PARAMETERS"))["rows"] == [r0, r1]  # it says it is a band
        parts.append(ds.ReadAsArray())
    np.testing.assert_array_equal(np.concatenate(parts, axis=0), whole.ReadAsArray())
    with pytest.raises(InputError, match="not a band of the output's 300 rows"):
        run_model(model, str(raster), str(tmp_path / "bad.tif"), RunOptions(rows=(200, 301), **options))


def test_run_model_writes_whole_column_chunks_at_their_place(tmp_path: Path) -> None:
    """Blocks of rows x whole column chunks (what a cluster's workers write for a wide raster) put together are
    the whole run's file; columns off the run's chunks, or with a median filter, are refused."""
    from osgeo import gdal

    from deepstrata.inference import run_model

    array = rasters.smooth_random(3, 300, 700, seed=4).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    model = models.conv_segmenter(tmp_path / "seg.onnx", classes=4, layers=3)
    options = {"tile_size": 64, "output_format": "gtiff", "chunk_width": 256}
    run_model(model, str(raster), str(tmp_path / "whole.tif"), RunOptions(**options))
    whole = gdal.Open(str(tmp_path / "whole.tif"))
    gt = whole.GetGeoTransform()
    rows = []
    for r0, r1 in _bands(300, [120]):
        parts = []
        for c0, c1 in ((0, 256), (256, 512), (512, 700)):
            path = tmp_path / f"block{r0}_{c0}.tif"
            result = run_model(model, str(raster), str(path), RunOptions(rows=(r0, r1), columns=(c0, c1), **options))
            assert (result.width, result.height) == (c1 - c0, r1 - r0)
            ds = gdal.Open(str(path))
            assert ds.GetGeoTransform() == pytest.approx((gt[0] + c0 * gt[1], gt[1], 0.0, gt[3] + r0 * gt[5], 0.0,
                                                          gt[5]))
            assert json.loads(ds.GetMetadataItem("DEEPSTRATA_PARAMETERS"))["columns"] == [c0, c1]
            parts.append(ds.ReadAsArray())
        rows.append(np.concatenate(parts, axis=1))
    np.testing.assert_array_equal(np.concatenate(rows, axis=0), whole.ReadAsArray())
    with pytest.raises(InputError, match="Columns 100-256 do not fall on the run's column chunks of 256 px"):
        run_model(model, str(raster), str(tmp_path / "bad.tif"), RunOptions(columns=(100, 256), **options))
    with pytest.raises(InputError, match="Columns 0-701 are not a part of the output's 700 columns"):
        run_model(model, str(raster), str(tmp_path / "bad.tif"), RunOptions(columns=(0, 701), **options))
    with pytest.raises(InputError, match="median filter needs its whole result"):
        run_model(model, str(raster), str(tmp_path / "bad.tif"),
                  RunOptions(columns=(0, 256), card=CardOverrides(median_filter=3), **options))
