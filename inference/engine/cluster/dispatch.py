"""ClusterFill: the fill of a run (execute.Fill) on a Dask cluster. The output window is cut into bands of rows
(bands.py); each is a task (worker.run_band) on any worker; the bands' bytes are written here into the run's
staged outputs as they arrive, so the styles, statistics, median filter and COG of the run are made here exactly
as on one machine. Progress counts the tiles of finished bands; a cancel stops waiting, cancels the tasks and
leaves nothing (the staging drops the outputs)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
from osgeo import gdal

from .. import errors
from ..deepness import CardOverrides
from ..errors import CancelledError, ClusterError, DeepStrataError
from ..execute import FillJob, Filled
from ..pipeline import Counts, check_finite, tile_count
from ..progress import Cancelled, doing, never_cancelled, note
from ..targets import BLOCK
from ..windows import Window
from ..writer import human_size
from .bands import band_height, column_groups, cut
from .connect import Connection, distributed, parse
from .probe import judge, probe, versions
from .worker import BandResult, ModelFiles, run_band

gdal.UseExceptions()
log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waiting client looks at the cancel flag
FETCH_TRIES = 5  # attempts at fetching a finished block's result over a failing connection
Block = tuple[tuple[int, int], tuple[int, int]]  # (output rows, output columns)
GPU_DEVICES = ("cuda", "tensorrt")


def shared_path(path: str | None) -> str | None:
    """A path as workers must see it: absolute for a file here, as given for GDAL's virtual file systems."""
    if not path or path.startswith("/vsi") or "://" in path:
        return path
    return os.path.abspath(path)


class ClusterFill:
    """Computes a run's tiles on the Dask cluster at `spec` (RunOptions.cluster) in bands of `rows` rows (None:
    chosen); connects at the first run, closes on exit. `peak_rss`: the workers' peak memory (bytes) seen."""

    def __init__(self, spec: str, rows: int | None = None, is_cancelled: Cancelled | None = None) -> None:
        self.address = parse(spec)
        self.rows = rows
        self.is_cancelled = is_cancelled or never_cancelled
        self.connection: Connection | None = None
        self.peak_rss: dict[str, int] = {}
        self.tasks = 0
        self.busy_s = 0.0  # the blocks' time on their workers, together

    def __enter__(self) -> "ClusterFill":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def __call__(self, job: FillJob) -> Filled:
        if self.connection is None:
            doing(f"Connecting to {self.address.label}")
            self.connection = Connection(self.address)
        workers = self.connection.workers()
        input_path = shared_path(job.input_path) or job.input_path
        self._check(job, input_path)
        tiles = self._blocks(job, len(workers))
        client = self.connection.client
        files = client.scatter(ModelFiles.of(job.model), broadcast=True)
        options = self._band_options(job, len(workers))
        token = uuid.uuid4().hex[:8]
        futures = {client.submit(run_band, files, input_path, options, rows, cols, pure=False,
                                 key=f"deepstrata-{token}-rows-{rows[0]}-{rows[1]}-columns-{cols[0]}-{cols[1]}",
                                 resources=self._resources(job.options.device, workers)): (rows, cols)
                   for rows, cols in tiles}
        self.tasks += len(futures)
        counts, providers = self._gather(job, futures, tiles)
        check_finite(job.model.path, counts, job.warn)
        log.info("Workers' peak memory: %s", ", ".join(f"{w} {human_size(m)}" for w, m in sorted(self.peak_rss.items())))
        return Filled(counts, _providers(providers, len(futures)))

    def _blocks(self, job: FillJob, workers: int) -> dict[Block, int]:
        """The run's blocks (output rows, output columns) with their tile counts, said in the log."""
        output, plan = job.plan.output, job.plan
        r0, r1 = (job.band[0] - output.y, job.band[1] - output.y) if job.band else (0, output.h)
        groups = column_groups(*(job.columns or (0, output.w)), plan.chunk_width)
        pixel_bytes = sum(w.target.bands * np.dtype(w.target.dtype).itemsize for w in job.writers)
        step = band_height(r1 - r0, groups[0][1] - groups[0][0], plan.tile_in[0], workers, self.rows, pixel_bytes)
        raster = Window(0, 0, job.source.width, job.source.height)
        tiles = {(b, g): tile_count(plan, raster, (output.y + b[0], output.y + b[1]), g)
                 for b in cut(r0, r1, step) for g in groups}
        note(log, f"On {self.address.label} ({workers} workers): {len(tiles)} tasks of up to {step} rows x "
                  f"{groups[0][1] - groups[0][0]} columns, {sum(tiles.values())} tiles "
                  f"({tile_count(plan, raster, job.band, job.columns)} on one machine: bands of rows recompute the "
                  "tiles they share)")
        return tiles

    def _gather(self, job: FillJob, futures: dict[Any, Block], tiles: dict[Block, int]) -> tuple[Counts, Counter[str]]:
        """Each block written into the run's outputs as it comes back; progress by tiles, cancel polled."""
        output = job.plan.output
        top = job.band[0] - output.y if job.band else 0  # the writers' first output row and column
        left = job.columns[0] if job.columns else 0
        total, done = sum(tiles.values()), 0
        counts, providers = Counts(), Counter[str]()
        pending = set(futures)
        try:
            while pending:
                if job.is_cancelled() or self.is_cancelled():
                    raise CancelledError()
                finished, pending = self._wait(pending)
                for future in finished:
                    band = self._result(future, futures[future][0])
                    _write(band, job, top, left)
                    counts.add(Counts(band.valid, band.lost, band.non_finite))
                    providers[band.provider] += 1
                    self.peak_rss[band.worker] = max(self.peak_rss.get(band.worker, 0), band.peak_rss)
                    self.busy_s += band.seconds
                    done += tiles[futures[future]]
                    doing(f"Block {len(futures) - len(pending)} of {len(futures)} back from the cluster")
                    job.on_progress(min(done / total, 1.0) if total else 1.0)
                    future.release()
        finally:
            for future in pending:
                future.cancel()
        return counts, providers

    def _check(self, job: FillJob, input_path: str) -> None:
        """Every worker runs this DeepStrata and can open the run's files; else ClusterError naming which."""
        assert self.connection is not None
        paths = [p for p in (input_path, shared_path(job.options.valid_mask)) if p]
        try:
            answers = self.connection.client.run(probe, paths)
        except DeepStrataError:
            raise
        except Exception as exc:  # a worker without DeepStrata cannot even unpickle the probe
            raise ClusterError(f"The workers of {self.address.label} could not run DeepStrata's check "
                               f"({type(exc).__name__}: {exc}). Install this DeepStrata on every worker (the plugin "
                               "folder on their PYTHONPATH, docs/scale-out.md) and restart them.") from exc
        refusals, warnings = judge(versions(), answers, self.address.label)
        for warning in warnings:
            job.warn(warning)
        if refusals:
            raise ClusterError(" ".join(refusals[:3]) + (f" ({len(refusals) - 3} more)" if len(refusals) > 3 else ""))

    def _band_options(self, job: FillJob, workers: int) -> Any:
        """The run's options as each band runs them: no median filter (made here over the whole output), the
        files as workers see them, and on a local cluster the cores shared between its workers."""
        card = job.options.card
        if job.model.card.output.median_filter > 1:
            card = replace(card or CardOverrides(), median_filter=1)
        threads = job.options.threads
        if not threads and self.address.kind == "local":
            threads = max(1, (os.cpu_count() or 1) // workers)
        return replace(job.options, card=card, threads=threads, valid_mask=shared_path(job.options.valid_mask))

    @staticmethod
    def _resources(device: str, workers: dict[str, dict[str, Any]]) -> dict[str, int] | None:
        """A run asking for a GPU goes to the workers that declare one (dask worker --resources GPU=1), if any."""
        if device in GPU_DEVICES and any(w.get("resources", {}).get("GPU") for w in workers.values()):
            return {"GPU": 1}
        return None

    def _wait(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        dd = distributed()
        try:
            done, not_done = dd.wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set(), pending
        except Exception as exc:  # noqa: BLE001 (the connection's own errors)
            raise self._lost(exc) from exc
        return set(done), set(not_done)

    def _lost(self, exc: BaseException) -> ClusterError:
        return ClusterError(f"Lost {self.address.label} during the run ({type(exc).__name__}: "
                            f"{str(exc).strip() or 'no answer'}). Nothing was written and earlier files are "
                            "unchanged. Check the scheduler and its workers (docs/scale-out.md) and run again, or "
                            "run without a cluster.")

    def _result(self, future: Any, band: tuple[int, int]) -> BandResult:
        """A finished block's result. Fetching it can fail on the connection (the worker that holds it died a
        moment ago): while the scheduler is there it is asked again (the scheduler computes a lost result again),
        up to FETCH_TRIES times; a scheduler gone is a lost cluster."""
        dd = distributed()
        for attempt in range(1, FETCH_TRIES + 1):
            try:
                result = future.result()
                break
            except dd.KilledWorker as exc:
                raise ClusterError(f"Rows {band[0]}-{band[1]} killed the workers that ran them, again and again (a "
                                   "worker dies when it runs out of memory). Give the workers more memory "
                                   "(dask worker --memory-limit), or cut the run into smaller bands of rows "
                                   "(--dask-rows), and run again.") from exc
            except (OSError, TimeoutError, concurrent.futures.CancelledError, asyncio.CancelledError) as exc:
                time.sleep(1.0)  # the client notices a scheduler gone within this
                if attempt == FETCH_TRIES or not self._connected():
                    raise self._lost(exc) from exc
            except Exception as exc:  # noqa: BLE001 (a fault in a task)
                if not self._connected():
                    raise self._lost(exc) from exc
                raise DeepStrataError(f"Rows {band[0]}-{band[1]} failed on the cluster ({type(exc).__name__}: "
                                      f"{exc}). This is a fault in DeepStrata or on that worker, not in your data: "
                                      "please report it with the worker's log.") from exc
        if result.error:
            raise _error(result)
        return result

    def _connected(self) -> bool:
        return self.connection is not None and self.connection.client.status == "running"


def _error(result: BandResult) -> DeepStrataError:
    """A worker's DeepStrataError as the same kind of error here (InputError, ModelError, ...)."""
    for name in result.error_kinds:
        kind = getattr(errors, name, None)
        if kind in (errors.InputError, errors.ModelError, errors.OutputError, errors.DependencyError):
            return kind(result.error)
    return DeepStrataError(result.error)


def _providers(used: Counter[str], tasks: int) -> str:
    """'CPUExecutionProvider on a Dask cluster (6 tasks)', or each provider with its share of the tasks."""
    if len(used) == 1:
        return f"{next(iter(used))} on a Dask cluster ({tasks} task{'s' if tasks > 1 else ''})"
    return "a Dask cluster: " + ", ".join(f"{name} ({count} of {tasks} tasks)" for name, count in used.most_common())


def _write(band: BandResult, job: FillJob, top: int, left: int) -> None:
    """The band's GeoTIFFs into the run's writers at its rows and columns (`top`, `left`: the output row and
    column of the writers' first)."""
    for k, (data, writer) in enumerate(zip(band.outputs, job.writers)):
        name = f"/vsimem/deepstrata-band-{uuid.uuid4().hex}-{k}.tif"
        gdal.FileFromMemBuffer(name, data)
        try:
            ds = gdal.Open(name)
            for y in range(0, ds.RasterYSize, BLOCK):
                array = ds.ReadAsArray(0, y, ds.RasterXSize, min(BLOCK, ds.RasterYSize - y))
                writer.write(band.columns[0] - left, band.rows[0] - top + y, array if array.ndim == 3 else array[None])
            ds = None
        finally:
            gdal.Unlink(name)
