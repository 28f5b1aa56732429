"""The connection a cluster run uses: 'local' / 'local:N' starts N worker processes on this machine for the run
(a LocalCluster in a scratch folder, closed and removed afterwards); a scheduler address or a scheduler file
joins a running cluster (left running). dask.distributed is imported here only."""
from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import select
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from ..errors import ClusterError, DependencyError, InputError

log = logging.getLogger(__name__)

DASK_FIX = ("Running on a Dask cluster needs the 'distributed' package (dask.distributed), which this Python does "
            "not have. Inside QGIS install it with the Processing algorithm 'Check and install dependencies' "
            "(DeepStrata toolbar > Check and install dependencies) with 'Install missing packages' and 'Also for "
            "runs on a Dask cluster' ticked; elsewhere run: python -m pip install 'dask[distributed]>=2024.8'. Or "
            "run without a cluster.")
CONNECT_TIMEOUT_S = 20


@dataclass(frozen=True)
class Address:
    """What RunOptions.cluster says: kind 'local' (workers: how many), 'scheduler' or 'file' (target)."""

    kind: str
    target: str = ""
    workers: int = 0

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"a local cluster of {self.workers} worker processes"
        return f"the Dask scheduler {'in ' if self.kind == 'file' else 'at '}'{self.target}'"


def parse(text: str) -> Address:
    """'local', 'local:N', 'tcp://host:8786' (or tls://, ws://, host:port) or a scheduler file (.json)."""
    text = text.strip()
    if text == "local" or text.startswith("local:"):
        count = text.partition(":")[2]
        if count and not (count.isdigit() and int(count) >= 1):
            raise InputError(f"'{text}' is not a local cluster: write local (one worker per core) or local:N with "
                             "N worker processes, e.g. local:4.")
        return Address("local", workers=int(count) if count else max(1, os.cpu_count() or 1))
    if text.endswith(".json"):
        if not os.path.isfile(text):
            raise InputError(f"The scheduler file '{text}' does not exist. Start the scheduler with "
                             "--scheduler-file pointing there first (docs/scale-out.md).")
        return Address("file", text)
    if "://" not in text and text.count(":") != 1:
        raise InputError(f"'{text}' is not a Dask scheduler: give its address (tcp://host:8786), a scheduler file "
                         "(.json), local or local:N.")
    return Address("scheduler", text if "://" in text else f"tcp://{text}")


def distributed() -> Any:
    """The dask.distributed module, or DependencyError saying how to get it."""
    try:
        import distributed as module
    except ImportError as exc:
        raise DependencyError(f"{DASK_FIX} ({exc})") from exc
    return module


def _worker_python() -> None:
    """Worker processes start from this Python's own interpreter. Inside QGIS sys.executable is QGIS itself, or
    whatever 'python3' comes first on the PATH (another Python, whose standard library does not fit this one):
    then multiprocessing is pointed at the interpreter of this Python's installation."""
    def home(path: str) -> str:
        return os.path.realpath(path) if path else ""

    if sys.executable and any(home(sys.executable).startswith(home(prefix) + os.sep)
                              for prefix in (sys.exec_prefix, sys.base_exec_prefix)):
        return
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for folder in (os.path.join(sys.base_exec_prefix, "bin"), sys.base_exec_prefix):
        for name in (f"python{version}", f"python{sys.version_info[0]}", "python.exe", "python"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                log.info("Dask workers start with %s", candidate)
                multiprocessing.set_executable(candidate)
                return


def quiet() -> None:
    """Dask's own progress lines (scheduler started, worker registered, ...) kept out of the run's messages; its
    warnings and errors still show."""
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                 "distributed.worker", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _reachable(target: str) -> None:
    """OSError at once when nothing listens at a tcp:// address (a Dask client would retry until its timeout), and
    TimeoutError when what listens does not greet as a Dask scheduler does (a client would wait for ever)."""
    scheme, _, rest = target.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not port.isdigit():
        return
    with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S) as probe:
        if not select.select([probe], [], [], CONNECT_TIMEOUT_S)[0]:
            raise TimeoutError(f"something listens there but did not answer as a Dask scheduler in "
                               f"{CONNECT_TIMEOUT_S} s")


class Connection:
    """A Dask client on the cluster `address` asks for; close() also stops a local cluster it started."""

    def __init__(self, address: Address) -> None:
        dd = distributed()
        quiet()
        self.address = address
        self.cluster: Any = None
        self.client: Any = None
        self.folder = ""
        try:
            if address.kind == "local":
                _worker_python()
                self.folder = tempfile.mkdtemp(prefix="deepstrata-dask-")
                self.cluster = dd.LocalCluster(n_workers=address.workers, threads_per_worker=1, processes=True,
                                               local_directory=self.folder, silence_logs=logging.ERROR,
                                               dashboard_address=":0", scheduler_kwargs={"dashboard": False})
                self.client = dd.Client(self.cluster)
            elif address.kind == "file":
                self.client = dd.Client(scheduler_file=address.target, timeout=CONNECT_TIMEOUT_S)
            else:
                _reachable(address.target)
                self.client = dd.Client(address.target, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            gc.collect()  # the half-made client's loop, now rather than at exit (where QGIS crashed on it)
            raise ClusterError(f"Could not reach {address.label} ({str(exc).strip() or type(exc).__name__}). Start "
                               "the scheduler and its workers first (docs/scale-out.md), check the address and "
                               "that this machine can reach its port, or run without a cluster.") from exc
        if not self.workers():
            self.close()
            raise ClusterError(f"{address.label[0].upper()}{address.label[1:]} has no workers. Start some "
                               "(dask worker <scheduler address>; docs/scale-out.md) and run again.")

    def workers(self) -> dict[str, dict[str, Any]]:
        """The workers the scheduler knows, by address, with their info (nthreads, resources, ...)."""
        return dict(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        for part in ("client", "cluster"):
            item = getattr(self, part, None)
            if item is not None:
                try:
                    item.close()
                except Exception as exc:  # noqa: BLE001 (a cluster already gone; nothing left to stop)
                    log.debug("closing the %s: %s", part, exc)
                setattr(self, part, None)
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = ""
