"""Progress and cancellation: plain callables, so the engine stays free of any GUI or task framework."""
from __future__ import annotations

from typing import Callable

Progress = Callable[[float], None]  # called with the fraction done, 0.0 .. 1.0
Cancelled = Callable[[], bool]  # polled often (every tile, every block row): True stops the work


def no_progress(fraction: float) -> None:
    """The default progress callback: ignores it."""


def never_cancelled() -> bool:
    """The default cancellation check: never."""
    return False


def part(progress: Progress, start: float, span: float) -> Progress:
    """A callback that maps 0..1 of one step onto [start, start + span] of the whole."""
    return lambda fraction: progress(start + span * min(1.0, max(0.0, fraction)))
