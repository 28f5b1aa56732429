"""Runs on a Dask cluster (issue #15) equal runs on one machine: the same pixels whatever the workers and the band
height, with a worker process killed mid-run; and every failure (no dask, no scheduler, other versions, inputs the
workers cannot open, the cluster lost, a cancel) says what to do and leaves no output behind."""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import CardOverrides, RunOptions, run_model
from deepstrata.inference.engine.cluster import connect, dispatch
from deepstrata.inference.engine.errors import CancelledError, ClusterError, DependencyError, InputError
from ds_testing import dask_cluster, models, rasters

import distributed  # noqa: E402  (installed by the Makefile: a missing one fails here, never skips)

gdal.UseExceptions()


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (one thread each), as a scheduler address."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_kwargs={"dashboard": False}) as local:
        yield local.scheduler_address


def _pixels(path: str | Path) -> tuple[np.ndarray, tuple, str, list]:
    ds = gdal.Open(str(path))
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    return ds.ReadAsArray(), ds.GetGeoTransform(), ds.GetProjection(), [b.GetNoDataValue() for b in bands]


def _same_files(one: str | Path, two: str | Path, exact: bool = True) -> None:
    a, b = _pixels(one), _pixels(two)
    assert a[1:] == b[1:]  # geotransform, CRS, nodata
    if exact:
        np.testing.assert_array_equal(a[0], b[0])
    else:
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=0)


def _case(tmp_path: Path, name: str):
    if name == "classes":  # decided where one tile covers, blended at the overlaps, with its confidence; tasks of
        # rows x column chunks (chunks of 256 px, the smallest, make the 530 px wide raster 'wide')
        return (models.conv_segmenter(tmp_path / "m.onnx", classes=4, layers=3),
                RunOptions(tile_size=64, chunk_width=256), True)
    if name == "ramped":
        return models.conv_segmenter(tmp_path / "m.onnx", classes=3, layers=2), RunOptions(tile_size=64, overlap=20), True
    if name == "threshold+median":  # the median filter runs after the bands are put together
        return (models.probability_segmenter(tmp_path / "m.onnx", classes=3),
                RunOptions(tile_size=48, card=CardOverrides(threshold=0.4, median_filter=3)), False)
    if name == "regression":
        return models.regressor(tmp_path / "m.onnx", bands=3, outputs=2), RunOptions(tile_size=56), False
    return models.autoencoder(tmp_path / "m.onnx", bands=3), RunOptions(tile_size=64), False


@pytest.mark.parametrize("name,rows", [("classes", 256), ("ramped", 512), ("threshold+median", 256),
                                       ("regression", 300), ("anomaly", None)])
def test_a_cluster_run_writes_what_one_machine_writes(tmp_path: Path, cluster: str, name: str, rows) -> None:
    array = rasters.smooth_random(3, 1100, 530, seed=3).astype(np.float32)
    array[:, 300:340, 100:200] = -1.0  # nodata across a band edge
    raster = rasters.write_raster(tmp_path / "in put.tif", array, nodata=-1.0)
    model, options, confidence = _case(tmp_path, name)
    outputs = {}
    for where in ("here", "cluster"):
        conf = str(tmp_path / f"{where}_conf.tif") if confidence else None
        options.confidence_path, options.cluster = conf, (cluster if where == "cluster" else None)
        options.cluster_rows = rows
        outputs[where] = run_model(model, str(raster), str(tmp_path / f"{where}.tif"), options)
    here, there = outputs["here"], outputs["cluster"]
    _same_files(here.output_path, there.output_path, exact=name in ("classes", "ramped", "threshold+median"))
    if confidence:
        _same_files(here.confidence_path, there.confidence_path, exact=False)
    assert "Dask cluster" in there.provider and "CPUExecutionProvider" in there.provider
    if name == "classes":
        assert there.provider.endswith(f"({5 * 3} tasks)")  # 5 bands of 256 rows x 3 chunks of 256 columns
    assert (there.valid_pixels, there.lost_pixels) == (here.valid_pixels, here.lost_pixels)
    assert bool(there.style_path) == bool(here.style_path) and (not there.style_path or Path(there.style_path).exists())
    a, b = gdal.Open(here.output_path), gdal.Open(there.output_path)
    assert a.GetRasterBand(1).GetMetadata() == b.GetRasterBand(1).GetMetadata()  # class names, statistics
    assert json.loads(b.GetMetadataItem("DEEPSTRATA_PARAMETERS"))["cluster"] == cluster
    assert not [f for f in os.listdir(tmp_path) if "partial" in f or f.startswith(".deepstrata")]


def _kill_one_worker_after_first_band(address: str, killed: list[int]):
    pids = list(dask_cluster.worker_pids(address).values())

    def progress(fraction: float) -> None:
        if 0 < fraction < 1 and not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
    return progress


@pytest.mark.parametrize("size,tile", [(4096, 256), (16384, 512)])
def test_a_worker_killed_mid_run_changes_nothing(tmp_path: Path, cluster: str, size: int, tile: int) -> None:
    """The issue's test: a LocalCluster of 2 processes, one SIGKILLed after the first band arrives; its tasks are
    run again elsewhere and the class map equals the single-machine run's, pixel for pixel."""
    raster = dask_cluster.striped_raster(tmp_path / "in.tif", size)
    model = models.conv_segmenter(tmp_path / "m.onnx", bands=1, classes=3, layers=2, hidden=4, tile_size=tile,
                                  normalization={"method": "zscore", "mean": [128.0], "std": [40.0]})
    options = RunOptions(output_format="gtiff")
    run_model(model, str(raster), str(tmp_path / "here.tif"), options)
    killed: list[int] = []
    options.cluster = cluster
    result = run_model(model, str(raster), str(tmp_path / "cluster.tif"), options,
                       on_progress=_kill_one_worker_after_first_band(cluster, killed))
    assert killed, "no worker was killed: the run finished in one band"
    _same_files(tmp_path / "here.tif", tmp_path / "cluster.tif")
    assert np.unique(gdal.Open(str(tmp_path / "cluster.tif")).ReadAsArray()).size >= 3  # a real class map
    assert "Dask cluster" in result.provider


def test_local_spec_starts_and_removes_its_own_cluster(tmp_path: Path) -> None:
    from deepstrata.inference.cli import main

    raster = dask_cluster.striped_raster(tmp_path / "in.tif", 700)
    model = models.conv_segmenter(tmp_path / "m.onnx", bands=1, classes=3, tile_size=128)
    before = {n for n in os.listdir(os.environ.get("TMPDIR", "/tmp")) if n.startswith("deepstrata-dask-")}
    common = ["run", "--model", str(model), "--input", str(raster), "--quiet", "--pixel-size", "raster"]
    assert main(common + ["--output", str(tmp_path / "here.tif")]) == 0
    assert main(common + ["--output", str(tmp_path / "local.tif"), "--dask", "local:2", "--dask-rows", "256"]) == 0
    _same_files(tmp_path / "here.tif", tmp_path / "local.tif")
    after = {n for n in os.listdir(os.environ.get("TMPDIR", "/tmp")) if n.startswith("deepstrata-dask-")}
    assert after <= before  # the local cluster's folder (its workers' scratch) is gone


def _small(tmp_path: Path) -> tuple[Path, Path]:
    raster = dask_cluster.striped_raster(tmp_path / "in.tif", 1024)
    return models.conv_segmenter(tmp_path / "m.onnx", bands=1, classes=3, tile_size=128), raster


def test_cancel_leaves_nothing_and_keeps_the_earlier_output(tmp_path: Path, cluster: str) -> None:
    model, raster = _small(tmp_path)
    out = tmp_path / "out.tif"
    out.write_bytes(b"an earlier result")
    flag = []
    with pytest.raises(CancelledError):
        run_model(model, str(raster), str(out), RunOptions(cluster=cluster, cluster_rows=256),
                  on_progress=lambda f: flag.append(f) if f > 0 else None, is_cancelled=lambda: bool(flag))
    assert out.read_bytes() == b"an earlier result"
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "m.onnx", "out.tif"]


def test_a_lost_cluster_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    model, raster = _small(tmp_path)
    with dask_cluster.by_hand(tmp_path / "dask") as (file, scheduler, workers):
        def progress(fraction: float) -> None:
            if 0 < fraction < 1 and scheduler.poll() is None:
                os.killpg(scheduler.pid, signal.SIGKILL)  # the scheduler: the whole cluster goes away
                os.killpg(workers.pid, signal.SIGKILL)
        with pytest.raises(ClusterError, match="Lost the Dask scheduler in .*scheduler.json.* during the run"):
            run_model(model, str(raster), str(tmp_path / "out.tif"),
                      RunOptions(cluster=str(file), cluster_rows=256), on_progress=progress)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("out")]


def test_workers_of_another_version_or_without_the_input_are_refused(tmp_path: Path, cluster: str,
                                                                    monkeypatch) -> None:
    model, raster = _small(tmp_path)
    real = dispatch.versions()
    monkeypatch.setattr(dispatch, "versions", lambda: {**real, "deepstrata": "9.9.9"})
    with pytest.raises(ClusterError, match=r"run deepstrata \S+ on 2 workers \(tcp://.*\), but this machine runs 9\.9\.9\. "
                                           r"Install the same DeepStrata"):
        run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(cluster=cluster))
    monkeypatch.setattr(dispatch, "versions", lambda: {**real, "onnxruntime": "0.0.1"})
    result = run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(cluster=cluster))
    assert any("run onnxruntime" in w and "may differ" in w for w in result.warnings)
    monkeypatch.undo()
    memory = "/vsimem/only_here.tif"  # the client's memory: no worker can open it
    gdal.GetDriverByName("GTiff").CreateCopy(memory, gdal.Open(str(raster)))
    try:
        with pytest.raises(ClusterError, match=r"2 workers \(tcp://.*\) cannot open '/vsimem/only_here.tif'.*"
                                               r"every worker mounts at the same path"):
            run_model(model, memory, str(tmp_path / "mem.tif"), RunOptions(cluster=cluster))
    finally:
        gdal.Unlink(memory)
    assert not (tmp_path / "mem.tif").exists()


def test_without_dask_or_a_scheduler_the_message_says_what_to_do(tmp_path: Path, monkeypatch, capsys) -> None:
    from deepstrata.inference.cli import main

    model, raster = _small(tmp_path)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(DependencyError, match=r"needs the 'distributed' package.*Check and install dependencies.*"
                                              r"pip install 'dask\[distributed\]"):
        run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(cluster="local:2"))
    args = ["run", "--model", str(model), "--input", str(raster), "--output", str(tmp_path / "o.tif"), "--quiet"]
    assert main(args + ["--dask", "local"]) == 1
    assert "error: Running on a Dask cluster needs the 'distributed' package" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setattr(connect, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ClusterError, match="Could not reach the Dask scheduler at 'tcp://127.0.0.1:9'.*Start the "
                                           "scheduler"):
        run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(cluster="127.0.0.1:9"))
    for bad in ("local:0", "local:two", "nowhere"):
        with pytest.raises(InputError, match="local:N|scheduler"):
            run_model(model, str(raster), str(tmp_path / "out.tif"), RunOptions(cluster=bad))
    assert main(args + ["--dask-rows", "512"]) == 2
    assert "--dask-rows cuts a run into Dask tasks: give --dask too" in capsys.readouterr().err
    assert not [f for f in os.listdir(tmp_path) if f.startswith(("out", "o."))]


def test_blocks_gpu_workers_and_providers_reported() -> None:
    """How a run is cut (bands of rows at least 4 tiles tall, ~2 per worker, column chunks of wide rasters), which
    workers a GPU run goes to, and how mixed providers are reported."""
    from collections import Counter

    from deepstrata.inference.engine.cluster.bands import band_height, column_groups, cut

    assert band_height(4096, 4096, 256, 2) == 1024  # 2 tasks per worker
    assert band_height(4096, 4096, 512, 8) == 2048  # never under 4 tiles
    assert band_height(100000, 4096, 256, 2) == 16384  # never over 64 MiB of Byte output per task
    assert band_height(100000, 4096, 256, 2, pixel_bytes=5) == 3072  # a class map and its Float32 confidence
    assert band_height(1000, 900, 64, 2, rows=300) == 512  # the user's rows, whole 256-row blocks
    assert cut(0, 1000, 512) == [(0, 512), (512, 1000)]
    assert column_groups(0, 8192, 4096) == [(0, 8192)]
    assert column_groups(0, 10000, 4096) == [(0, 4096), (4096, 8192), (8192, 10000)]
    gpu = {"tcp://a": {"resources": {"GPU": 1}}, "tcp://b": {"resources": {}}}
    assert dispatch.ClusterFill._resources("cuda", gpu) == {"GPU": 1}
    assert dispatch.ClusterFill._resources("auto", gpu) is None  # every worker takes blocks, each its best provider
    assert dispatch.ClusterFill._resources("cuda", {"tcp://b": {}}) is None  # no GPU declared: any worker
    mixed = Counter({"CUDAExecutionProvider": 12, "CPUExecutionProvider": 8})
    assert dispatch._providers(mixed, 20) == ("a Dask cluster: CUDAExecutionProvider (12 of 20 tasks), "
                                              "CPUExecutionProvider (8 of 20 tasks)")
    assert dispatch._providers(Counter({"CPUExecutionProvider": 1}), 1) == \
        "CPUExecutionProvider on a Dask cluster (1 task)"
