"""How a run is cut into tasks: bands of whole output blocks, tall enough that the tiles shared by two bands
(computed by both) stay a small part, small enough that a band's output stays a few tens of MiB on its worker."""
from __future__ import annotations

import math

from ..targets import BLOCK

MAX_BAND_BYTES = 64 * 1024 * 1024  # a task's outputs, uncompressed: its band files stay small whatever the raster
TILES_PER_BAND = 4  # a band is at least this many tile heights tall (each band recomputes its edge tiles)
TASKS_PER_WORKER = 2  # enough tasks that a lost worker's share is small and the workers finish together


def _up(value: int, step: int) -> int:
    return max(step, math.ceil(value / step) * step)


def band_height(height: int, width: int, tile: int, workers: int, rows: int | None = None,
                pixel_bytes: int = 1, block: int = BLOCK) -> int:
    """Rows per task for an output of `height` x `width` with tiles `tile` px tall on `workers` workers, its
    outputs `pixel_bytes` per pixel together; `rows` (the user's) rounded up to whole blocks, or chosen:
    TASKS_PER_WORKER tasks per worker, never under TILES_PER_BAND tiles tall, never over MAX_BAND_BYTES unless the
    tiles ask for it."""
    if rows:
        return _up(int(rows), block)
    least = _up(TILES_PER_BAND * tile, block)
    most = max(least, MAX_BAND_BYTES // max(pixel_bytes, 1) // max(width, 1) // block * block)
    wanted = _up(math.ceil(height / max(1, workers * TASKS_PER_WORKER)), block)
    return min(max(wanted, least), most)


def cut(r0: int, r1: int, step: int) -> list[tuple[int, int]]:
    """Rows [r0, r1) in bands of `step` rows (the last one shorter)."""
    return [(r, min(r + step, r1)) for r in range(r0, r1, step)]


def column_groups(c0: int, c1: int, chunk_width: int) -> list[tuple[int, int]]:
    """Output columns [c0, c1) as the tasks' column ranges: all of them when they span at most two of the plan's
    column chunks, else one chunk each (a chunk is computed on its own in any run, so nothing is recomputed; a
    100,000 px wide raster gives 25 tasks per band of rows instead of one band 100,000 px wide)."""
    if c1 - c0 <= 2 * chunk_width:
        return [(c0, c1)]
    return [(c, min(c + chunk_width, c1)) for c in range(c0, c1, chunk_width)]
