"""Dask clusters for the cluster tests: a LocalCluster of worker processes, or a scheduler and workers started by
hand as separate processes (as docs/scale-out.md does), and a raster of many bands of rows."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from osgeo import gdal

from ds_testing import rasters

gdal.UseExceptions()


@contextmanager
def by_hand(folder: Path, workers: int = 2) -> Iterator[tuple[Path, subprocess.Popen, subprocess.Popen]]:
    """`dask scheduler --scheduler-file` and `dask worker --nworkers N` as processes; (file, scheduler, workers)."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "scheduler.json"
    python = [sys.executable, "-m"]
    scheduler = subprocess.Popen(python + ["distributed.cli.dask_scheduler", "--scheduler-file", str(file), "--port",
                                           "0", "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    worker = None
    try:
        for _ in range(300):
            if file.is_file() and file.stat().st_size:
                break
            time.sleep(0.1)
        worker = subprocess.Popen(python + ["distributed.cli.dask_worker", "--scheduler-file", str(file),
                                            "--nworkers", str(workers), "--nthreads", "1", "--no-dashboard",
                                            "--local-directory", str(folder / "workers")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_workers(str(file), workers)
        yield file, scheduler, worker
    finally:
        for process in (worker, scheduler):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_workers(scheduler_file: str, count: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(scheduler_file=scheduler_file, timeout=timeout) as client:
        client.wait_for_workers(count, timeout=timeout)


def scheduler_address(scheduler_file: Path) -> str:
    return str(json.loads(scheduler_file.read_text())["address"])


def worker_pids(address: str) -> dict[str, int]:
    """Each worker's process id, by worker address."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        return dict(client.run(os.getpid))


def striped_raster(path: Path, size: int, bands: int = 1) -> Path:
    """A size x size Byte GeoTIFF (EPSG:32633, 10 m) of smooth waves, strip by strip; 0 is nodata (a corner)."""
    def waves(b: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        wave = np.sin(cols / (23.0 + 9 * b)) * np.cos(rows / (31.0 + 7 * b)) + np.sin((cols + rows) / 97.0)
        values = (128 + 60 * wave).astype(np.uint8)
        values[(rows < 40) & (cols < 40)] = 0
        return values

    return rasters.write_strips(path, size, waves, bands=bands, nodata=0)
