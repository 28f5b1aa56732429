"""How batches reach onnxruntime: IOBinding (as on CUDA and TensorRT, exercised here on the CPU) gives the same
outputs as a plain run, and the default batch follows the provider."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal

from deepstrata.inference import RunOptions, load_model, run_model
from deepstrata.inference.engine import model as model_module, providers
from deepstrata.inference.engine.plan import DEFAULT_BATCH, make_plan
from deepstrata.inference.engine.windows import Window
from ds_testing import models, rasters


def _read(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    return ds.ReadAsArray()


def test_bound_runs_equal_plain_runs(tmp_path: Path) -> None:
    model = load_model(models.conv_segmenter(tmp_path / "seg.onnx", classes=4, layers=2), "cpu")
    batch = np.random.default_rng(0).normal(size=(3, 3, 40, 56)).astype(np.float32)
    feeds = {model.input_name: batch}
    plain = model.session.run(model.output_names, feeds)
    bound = providers.run_bound(model.session, feeds, model.output_names, "cpu")
    assert len(bound) == len(plain) == 1
    np.testing.assert_array_equal(bound[0], plain[0])


def test_a_run_with_bound_io_writes_the_same_rasters(tmp_path: Path, monkeypatch: Any) -> None:
    seg = models.conv_segmenter(tmp_path / "seg.onnx", classes=4, layers=3)
    reg = models.regressor(tmp_path / "reg.onnx", bands=3, outputs=2)
    raster = rasters.write_raster(tmp_path / "in.tif", rasters.smooth_random(3, 140, 190, seed=2).astype(np.float32))
    for name, path in (("seg", seg), ("reg", reg)):
        run_model(path, str(raster), str(tmp_path / f"{name}_plain.tif"), RunOptions(device="cpu", tile_size=64))
    calls: list[str] = []

    def counted(*args: Any) -> list[np.ndarray]:
        calls.append(args[3])
        return providers.run_bound(*args)

    monkeypatch.setitem(providers.BINDS_IO, "CPUExecutionProvider", "cpu")
    monkeypatch.setattr(model_module, "run_bound", counted)
    for name, path in (("seg", seg), ("reg", reg)):
        run_model(path, str(raster), str(tmp_path / f"{name}_bound.tif"), RunOptions(device="cpu", tile_size=64))
        np.testing.assert_array_equal(_read(tmp_path / f"{name}_bound.tif"), _read(tmp_path / f"{name}_plain.tif"))
    assert calls and set(calls) == {"cpu"}


def test_the_default_batch_follows_the_provider(tmp_path: Path) -> None:
    model = load_model(models.conv_segmenter(tmp_path / "seg.onnx"), "cpu")
    window = Window(0, 0, 2000, 2000)
    assert make_plan(model, window, RunOptions(), print).batch == DEFAULT_BATCH == 4
    model.provider = "CUDAExecutionProvider"  # the plan only: nothing runs
    assert make_plan(model, window, RunOptions(), print).batch == providers.GPU_BATCH == 16
    assert make_plan(model, window, RunOptions(batch_size=3), print).batch == 3
