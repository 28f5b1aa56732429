"""run_array: the engine's compute path over an array in memory gives exactly what run_model writes (same plan,
tiles, batches, blending, head and nodata), and it runs where GDAL cannot be imported."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import CardOverrides, InputError, RunOptions, run_array, run_model
from deepstrata.inference.engine.georef import ground_pixel_size
from ds_testing import models, rasters
from ds_testing.no_gdal import run_without_gdal
from ds_testing.paths import DEM

REPO = Path(__file__).resolve().parents[2]
H, W = 150, 330  # wider than one column chunk (chunk_width 256): two chunks


def _pixels(bands: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Smooth float32 fields with a NaN patch and a spike, and a validity mask with a hole."""
    array = (rasters.smooth_random(bands, H, W, seed=seed) * 3000 + 5000).astype(np.float32)
    array[:, 20:31, 40:70] = np.nan
    array[:, 90, 200] += 9000  # an anomaly
    mask = np.ones((H, W), dtype=np.uint8)
    mask[100:120, 250:300] = 0
    return array, mask


def _files(tmp_path: Path, array: np.ndarray, mask: np.ndarray) -> tuple[str, str]:
    raster = rasters.write_raster(tmp_path / "in.tif", array, options=("TILED=YES", "BLOCKXSIZE=64",
                                                                       "BLOCKYSIZE=64"))
    valid = rasters.write_raster(tmp_path / "valid.tif", mask, dtype=np.uint8)
    return str(raster), str(valid)


def _written(path: Path) -> np.ndarray:
    return rasters.read_raster(path)[0]


def _same(ours: list[np.ndarray], paths: list[Path]) -> None:
    assert len(ours) == len(paths)
    for array, path in zip(ours, paths):
        written = _written(path)
        assert array.shape == written.shape
        assert array.dtype == written.dtype
        np.testing.assert_array_equal(array, written)


CASES: dict[str, Any] = {
    "softmax segmenter": (lambda p: models.conv_segmenter(p, bands=3, classes=4, normalization={
        "method": "zscore", "mean": [5000.0] * 3, "std": [3000.0] * 3}), 3),
    "regression, two outputs": (lambda p: models.regressor(p, bands=2, outputs=2, radius=2), 2),
    "anomaly autoencoder": (lambda p: models.autoencoder(p, bands=3), 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("confidence", [False, True])
def test_run_array_equals_run_model_output(tmp_path: Path, case: str, confidence: bool) -> None:
    build, bands = CASES[case]
    model = build(tmp_path / "model.onnx")
    array, mask = _pixels(bands)
    raster, valid = _files(tmp_path, array, mask)
    options = RunOptions(device="cpu", tile_size=64, chunk_width=256, output_format="gtiff")
    conf = tmp_path / "conf.tif"
    file_options = RunOptions(**{**options.__dict__, "valid_mask": valid,
                                 "confidence_path": str(conf) if confidence else None})
    result = run_model(model, raster, str(tmp_path / "out.tif"), file_options)
    ours = run_array(model, array, options, mask=mask, confidence=confidence)
    paths = [tmp_path / "out.tif"] + ([conf] if result.confidence_path else [])
    _same(ours, paths)
    nodata = ~np.isfinite(array).all(axis=0) | (mask == 0)
    first = ours[0]
    assert (first[:, nodata] == (0 if first.dtype.kind == "u" else np.float32(np.finfo(np.float32).min))).all()
    assert not (first[:, ~nodata] == (0 if first.dtype.kind == "u" else np.finfo(np.float32).min)).any()


def test_run_array_with_integer_nodata_band_choice_and_median_filter(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=2, classes=3,
                                  normalization={"method": "zscore", "mean": [3000.0] * 2, "std": [2000.0] * 2})
    array = (rasters.smooth_random(3, H, W, seed=5) * 2000 + 3000).clip(1, 65535).astype(np.uint16)
    array[:, 60:70, 10:30] = 0
    raster = rasters.write_raster(tmp_path / "in.tif", array, nodata=0)
    options = RunOptions(device="cpu", bands=[3, 1], tile_size=64, card=CardOverrides(median_filter=5),
                         input_scale=[2.0, 0.5], input_offset=[10.0, -4.0], output_format="gtiff")
    run_model(model, str(raster), str(tmp_path / "out.tif"), options)
    _same(run_array(model, array, options, nodata=0), [tmp_path / "out.tif"])


def test_run_array_runs_a_terrain_model_with_the_cell_size(tmp_path: Path) -> None:
    """The bundled landform model (scale input, NaN beyond the edge) on the real DEM, whose nodata is 32767."""
    model = REPO / "resources" / "models" / "landforms_geomorphon.onnx"
    ds = gdal.Open(str(DEM))
    dem, cells = ds.ReadAsArray()[:, :200], ground_pixel_size(ds)
    raster = rasters.write_raster(tmp_path / "dem.tif", dem, nodata=32767,
                                  geotransform=ds.GetGeoTransform(), epsg=32611)
    options = RunOptions(device="cpu", tile_size=128, output_format="gtiff")
    run_model(model, str(raster), str(tmp_path / "out.tif"), options)
    assert cells is not None
    ours = run_array(model, dem, options, nodata=32767, cell_size=cells)
    _same(ours, [tmp_path / "out.tif"])
    assert set(np.unique(ours[0])) - {0} <= set(range(1, 11)) and (ours[0] > 0).mean() > 0.9
    with pytest.raises(InputError, match="no CRS"):
        run_array(model, dem, options, nodata=32767)


def test_run_array_refuses_what_an_array_cannot_mean(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=2)
    array = np.zeros((3, 40, 40), dtype=np.float32)
    with pytest.raises(InputError, match="whole array"):
        run_array(model, array, RunOptions(extent=(0, 0, 1, 1)))
    with pytest.raises(InputError, match="takes 3 band"):
        run_array(model, array[:2])
    with pytest.raises(InputError, match="mask"):
        run_array(model, array, mask=np.ones((40, 41), dtype=bool))


CHILD = """
import json, numpy as np
from deepstrata.inference import RunOptions, run_array
model, array, mask, out = sys.argv[1:5]
arrays = run_array(model, np.load(array), RunOptions(device="cpu", tile_size=64, chunk_width=256),
                   mask=np.load(mask), confidence=True)
np.save(out, arrays[0]); np.save(out.replace(".npy", "_conf.npy"), arrays[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "osgeo")))
"""


def test_run_array_runs_without_gdal(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx", bands=3, classes=4, normalization={
        "method": "zscore", "mean": [5000.0] * 3, "std": [3000.0] * 3})
    array, mask = _pixels(3, seed=8)
    raster, valid = _files(tmp_path, array, mask)
    run_model(model, raster, str(tmp_path / "out.tif"), RunOptions(
        device="cpu", tile_size=64, chunk_width=256, valid_mask=valid, confidence_path=str(tmp_path / "conf.tif"),
        output_format="gtiff"))
    np.save(tmp_path / "array.npy", array)
    np.save(tmp_path / "mask.npy", mask)
    done = run_without_gdal(CHILD, [str(model), str(tmp_path / "array.npy"), str(tmp_path / "mask.npy"),
                                    str(tmp_path / "classes.npy")])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    _same([np.load(tmp_path / "classes.npy"), np.load(tmp_path / "classes_conf.npy")],
          [tmp_path / "out.tif", tmp_path / "conf.tif"])
    blocked = run_without_gdal("from deepstrata.inference import run_model")
    assert blocked.returncode != 0 and "osgeo is blocked" in blocked.stderr
