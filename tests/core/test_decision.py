"""The class decision on the raw output (inference/engine/decision.py): where one tile alone covers a pixel, the
class comes from the model's raw output (appended to the graph, or in numpy without onnx) instead of softmax,
weights and blending. The class rasters must equal the fully blended path's (taken when a confidence raster is
asked for) pixel for pixel."""
from __future__ import annotations

import builtins
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from osgeo import gdal

from deepstrata.inference import CardOverrides, RunOptions, run_model
from deepstrata.inference.engine import decision
from deepstrata.inference.engine.tiling import TileGrid
from ds_testing import models, rasters


def _read(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    return ds.ReadAsArray()


@pytest.mark.parametrize("grid", [(1000, 700, 256, 256, 6, 3), (1000, 700, 250, 250, 40, 10),
                                  (4096, 900, 512, 512, 76, 38), (300, 301, 64, 64, 16, 0), (200, 90, 256, 256, 6, 3),
                                  (517, 263, 96, 64, 24, 4, 8)])
def test_regions_are_the_tiles_own_pixels_and_the_rest_of_its_weights(grid: tuple[int, ...]) -> None:
    g = TileGrid(*grid)
    covering = np.zeros(g.span, dtype=int)
    for tile in g:
        covering[tile.y:tile.y1, tile.x:tile.x1] += g.weights(tile) > 0
    alone_pixels = 0
    for tile in g:
        alone, rest = g.regions(tile)
        positive = g.weights(tile) > 0
        if alone is None:
            assert rest == []
            continue
        seen = np.zeros_like(positive)
        y0, y1, x0, x1 = alone
        seen[y0:y1, x0:x1] = True
        assert (covering[tile.y:tile.y1, tile.x:tile.x1][seen] == 1).all(), "another tile reaches 'alone' pixels"
        alone_pixels += int(seen[:g.height - tile.y, :g.width - tile.x].sum())
        for a, b, c, d in rest:
            assert not seen[a:b, c:d].any(), "the rectangles overlap"
            seen[a:b, c:d] = True
        assert (seen == positive).all(), "alone + rest must be exactly where the tile's weight is above zero"
    assert alone_pixels >= 0.5 * g.width * g.height


def _graph_decision(rule: decision.Rule, raw: np.ndarray) -> np.ndarray:
    c = raw.shape[1]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    appended = decision.with_decision(model.SerializeToString(), "y", rule)
    assert appended is not None
    onnx.checker.check_model(onnx.load_from_string(appended), full_check=True)
    session = ort.InferenceSession(appended, providers=["CPUExecutionProvider"])
    return np.asarray(session.run([decision.OUTPUT], {"x": raw})[0]).reshape(raw.shape[:1] + raw.shape[2:])


@pytest.mark.parametrize("rule,channels", [(decision.Rule("argmax"), 5), (decision.Rule("argmax_from", 0.4), 3),
                                           (decision.Rule("argmax_from", -0.2), 4),
                                           (decision.Rule("above", 0.0), 1), (decision.Rule("from_nonzero", 0.3), 1)])
def test_the_graph_and_numpy_decide_alike(rule: decision.Rule, channels: int) -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(3, channels, 40, 50)).astype(np.float32)
    raw[:, :, 7:9] = 0.4  # ties between channels keep the first
    if rule.kind != "argmax" and rule.level > 0:
        raw = np.abs(raw) / 3
        raw[0, :, :5] = 0.0  # probabilities of exactly 0: never the second class
    ours = rule.numpy(raw)
    np.testing.assert_array_equal(_graph_decision(rule, raw), ours)
    if rule.kind == "argmax":
        np.testing.assert_array_equal(ours, raw.argmax(axis=1))
    elif rule.kind == "argmax_from":
        low = 0 if rule.level > 0 else np.finfo(np.float32).min
        np.testing.assert_array_equal(ours, np.where(raw >= rule.level, raw, low).argmax(axis=1))
    elif rule.kind == "from_nonzero":
        np.testing.assert_array_equal(ours, (raw[:, 0] >= 0.3) & (raw[:, 0] != 0))
        assert not ours[0, :5].any()


def test_rules_follow_the_card(tmp_path: Path) -> None:
    from deepstrata.inference import load_model

    soft = load_model(models.conv_segmenter(tmp_path / "s.onnx", classes=4))
    assert decision.decision_rule(soft.card, 4) == decision.Rule("argmax")
    thresholded = load_model(tmp_path / "s.onnx", overrides=CardOverrides(threshold=0.6))
    assert decision.decision_rule(thresholded.card, 4) is None  # a softmax with a threshold needs probabilities
    probs = load_model(models.probability_segmenter(tmp_path / "p.onnx", classes=3), overrides=CardOverrides(
        threshold=0.5))
    assert decision.decision_rule(probs.card, 3) == decision.Rule("argmax_from", 0.5)
    binary = load_model(models.binary_segmenter(tmp_path / "b.onnx"), overrides=CardOverrides(threshold=0.75))
    rule = decision.decision_rule(binary.card, 1)
    assert rule is not None and rule.kind == "from_nonzero" and rule.level == pytest.approx(np.log(3))
    assert decision.decision_rule(soft.card, None) is None


def _models(tmp: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    norm = {"method": "scale", "factor": 0.01}
    return [
        ("softmax logits", models.conv_segmenter(tmp / "soft.onnx", classes=4, layers=3, normalization=norm), {}),
        ("probabilities, threshold", models.probability_segmenter(tmp / "prob.onnx", classes=3, normalization=norm),
         {"card": CardOverrides(threshold=0.4)}),
        ("sigmoid binary", models.binary_segmenter(tmp / "bin.onnx", bands=3, layers=2, seed=3,
                                                          normalization=norm), {}),
        ("sigmoid binary, threshold", tmp / "bin.onnx", {"card": CardOverrides(threshold=0.55)}),
        ("ramps between tiles", tmp / "soft.onnx", {"overlap": 20, "tile_size": 48}),
        ("Deepness metadata", models.deepness_segmenter(tmp / "deepness.onnx", classes=3), {}),
    ]


@pytest.mark.parametrize("in_graph", [True, False])
@pytest.mark.parametrize("case", range(6))
def test_class_rasters_equal_the_blended_path(tmp_path: Path, case: int, in_graph: bool, caplog: Any,
                                              monkeypatch: Any) -> None:
    monkeypatch.setattr(decision, "GRAPH_ON_CPU", in_graph)
    name, model, extra = _models(tmp_path)[case]
    array = (rasters.smooth_random(3, 157, 203, seed=case, sigma=5.0) * 100).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array, nodata=-1.0)
    options = {"device": "cpu", "tile_size": 64, **extra}
    with caplog.at_level(logging.INFO, logger="deepstrata"):
        run_model(model, str(raster), str(tmp_path / "fast.tif"), RunOptions(**options))
    where = "inside the graph (onnxruntime)" if in_graph else "in numpy on the raw output"
    assert f"class decision {where}" in caplog.text, name
    run_model(model, str(raster), str(tmp_path / "blended.tif"),
              RunOptions(confidence_path=str(tmp_path / "conf.tif"), **options))
    fast, blended = _read(tmp_path / "fast.tif"), _read(tmp_path / "blended.tif")
    assert len(np.unique(blended)) >= 2, f"{name}: a one-class map proves nothing"
    np.testing.assert_array_equal(fast, blended, err_msg=name)


def test_without_onnx_the_rule_runs_in_numpy(tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    monkeypatch.setattr(decision, "GRAPH_ON_CPU", True)
    real_import = builtins.__import__

    def no_onnx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    model = models.conv_segmenter(tmp_path / "soft.onnx", classes=4, layers=3)
    array = rasters.smooth_random(3, 130, 170, seed=3).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    run_model(model, str(raster), str(tmp_path / "graph.tif"), RunOptions(device="cpu", tile_size=48))
    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with caplog.at_level(logging.INFO, logger="deepstrata"):
        run_model(model, str(raster), str(tmp_path / "numpy.tif"), RunOptions(device="cpu", tile_size=48))
    assert "class decision in numpy (the optional package onnx is not installed" in caplog.text
    np.testing.assert_array_equal(_read(tmp_path / "numpy.tif"), _read(tmp_path / "graph.tif"))


def test_nodata_stays_nodata(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "soft.onnx", classes=4, layers=2)
    array = rasters.smooth_random(3, 120, 150, seed=5).astype(np.float32)
    array[:, 30:60, 40:90] = -9999.0
    raster = rasters.write_raster(tmp_path / "in.tif", array, nodata=-9999.0)
    run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(device="cpu", tile_size=32))
    classes = _read(tmp_path / "out.tif")
    assert (classes[30:60, 40:90] == 0).all()
    assert (np.delete(classes, np.s_[30:60], axis=0) > 0).all()


def test_a_model_file_changed_since_loading_keeps_the_rule_in_numpy(tmp_path: Path, monkeypatch: Any,
                                                                    caplog: Any) -> None:
    from deepstrata.inference import load_model

    monkeypatch.setattr(decision, "GRAPH_ON_CPU", True)
    path = models.conv_segmenter(tmp_path / "seg.onnx", classes=4, layers=2)
    model = load_model(path, "cpu")
    raster = rasters.write_raster(tmp_path / "in.tif", rasters.smooth_random(3, 90, 110, seed=2).astype(np.float32))
    run_model(model, str(raster), str(tmp_path / "before.tif"), RunOptions(device="cpu", tile_size=48))
    models.conv_segmenter(path, classes=4, layers=2, seed=7)  # another graph under the same name
    model.decisions.clear()
    with caplog.at_level(logging.INFO, logger="deepstrata"):
        run_model(model, str(raster), str(tmp_path / "after.tif"), RunOptions(device="cpu", tile_size=48))
    assert "class decision in numpy (the graph cannot take it)" in caplog.text
    np.testing.assert_array_equal(_read(tmp_path / "after.tif"), _read(tmp_path / "before.tif"))  # the loaded one
