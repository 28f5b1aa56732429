"""A class model with several outputs writes one class band per output. GeoTIFF keeps a colour table only with
one or two samples per pixel: with three or more bands the colours live in the style alone, and the run must not
fail (it did: "SetColorTable() not supported for multi-sample TIFF files")."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from osgeo import gdal

from deepstrata.inference import RunOptions, run_model
from ds_testing import models, rasters
from ds_testing.graph import INPUT, conv, he_weights, make_model, tensor_info


def _segmenter(path: Path, outputs: int) -> Path:
    """`outputs` graph outputs, each a 3x3 conv to 2 channels and a softmax; Deepness metadata names their
    classes (one dict per output)."""
    rng = np.random.default_rng(4)
    nodes, inits, infos = [], [], []
    for i in range(outputs):
        node, weights = conv(f"logits{i}", INPUT, he_weights(rng, 2, 3), np.zeros(2, np.float32), 1)
        nodes += [node, helper.make_node("Softmax", [f"logits{i}"], [f"out{i}"], axis=1)]
        inits += weights
        infos.append(tensor_info(f"out{i}", 2))
    model = make_model(nodes, [tensor_info(INPUT, 3)], infos, inits)
    names = [{"0": f"not {i}", "1": f"feature {i}"} for i in range(outputs)]
    meta = {"model_type": "Segmentor", "class_names": json.dumps(names), "tile_size": "64", "tiles_overlap": "10",
            "standardization_mean": json.dumps([0.0] * 3), "standardization_std": json.dumps([1.0] * 3)}
    return models.save(model, path, None, extra_metadata=meta)


@pytest.mark.parametrize("outputs", [2, 3, 4])
@pytest.mark.parametrize("output_format", ["cog", "gtiff"])
def test_several_class_outputs_are_written(tmp_path: Path, outputs: int, output_format: str) -> None:
    model = _segmenter(tmp_path / "multi.onnx", outputs)
    array = (rasters.smooth_random(3, 90, 120, seed=outputs) * 255).astype(np.uint8)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    result = run_model(model, str(raster), str(tmp_path / "out.tif"),
                       RunOptions(device="cpu", output_format=output_format))
    ds = gdal.Open(str(tmp_path / "out.tif"))
    assert ds.RasterCount == outputs
    classes = ds.ReadAsArray()
    for i in range(outputs):
        band = ds.GetRasterBand(i + 1)
        assert band.GetMetadata() == {"CLASS_1": f"not {i}", "CLASS_2": f"feature {i}"}
        assert band.GetColorInterpretation() not in (gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand,
                                                      gdal.GCI_AlphaBand), "a class band read as colour"
        assert set(np.unique(classes[i])) <= {1, 2}
    table = ds.GetRasterBand(1).GetColorTable()
    assert (table is not None) == (outputs <= 2)  # GeoTIFF holds a palette with at most two samples per pixel
    assert result.style_path and "paletted" in Path(result.style_path).read_text(encoding="utf-8")
