"""The CLI in a subprocess, and the CLI paused at a chosen moment of a run so that a test can signal it there.

``python -m ds_testing.cli_runs POINT -- run ...`` runs the CLI (``deepstrata.inference.cli.main``) with a pause
at POINT (`PAUSE_POINTS`), where it prints `PAUSED` on stderr and waits for a signal; `PausedCli` drives it.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from ds_testing.faults import TEMP_NAME

PAUSED = "FAULT-PAUSED"
PAUSE_POINTS = ("writer", "tile:N", "cog:N", "commit:N")  # see _install


def env() -> dict[str, str]:
    """The environment of a CLI subprocess: this test session's import path (deepstrata and ds_testing)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def cli(*args: Any, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """python -m deepstrata.inference ARGS..."""
    return subprocess.run([sys.executable, "-m", "deepstrata.inference", *map(str, args)], capture_output=True,
                          text=True, env=env(), cwd=cwd, timeout=timeout)


class PausedCli:
    """The CLI in a subprocess that pauses at `point` (see _install): `wait_paused()` returns once it is there;
    then signal it (`send`) and `finish()`."""

    def __init__(self, point: str, *args: Any, cwd: Path | None = None) -> None:
        command = [sys.executable, "-m", "ds_testing.cli_runs", point, "--", *map(str, args)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                                     cwd=cwd)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_paused(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"the CLI did not reach its pause in {timeout} s:\n{''.join(self.stderr)}") \
                    from None
            if line is None:
                self.proc.wait()
                raise AssertionError(f"the CLI ended (status {self.proc.returncode}) before its pause:\n"
                                     f"{''.join(self.stderr)}")
            self.stderr.append(line)
            if line.startswith(PAUSED):
                return

    def send(self, number: int) -> None:
        self.proc.send_signal(number)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """(exit status, stdout, stderr without the pause line)."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout)
        self._reader.join(timeout)
        while True:
            line = self.lines.get_nowait() if not self.lines.empty() else None
            if line is None:
                break
            self.stderr.append(line)
        return self.proc.returncode, out, "".join(s for s in self.stderr if not s.startswith(PAUSED))

    @property
    def pid(self) -> int:
        return self.proc.pid


def _pause(where: str) -> None:
    """Say so on stderr, then wait (at most a minute) until the CLI's signal handler has seen a signal."""
    sys.stderr.write(f"{PAUSED} {where} pid={os.getpid()}\n")
    sys.stderr.flush()
    handler = signal.getsignal(signal.SIGINT)
    event = getattr(getattr(handler, "__self__", None), "event", None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (event is not None and event.is_set()):
        time.sleep(0.01)


def _install(point: str) -> None:
    """Pause the CLI at `point`: 'writer' (an output file is staged, no tile has run), 'tile:N' (when the model
    is about to run its Nth batch), 'cog:N' (GDAL's Nth progress report while the commit makes the COGs),
    'commit:N' (the commit has moved N staged files into place)."""
    from deepstrata.inference.engine import batches, staging, writer

    kind, _, number = point.partition(":")
    count = [0]
    if kind == "writer":
        init = writer.RasterWriter.__init__

        def paused_init(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            count[0] += 1
            if count[0] == 1:
                _pause(point)

        writer.RasterWriter.__init__ = paused_init  # type: ignore[method-assign]
    elif kind == "tile":
        call = batches.Runner.__call__

        def paused_call(self: Any, batch: Any) -> Any:
            count[0] += 1
            if count[0] == int(number):
                _pause(point)
            return call(self, batch)

        batches.Runner.__call__ = paused_call  # type: ignore[method-assign]
    elif kind == "cog":
        options = writer.gdal.TranslateOptions

        def paused_options(*args: Any, callback: Any = None, **kwargs: Any) -> Any:
            def report(*progress: Any) -> Any:
                count[0] += 1
                if count[0] == int(number):
                    _pause(point)
                return callback(*progress)

            return options(*args, callback=report, **kwargs)

        writer.gdal.TranslateOptions = paused_options
    elif kind == "commit":
        class PausingOs:
            def __getattr__(self, name: str) -> Any:
                return getattr(os, name)

            @staticmethod
            def replace(src: str, dst: str) -> None:
                os.replace(src, dst)
                match = TEMP_NAME.match(os.path.basename(src))
                if match and match["role"] == "partial":
                    count[0] += 1
                    if count[0] == int(number):
                        _pause(point)

        staging.os = PausingOs()  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown pause point {point!r}: one of {', '.join(PAUSE_POINTS)}")


def cli_args(b: Any, output: str | Path, model: str = "seg", source: str | Path | None = None,
             *extra: object) -> list:
    """The arguments of `run` on a catalogue bench: a model of the bench (by name) or a path, the DEM unless
    `source`, and `output`."""
    chosen = b.names[model] if model in b.names else model
    return ["--model", chosen, "--input", source or b.names["dem"], "--output", output, *extra]


def main(argv: Sequence[str]) -> int:
    point, separator, *rest = argv
    if separator != "--":
        raise SystemExit("usage: python -m ds_testing.cli_runs POINT -- CLI ARGUMENTS...")
    _install(point)
    from deepstrata.inference.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
