"""Staged outputs: all of a run's files are committed together, or none is.

Every output (and each sidecar: .aux.xml, .qml, the parts of a shapefile) is written under a temporary name
beside its target, ``.deepstrata-<host>-<pid>-<token>.<role><suffix>``, so that committing is a rename on the
same file system. `Staging.commit` moves the earlier files at the targets aside (``backup``), moves the new ones in
and only then deletes the backups; a small journal beside the first target records each step, so a failure (or
a cancel) part-way rolls every target back to its earlier file. After an error, a cancel or a signal the earlier
files are byte-identical and no temporary remains. A process killed hard leaves only files with that prefix,
its host and its process id: the next run that writes into the folder recognises them as a dead process's
(`sweep`), rolls back its interrupted commit from the journal, and removes them.

Use it as a context manager: a clean exit commits, an exception aborts::

    with Staging() as stage:
        path = stage.file("out.tif")      # write here ...
        stage.add("out.tif", path)        # ... and say where it goes
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import CancelledError, OutputError
from .geotiff import check_format
from .progress import Cancelled, never_cancelled
from .provenance import provenance

log = logging.getLogger(__name__)

MARK = ".deepstrata-"
HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"
NAME = re.compile(r"^\.deepstrata-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-(?P<token>[0-9a-f]+)\."
                  r"(?P<role>partial|backup|journal|scratch)")


def temp_name(role: str, suffix: str = "") -> str:
    """A fresh name owned by this process: ``.deepstrata-<host>-<pid>-<token>.<role><suffix>``."""
    return f"{MARK}{HOST}-{os.getpid()}-{secrets.token_hex(4)}.{role}{suffix}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    except OSError as exc:
        log.debug("could not remove %s: %s", path, exc)


@dataclass
class _Step:
    final: str
    staged: str | None  # None: the target is removed (a stale sidecar)
    backup: str | None  # where the earlier file at `final` waits until the commit is complete

    def undo(self) -> None:
        """Put the earlier file back (or remove the new one where there was none)."""
        if self.backup and os.path.lexists(self.backup):
            os.replace(self.backup, self.final)
        elif not self.backup and self.staged and not os.path.lexists(self.staged) and os.path.lexists(self.final):
            os.remove(self.final)


def _recover(journal: str) -> None:
    """Roll back a commit that a dead process left half done, from its journal."""
    try:
        steps = [_Step(**s) for s in json.loads(Path(journal).read_text(encoding="utf-8"))["steps"]]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("DeepStrata: an unreadable journal %s was left by a dead run (%s); removed", journal, exc)
        _remove(journal)
        return
    for step in reversed(steps):
        try:
            step.undo()
        except OSError as exc:
            log.warning("DeepStrata: could not restore %s from an interrupted run: %s", step.final, exc)
        for leftover in (step.staged, step.backup):
            if leftover:
                _remove(leftover)
    _remove(journal)


def sweep(folder: str) -> list[str]:
    """Remove what dead DeepStrata processes of this host left in `folder` (rolling back their interrupted
    commits first); returns the names removed. Files of live processes and of other hosts are left alone."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    dead = [(n, m) for n in names if (m := NAME.match(n)) and m["host"] == HOST and not _alive(int(m["pid"]))]
    for name, match in dead:  # journals first: they need the backups
        if match["role"] == "journal":
            _recover(os.path.join(folder, name))
    for name, _ in dead:
        _remove(os.path.join(folder, name))
    if dead:
        log.info("Removed %d file(s) left in %s by an interrupted DeepStrata run", len(dead), folder)
    return [name for name, _ in dead]


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


class Staging:
    """The outputs of one run: staged beside their targets, committed together by `commit` (or all dropped).

    `parameters` and `model` (name, version, sha256) make the provenance every writer stores in its output's
    metadata (`metadata()`, see provenance.py); `is_cancelled` is polled between the steps of the commit (a cancel
    there rolls back). `output_format` ('cog' or 'gtiff', geotiff.FORMATS) is how the raster writers lay out their
    files: a COG is made from the staged tiled file at the start of the commit (see `at_commit`)."""

    def __init__(self, is_cancelled: Cancelled | None = None, parameters: Mapping[str, Any] | None = None,
                 output_format: str = "cog") -> None:
        self.is_cancelled = is_cancelled or never_cancelled
        self.parameters: dict[str, Any] = dict(parameters or {})
        self.model: tuple[str, str, str] = ("", "", "")
        self.output_format = check_format(output_format)
        self._steps: dict[str, str | None] = {}  # final -> staged, in the order added
        self._pending: dict[str, Callable[[], None]] = {}  # final -> work on its staged file at the commit
        self._temps: list[str] = []
        self._swept: set[str] = set()
        self.committed = False

    def metadata(self) -> dict[str, str]:
        """The provenance items for an output's metadata."""
        return provenance(*self.model, parameters=self.parameters)

    # ------------------------------------------------------------------ staging
    def _prepare(self, final: str) -> str:
        folder = _folder(final)
        if folder not in self._swept:
            self._swept.add(folder)
            sweep(folder)
        return folder

    def file(self, final: str, suffix: str | None = None) -> str:
        """A new temporary path beside `final` (not created); removed on abort unless committed."""
        folder = self._prepare(final)
        path = os.path.join(folder, temp_name("partial", Path(final).suffix if suffix is None else suffix))
        self._temps.append(path)
        return path

    def folder(self, near: str, role: str = "partial") -> str:
        """A new temporary folder beside `near` (created): for outputs of several files, or scratch work."""
        path = os.path.join(self._prepare(near), temp_name(role))
        try:
            os.mkdir(path)
        except OSError as exc:
            raise OutputError(f"Cannot create a working folder beside '{near}' ({exc.strerror}). Check that "
                              "the output folder is writable and has free space.") from exc
        self._temps.append(path)
        return path

    def add(self, final: str, staged: str | None) -> None:
        """At commit, move `staged` to `final` (None: remove the file at `final`). Work still to do on an earlier
        staged file of `final` (`at_commit`) is dropped with it."""
        self._pending.pop(os.path.abspath(final), None)
        self._steps.pop(os.path.abspath(final), None)
        self._steps[os.path.abspath(final)] = staged

    def restage(self, final: str, staged: str | None) -> None:
        """Like `add`, keeping the place `final` has in the commit's order (for `at_commit` work)."""
        key = os.path.abspath(final)
        if key in self._steps:
            self._steps[key] = staged
        else:
            self.add(final, staged)

    def at_commit(self, final: str, work: Callable[[], None]) -> None:
        """Run `work` at the start of the commit, before any file moves (a COG made from the staged file of
        `final`, which `work` stages in its place). Only the last file staged for `final` gets its work: a file
        staged again before the commit (a median filter's pass) is not worked on twice. A failure or a cancel in
        `work` drops every staged file and leaves every target as it was."""
        self._pending[os.path.abspath(final)] = work

    def current(self, final: str) -> str:
        """Where the content of `final` is now: its staged file until the commit, else `final` itself."""
        return self._steps.get(os.path.abspath(final)) or final

    @property
    def targets(self) -> list[str]:
        return list(self._steps)

    @property
    def temporaries(self) -> list[str]:
        """The files and folders staged so far (removed unless committed)."""
        return list(self._temps)

    # ------------------------------------------------------------------ commit / abort
    def commit(self) -> None:
        """Finish the staged files (`at_commit`), then move each to its target; on any failure or a cancel every
        target is left as it was and nothing staged remains."""
        try:
            if self.is_cancelled():
                raise CancelledError()
            while self._pending:
                work = self._pending.pop(next(iter(self._pending)))
                work()
                if self.is_cancelled():
                    raise CancelledError()
        except BaseException:
            self.abort()
            raise
        steps = [_Step(final, staged, os.path.join(_folder(final), temp_name("backup"))
                       if os.path.lexists(final) else None) for final, staged in self._steps.items()]
        journal = os.path.join(_folder(steps[0].final), temp_name("journal", ".json")) if steps else ""
        done: list[_Step] = []
        try:
            if steps:
                Path(journal).write_text(json.dumps({"steps": [s.__dict__ for s in steps]}), encoding="utf-8")
            for step in steps:
                if self.is_cancelled():
                    raise CancelledError()
                done.append(step)
                if step.backup:
                    os.replace(step.final, step.backup)
                if step.staged:
                    os.replace(step.staged, step.final)
        except BaseException as exc:
            failures = self._undo(done)
            _remove(journal)
            self.abort()
            if isinstance(exc, OSError):
                raise _commit_error(exc, done[-1].final if done else journal, failures) from exc
            raise
        for step in steps:
            if step.backup:
                _remove(step.backup)
        _remove(journal)
        self.committed = True
        self._drop_temps()

    @staticmethod
    def _undo(done: list[_Step]) -> list[str]:
        failures = []
        for step in reversed(done):
            try:
                step.undo()
            except OSError as exc:
                failures.append(f"{step.final} ({exc.strerror}; the earlier file is at {step.backup})")
        return failures

    def abort(self) -> None:
        """Drop every staged file and scratch folder; the targets are not touched."""
        self._drop_temps()
        self._steps.clear()
        self._pending.clear()

    def _drop_temps(self) -> None:
        for path in reversed(self._temps):
            _remove(path)
            _remove(path + ".aux.xml")
        self._temps.clear()

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def _commit_error(exc: OSError, final: str, failures: list[str]) -> OutputError:
    """What a failed commit tells the user: the file that could not be replaced, why, and how to fix it."""
    kept = "every earlier output is unchanged" if not failures else \
        f"these could not be restored: {', '.join(failures)}"
    if _locked(exc) and os.path.lexists(final):
        return OutputError(f"Cannot replace '{final}': it is open in another program, or not writable "
                           f"({exc.strerror}); {kept}. Close it in the program that has it open (on Windows a file "
                           "open elsewhere cannot be replaced) and run again, or write the output to another file.")
    return OutputError(f"Could not move the outputs into place ('{final}': {exc.strerror}); {kept}. Check the "
                       "folder's permissions and free space.")


def _locked(exc: OSError) -> bool:
    """A file in use (Windows: sharing violation, lock violation, access denied) or one that may not be replaced."""
    return isinstance(exc, PermissionError) or getattr(exc, "winerror", None) in (5, 32, 33)


@contextmanager
def staged(staging: Staging | None, is_cancelled: Cancelled | None = None,
           output_format: str = "cog") -> Iterator[Staging]:
    """The staging a step writes into: the caller's (the caller commits it; its output format rules), or its own
    in `output_format`, committed on a clean exit of the block and aborted on an exception."""
    if staging is not None:
        yield staging
        return
    with Staging(is_cancelled, output_format=output_format) as own:
        yield own
