"""Progress, cancellation and what a run tells its user as it goes: plain callables, so the engine stays free of
any GUI or task framework.

`note` says a line the user needs before the wait (the scale, any resampling, the tile count; warnings, such as
an input outside the model's domain, go through logging); `doing` says what the run does now ("Tile 37 of 120",
"Writing polygons"), for a progress bar's text. Both go to the listener set with `telling` in the thread that
runs the work (Processing's log and progress text, the command line's stderr); notes are logged (INFO) too.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

Progress = Callable[[float], None]  # called with the fraction done, 0.0 .. 1.0
Cancelled = Callable[[], bool]  # polled often (every tile, every block row): True stops the work
Listener = Callable[[str, str], None]  # called with ("note", a line for the log) or ("doing", what it does now)

_listener: ContextVar[Listener | None] = ContextVar("deepstrata_listener", default=None)


def no_progress(fraction: float) -> None:
    """The default progress callback: ignores it."""


def never_cancelled() -> bool:
    """The default cancellation check: never."""
    return False


def part(progress: Progress, start: float, span: float) -> Progress:
    """A callback that maps 0..1 of one step onto [start, start + span] of the whole."""
    return lambda fraction: progress(start + span * min(1.0, max(0.0, fraction)))


@contextmanager
def telling(listener: Listener) -> Iterator[None]:
    """Within the block, the notes and stages of the work done in this thread go to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def note(logger: logging.Logger, message: str) -> None:
    """A line the user needs before the wait: logged by `logger` (INFO) and told to the listener."""
    logger.info("%s", message)
    listener = _listener.get()
    if listener is not None:
        listener("note", message)


def doing(text: str) -> None:
    """What the work does now ("Reading 'dem.tif'", "Tile 37 of 120"), told to the listener only."""
    listener = _listener.get()
    if listener is not None:
        listener("doing", text)
