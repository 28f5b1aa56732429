"""Runs pip as a subprocess: its output line by line to a callback, a progress estimate, and cancel."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Callable

from .errors import InstallCancelled, InstallFailed
from .pip import Plan, classify, manual_command

# pip's phases, in order, with the progress fraction reached when the line appears
_PHASES = (("Looking in", 0.02), ("Collecting", 0.05), ("Downloading", 0.1), ("Processing", 0.1),
           ("Installing collected packages", 0.85), ("Successfully installed", 1.0))


def progress_of(line: str, current: float) -> float:
    """A monotone progress estimate from pip's phase lines (downloads move it towards 0.8)."""
    for prefix, fraction in _PHASES:
        if line.lstrip().startswith(prefix):
            if prefix in ("Collecting", "Downloading", "Processing"):
                return max(current, min(0.8, max(fraction, current + 0.05)))
            return max(current, fraction)
    return current


def run_pip(plan: Plan, on_line: Callable[[str], None] = lambda line: None,
            on_progress: Callable[[float], None] = lambda fraction: None,
            is_cancelled: Callable[[], bool] = lambda: False, timeout_s: float = 1800.0) -> str:
    """Run `plan` and return pip's output; InstallFailed (with advice and the manual command) or InstallCancelled.

    The callbacks are called from the calling thread; `is_cancelled` is polled a few times a second.
    """
    command = plan.command()
    on_line("$ " + plan.shell_command())
    env = {**os.environ, "PYTHONNOUSERSITE": "1", "PIP_NO_INPUT": "1", "PIP_PROGRESS_BAR": "off",
           "PYTHONIOENCODING": "utf-8"}
    env.pop("PYTHONPATH", None)  # QGIS's own paths would make pip see QGIS's packages as its own
    os.makedirs(plan.target, exist_ok=True)
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   encoding="utf-8", errors="replace", env=env, stdin=subprocess.DEVNULL,
                                   creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # no console on Windows
    except OSError as exc:
        raise InstallFailed(f"Could not start {plan.python}: {exc}.\n{manual_command(plan)}", "no_python",
                            plan.shell_command()) from exc
    lines: list[str] = []
    reader = threading.Thread(target=_read, args=(process, lines), daemon=True)
    reader.start()
    seen, progress, started = 0, 0.0, time.monotonic()
    while True:
        finished = process.poll() is not None and not reader.is_alive()
        for line in lines[seen:]:
            on_line(line)
            progress = progress_of(line, progress)
            on_progress(progress)
        seen = len(lines)
        if finished:
            break
        if is_cancelled() or time.monotonic() - started > timeout_s:
            _stop(process)
            reader.join(5)
            if is_cancelled():
                raise InstallCancelled("Installation cancelled; nothing QGIS uses was changed (the private "
                                       f"folder {plan.target} may hold a partial copy, replaced by the next install).")
            raise InstallFailed(f"pip took longer than {timeout_s:.0f} s and was stopped.\n{manual_command(plan)}",
                                "timeout", plan.shell_command())
        time.sleep(0.1)
    output = "\n".join(lines)
    if process.returncode != 0:
        failure = classify(output, plan.python_version)
        raise InstallFailed(f"{failure.advice}\n{manual_command(plan)}", failure.kind, plan.shell_command())
    on_progress(1.0)
    return output


def _read(process: subprocess.Popen, lines: list[str]) -> None:
    """Append pip's output lines as they come (list.append is atomic; the caller reads by index)."""
    assert process.stdout is not None
    for line in iter(process.stdout.readline, ""):
        lines.append(line.rstrip("\n"))


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
