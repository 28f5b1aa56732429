"""Faults a command line run meets: signals at chosen moments (SIGINT, SIGTERM, SIGKILL and the next run's sweep),
two runs into one output at once, a model's external data beside it, an output that is the input in another case.
Each asserts the exit status, the message, that earlier outputs are byte-identical and that nothing is left."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ds_testing import faults, models, rasters
from ds_testing.cli_runs import PausedCli, cli, cli_args as run, env
from ds_testing.faults import Bench, Snapshot
from ds_testing.paths import DEM

gdal.UseExceptions()
CANCELLED = "cancelled ({}); nothing was written and earlier files are unchanged"


# ---------------------------------------------------------------------------------------------- signals

def _signal_args(b: Bench) -> list:
    """A run with two outputs (a class raster and its confidence), earlier outputs at both."""
    b.earlier()
    faults.earlier_outputs(b.out / "c.tif")
    return run(b, b.out / "o.tif", "seg", None, "--tile-size", "32", "--confidence", b.out / "c.tif")


def _replaced(b: Bench, watch: Snapshot) -> list[str]:
    """The outputs whose earlier file has already been replaced (set aside by the commit)."""
    return [name for name in ("o.tif", "c.tif") if watch.before[str(b.out / name)] != faults.digest(b.out / name)]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", ["writer", "tile:3", "cog:3", "commit:1"],
                         ids=["before the first tile", "mid-run", "making the COGs", "during the commit"])
def test_a_signal_cancels_and_earlier_outputs_stay(bench: Bench, point: str, number: int) -> None:
    args = _signal_args(bench)
    watch = Snapshot(bench.root)
    paused = PausedCli(point, "run", *args)
    paused.wait_paused()
    if point.startswith("commit"):  # the commit has begun: a new file is in place, its earlier one set aside
        assert _replaced(bench, watch)
    else:
        assert any(faults.TEMP_NAME.match(n) for n in os.listdir(bench.out))  # staged, not yet in place
    paused.send(number)
    status, out, err = paused.finish()
    name = signal.Signals(number).name
    assert status == 128 + number, err
    assert err.strip().splitlines()[-1] == f"error: {CANCELLED.format(name)}"
    assert "Traceback" not in err and "Wrote" not in out
    watch.check(note=f" after {name} {point}")


@pytest.mark.parametrize("point", ["tile:3", "cog:3", "commit:1"],
                         ids=["mid-run", "making the COGs", "during the commit"])
def test_sigkill_leaves_only_its_own_files_and_the_next_run_removes_them(bench: Bench, point: str) -> None:
    from deepstrata.inference.engine.staging import HOST

    args = _signal_args(bench)
    watch = Snapshot(bench.root)
    paused = PausedCli(point, "run", *args)
    paused.wait_paused()
    paused.send(signal.SIGKILL)
    status, _, err = paused.finish()
    assert status == -signal.SIGKILL, err
    left = faults.temporaries(bench.root)
    assert left
    for path in left:
        match = faults.TEMP_NAME.match(Path(path).name)
        assert match and match["host"] == HOST and match["pid"] == str(paused.pid), path
    if point.startswith("commit"):  # killed half-way through its commit: a new file in place, the old one aside
        assert _replaced(bench, watch)
        assert any(".journal" in p for p in left) and any(".backup" in p for p in left)

    done = cli("run", "--quiet", *run(bench, bench.out / "next.tif"))  # the next run into that folder
    assert done.returncode == 0, done.stderr
    watch.check(created=[bench.out / "next.tif", bench.out / "next.tif.aux.xml", bench.out / "next.qml"],
                note=" after the next run")


def test_sigint_mid_run_of_the_real_cli(bench: Bench) -> None:
    """No injected pause: the real `python -m deepstrata.inference`, interrupted at its first progress line."""
    bench.earlier()
    big = rasters.write_raster(bench.inputs / "big.tif",
                               (rasters.smooth_random(1, 768, 1024) * 1000 + 500).astype(np.float32))
    watch = Snapshot(bench.root)
    proc = subprocess.Popen([sys.executable, "-m", "deepstrata.inference", "run",
                             *run(bench, bench.out / "o.tif", "seg", big, "--tile-size", "16", "--batch-size", "1")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "%" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=60)
    err = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"error: {CANCELLED.format('SIGINT')}"
    assert "100%" not in err and "Wrote" not in out
    watch.check()


# ---------------------------------------------------------------------------------------------- concurrency

def test_two_runs_to_the_same_output_at_once(bench: Bench) -> None:
    big = rasters.write_raster(bench.inputs / "big.tif",
                               (rasters.smooth_random(1, 512, 640, seed=3) * 1000 + 500).astype(np.float32))
    args = run(bench, bench.out / "o.tif", "seg", big, "--tile-size", "32", "--batch-size", "1")
    procs = [subprocess.Popen([sys.executable, "-m", "deepstrata.inference", "run", "--quiet", *map(str, args)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for status, _, err in results:  # each finished, or failed cleanly with one line
        assert status == 0 or (status == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err), err
    assert any(status == 0 for status, _, _ in results)
    assert not faults.temporaries(bench.root)
    assert sorted(os.listdir(bench.out)) == ["o.qml", "o.tif", "o.tif.aux.xml"]
    ds = gdal.Open(str(bench.out / "o.tif"))
    classes = ds.ReadAsArray()
    ds.GetRasterBand(1).Checksum()  # every block decodes
    z = rasters.read_raster(big)[0]
    expected = models.reference_run(bench.models / "seg.onnx", (z - 1000.0) / 250.0).argmax(axis=0) + 1
    assert float((classes == expected).mean()) > 0.999


# ---------------------------------------------------------------------------------------------- external data

def test_external_data_is_read_beside_the_model_never_from_the_working_directory(bench: Bench,
                                                                                  tmp_path: Path) -> None:
    model = models.external_data_regressor(bench.models / "ext" / "scaled.onnx", factor=2.0)
    elsewhere = tmp_path / "elsewhere"
    models.external_data_regressor(elsewhere / "decoy.onnx", factor=7.0).unlink()  # leaves a decoy weights.bin
    assert (elsewhere / "weights.bin").exists()
    watch = Snapshot(bench.root, elsewhere)
    done = cli("run", "--quiet", *run(bench, bench.out / "o.tif", str(model)), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    watch.check(created=[bench.out / "o.tif", bench.out / "o.qml"])
    assert np.array_equal(rasters.read_raster(bench.out / "o.tif")[0], 2 * rasters.read_raster(DEM)[0])


# ---------------------------------------------------------------------------------------------- case folding

def test_an_output_that_is_the_input_in_another_case(bench: Bench) -> None:
    folded = bench.stack.enter_context(faults.case_folding(bench.root / "folded"))
    source = folded / "DEM.tif"
    shutil.copy(DEM, source)
    watch = Snapshot(bench.root)
    done = cli("run", "--quiet", *run(bench, folded / "dem.TIF", "seg", source))
    assert done.returncode == 1
    assert f"--output '{folded / 'dem.TIF'}' is the input raster ('{source}')" in done.stderr
    assert "Outputs never overwrite inputs" in done.stderr
    watch.check()
