"""What a Dask worker process runs: a band of rows of a run through the engine (execute with the local fill),
into GeoTIFF files of its own scratch folder whose bytes go back to the client.

An onnxruntime session cannot be pickled, so the client ships the model's files (ModelFiles, scattered once)
and each worker thread loads and keeps its own Model, by SHA-256 and settings: a run sets the model's scale and
caches decision sessions on it, so one Model never serves two runs at once.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..deepness import CardOverrides
from ..errors import DeepStrataError
from ..execute import execute, local_fill
from ..model import Model, load_model
from ..options import RunOptions

_CACHE = threading.local()
KEEP = 2  # models kept per worker thread (a run, and the next one's)


@dataclass(frozen=True)
class ModelFiles:
    """A model's files by name (the .onnx, its .json sidecar, its external data), to rebuild it on a worker."""

    sha256: str
    name: str
    files: dict[str, bytes] = field(repr=False)

    @classmethod
    def of(cls, model: Model) -> "ModelFiles":
        folder = os.path.dirname(os.path.abspath(model.path))
        paths = [model.path] + list(model.external)
        if os.path.isfile(model.path + ".json"):
            paths.append(model.path + ".json")
        return cls(model.sha256, os.path.basename(model.path),
                   {os.path.relpath(os.path.abspath(p), folder): Path(p).read_bytes() for p in paths})

    def write(self, folder: str) -> str:
        """The files under `folder`/<sha256>/ (each written once, atomically); the model file's path there."""
        home = os.path.join(folder, "deepstrata-models", self.sha256)
        for name, data in self.files.items():
            path = os.path.join(home, name)
            if os.path.isfile(path) and os.path.getsize(path) == len(data):
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{os.getpid()}.{threading.get_ident()}.partial"
            Path(partial).write_bytes(data)
            os.replace(partial, path)
        return os.path.join(home, self.name)


@dataclass
class BandResult:
    """A band's outputs (GeoTIFF bytes per target) and what running it found, for the client."""

    rows: tuple[int, int]
    columns: tuple[int, int]
    outputs: list[bytes] = field(default_factory=list, repr=False)
    valid: int = 0
    lost: int = 0
    non_finite: int = 0
    provider: str = ""
    worker: str = ""
    peak_rss: int = 0  # bytes: the worker process's peak resident memory so far
    seconds: float = 0.0  # the block's time on its worker, loading the model included
    error: str = ""  # a DeepStrataError's message, with its kinds (class names, most specific first)
    error_kinds: tuple[str, ...] = ()


def peak_rss() -> int:
    """This process's peak resident memory so far, in bytes: VmHWM on Linux (ru_maxrss carries the parent's over
    across fork and exec), ru_maxrss elsewhere on Unix, the peak working set on Windows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        import resource
    except ImportError:
        import psutil  # a dependency of dask.distributed

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _scratch() -> str:
    """The worker's own folder (Dask's local directory, removed with the worker), or the system's temp."""
    try:
        from distributed import get_worker

        return str(get_worker().local_directory)
    except (ImportError, ValueError):
        return tempfile.gettempdir()


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def worker_model(files: ModelFiles, device: str, threads: int, overrides: CardOverrides | None) -> Model:
    """The model of `files` for this thread, loaded once (kept: the last KEEP of them)."""
    cache: dict[tuple[object, ...], Model] = _CACHE.__dict__.setdefault("models", {})
    key = (files.sha256, device, threads, repr(overrides))
    if key not in cache:
        path = files.write(_scratch())
        while len(cache) >= KEEP:
            cache.pop(next(iter(cache)))
        cache[key] = load_model(path, device, threads, overrides)
    return cache[key]


def run_band(files: ModelFiles, input_path: str, options: RunOptions, rows: tuple[int, int],
             columns: tuple[int, int]) -> BandResult:
    """Rows `rows` x columns `columns` (of the output window) of the run `options` asks, on this worker: its
    outputs' bytes."""
    result = BandResult(rows, columns, worker=_worker_name())
    started = time.perf_counter()
    try:
        model = worker_model(files, options.device, options.threads, options.card)
        with tempfile.TemporaryDirectory(prefix="deepstrata-band-", dir=_scratch()) as folder:
            out = os.path.join(folder, "output.tif")
            conf = os.path.join(folder, "confidence.tif") if options.confidence_path else None
            band = replace(options, rows=rows, columns=columns, cluster=None, cluster_rows=None, output_format="gtiff",
                           confidence_path=conf, labels={}, input_checked=True)  # the client checked and said it
            run = execute(model, input_path, out, band, fill=lambda job: local_fill(job, check=False))
            result.outputs = [Path(p).read_bytes() for p in (run.output_path, run.confidence_path) if p]
        result.valid, result.lost, result.non_finite = run.valid_pixels, run.lost_pixels, run.non_finite
        result.provider = run.provider
    except DeepStrataError as exc:  # said to the client in its own words (its class may not unpickle there)
        result.error, result.error_kinds = str(exc), tuple(c.__name__ for c in type(exc).__mro__)
    result.peak_rss = peak_rss()
    result.seconds = time.perf_counter() - started
    return result
