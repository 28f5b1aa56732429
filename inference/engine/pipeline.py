"""The compute path of a run, without GDAL: strips to batches (reader thread), batches through the model, tiles
blended into a strip, finished rows through the head to the outputs' writers.

`run_model` (run.py) drives it over a raster into staged GeoTIFFs; `run_array` drives it over an array in memory
and returns the arrays run_model would write. Both take the same plan, tiles, batches, blending and head, so
their outputs are equal pixel for pixel. Nothing here keeps global state: several runs may go at once, each with
its own model.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

import numpy as np

from .batches import Batch, Outputs, Runner, tile_rows
from .class_median import median_block
from .decision import NONE
from .errors import CancelledError, InputError, ModelError
from .heads import Head, make_head
from .model import CLASS_TASKS, Model, load_model
from .options import RunOptions
from .plan import Plan, make_plan
from .progress import Cancelled, Progress, doing, never_cancelled, no_progress
from .scale import terrain_scale
from .stream import Prefetcher, StripAccumulator
from .strips import ArraySource, PixelSource, input_rescaling
from .targets import BLOCK, ArrayWriter, BlockRowBuffer, RowWriter
from .tiling import TileGrid
from .windows import Window

log = logging.getLogger(__name__)

MOSTLY_NON_FINITE = 0.5  # a run where more of the valid pixels than this got NaN or Inf fails


class Counts:
    """Valid pixels, and those that got no finite value from the model (they become nodata)."""

    def __init__(self, valid: int = 0, lost: int = 0, non_finite: int = 0) -> None:
        self.valid = valid
        self.lost = lost
        self.non_finite = non_finite  # NaN or infinite values the model returned (Runner.non_finite)

    def add(self, other: "Counts") -> None:
        """Another part's counts (a band of rows run elsewhere) added to these."""
        self.valid += other.valid
        self.lost += other.lost
        self.non_finite += other.non_finite


def tile_count(plan: Plan, raster: Window, rows: tuple[int, int] | None = None,
               columns: tuple[int, int] | None = None) -> int:
    """The tiles of a run over `raster` (the source's whole window), every chunk together; with `rows`, those of
    that band of rows; with `columns`, those of the column chunks there."""
    total = 0
    for chunk in chunks_in(plan, columns):
        grid = plan.grid(plan.processing_window(chunk, raster))
        total += len(grid.cols) * len(band_tile_rows(grid, plan.processing_window(chunk, raster), rows))
    return total


def band_tile_rows(grid: TileGrid, window: Window, rows: tuple[int, int] | None) -> list[int]:
    """The tile rows of `grid` (over `window`) whose weights reach raster rows `rows` [r0, r1): all without.

    A band computed from these alone gets every contribution its rows get in the whole run, added in the same
    order, so a run cut into bands of rows writes the same values as one run (issue #15: blocks for a cluster)."""
    if rows is None:
        return list(grid.rows)
    r0, r1 = rows[0] - window.y, rows[1] - window.y
    chosen = []
    for y in grid.rows:
        p0, p1 = grid.row_reach(y)
        if y + p1 > r0 and y + p0 < r1:
            chosen.append(y)
    return chosen


def band_rows(rows: tuple[int, int] | None, output: Window, median_filter: int,
              what: str) -> tuple[int, int] | None:
    """Rows (r0, r1) of the output window (RunOptions.rows, run_array's rows) as raster rows, checked; None for
    the whole output. `what` names the output in the message."""
    if rows is None:
        return None
    r0, r1 = int(rows[0]), int(rows[1])
    if not 0 <= r0 < r1 <= output.h:
        raise InputError(f"Rows {r0}-{r1} are not a band of {what}'s {output.h} rows.")
    _whole_result(median_filter)
    return output.y + r0, output.y + r1


def band_columns(columns: tuple[int, int] | None, plan: Plan, median_filter: int,
                 what: str) -> tuple[int, int] | None:
    """Columns (c0, c1) of the output window (RunOptions.columns), checked: whole column chunks of the plan (each
    chunk is computed on its own in any run, so a part made of whole chunks equals those columns of the whole
    run); None for all of them."""
    if columns is None:
        return None
    c0, c1, width, step = int(columns[0]), int(columns[1]), plan.output.w, plan.chunk_width
    if not 0 <= c0 < c1 <= width:
        raise InputError(f"Columns {c0}-{c1} are not a part of {what}'s {width} columns.")
    if c0 % step or (c1 % step and c1 != width):
        raise InputError(f"Columns {c0}-{c1} do not fall on the run's column chunks of {step} px: start and end "
                         f"at multiples of {step}, or at the last column ({width}).")
    _whole_result(median_filter)
    return c0, c1


def _whole_result(median_filter: int) -> None:
    if median_filter > 1:
        raise InputError("A model with a median filter needs its whole result: run it without rows or columns, or "
                         "filter the assembled parts afterwards.")


def chunks_in(plan: Plan, columns: tuple[int, int] | None) -> list[Window]:
    """The plan's column chunks, or those inside output columns `columns`."""
    chunks = plan.chunks()
    return chunks if columns is None else [c for c in chunks if columns[0] <= c.x - plan.output.x < columns[1]]


def run_chunks(source: PixelSource, plan: Plan, runner: Runner, head: Head, writers: Sequence[RowWriter],
               on_progress: Progress, is_cancelled: Cancelled, warn: Callable[[str], None],
               block: int = BLOCK, rows: tuple[int, int] | None = None, check: bool = True,
               columns: tuple[int, int] | None = None) -> Counts:
    """Every column chunk of the plan's output into `writers` (one per target, whole rows of `block` at a time);
    progress from the tile count, cancellation polled on every batch. With `rows` (raster rows [r0, r1) inside
    the output), only that band, into writers of its height; with `columns` (band_columns), only those column
    chunks, into writers of their width. Returns the counts of valid and lost pixels, after
    the non-finite check (check_finite) unless `check` is False (a band whose caller checks the whole run)."""
    raster = Window(0, 0, source.width, source.height)
    total, done = tile_count(plan, raster, rows, columns), [0]

    def tick(n: int) -> None:
        done[0] += n
        on_progress(min(done[0] / total, 1.0) if total else 1.0)
        doing(f"Tile {min(done[0], total)} of {total}")

    counts = Counts()
    left = plan.output.x + (columns[0] if columns else 0)  # the writers' first column
    for chunk in chunks_in(plan, columns):
        buffer = BlockRowBuffer(writers, chunk.x - left, chunk.w, block)
        process_chunk(source, plan, chunk, runner, head, buffer, tick, is_cancelled, counts, rows)
    counts.non_finite = runner.non_finite
    if check:
        check_finite(runner.model.path, counts, warn)
    return counts


def process_chunk(source: PixelSource, plan: Plan, chunk: Window, runner: Runner, head: Head, rows: BlockRowBuffer,
                  tick: Callable[[int], None], is_cancelled: Cancelled, counts: Counts,
                  band: tuple[int, int] | None = None) -> None:
    """One column chunk of the output (or its raster rows `band` [r0, r1)): read, run, blend and finish it into
    `rows`."""
    window = plan.processing_window(chunk, Window(0, 0, source.width, source.height))
    grid = plan.grid(window)
    output = plan.output
    if band is not None:
        found = Window(output.x, band[0], output.w, band[1] - band[0]).intersect(output)
        if found is None:
            raise InputError(f"Rows {band[0]}-{band[1]} lie outside the output's rows {output.y}-{output.y1}.")
        output = found
    tile_ys = band_tile_rows(grid, window, band)
    acc = StripAccumulator(head.channels, grid.tile_h, window.w, decided=runner.rule is not None)
    acc.top = tile_ys[0] if tile_ys else 0
    reader = Prefetcher(lambda: tile_rows(source, plan, window, grid, runner.model, is_cancelled, tile_ys))
    last = output.y1 - window.y  # window row after the last one written
    try:
        for item in reader:
            if is_cancelled():
                raise CancelledError()
            if isinstance(item, Batch):
                out = runner(item)
                for k, tile in enumerate(item.tiles):
                    accumulate(acc, grid, head, out, k, tile)
                tick(len(item.tiles))
                continue
            acc.set_valid(item.valid, item.y)
            tick(item.skipped)
            if is_cancelled():
                raise CancelledError()
            until = grid.row_end(item.y)
            if band is not None and item.y == tile_ys[-1]:  # later tiles weigh nothing in the band: it is final
                until = max(until, min(last, window.h))
            emit(head, acc.finished(until), window.y + acc.top, window, chunk, output, rows, counts)
            acc.advance(until)
        if is_cancelled() or acc.top < min(last, window.h):  # the reader stops early on a cancel
            raise CancelledError()
        rows.flush()
    finally:
        reader.close()


def accumulate(acc: StripAccumulator, grid: TileGrid, head: Head, out: Outputs, k: int, tile: Window) -> None:
    """Tile `k` of a batch into the strip: decided classes where it alone covers the pixels, weighted values
    elsewhere."""
    weights = grid.weights(tile)
    if out.values is not None:
        if out.finite is not None and not out.finite[k].all():
            weights = weights * out.finite[k]
        acc.add(out.values[k], weights, tile.x, tile.y)
        return
    assert out.raw is not None and out.index is not None
    alone, rest = grid.regions(tile)
    if alone is None:
        acc.add(head.prepare([out.raw[k:k + 1]], None)[0], weights, tile.x, tile.y)
        return
    y0, y1, x0, x1 = alone
    acc.decide(out.index[k, y0:y1, x0:x1], tile.x + x0, tile.y + y0)
    for y0, y1, x0, x1 in rest:
        values = head.prepare([out.raw[k:k + 1, :, y0:y1, x0:x1]], None)[0]
        acc.add(values, weights[y0:y1, x0:x1], tile.x + x0, tile.y + y0)


def emit(head: Head, strip: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], row: int,
         window: Window, chunk: Window, output: Window, rows: BlockRowBuffer, counts: Counts) -> None:
    """Hand the finished rows that fall inside the output window to `rows`."""
    sums, weights, valid, index = strip
    r0, r1 = max(row, output.y), min(row + valid.shape[0], output.y1)
    if r1 <= r0:
        return
    c0 = chunk.x - window.x
    inside, cols = slice(r0 - row, r1 - row), slice(c0, c0 + chunk.w)
    wanted, w = valid[inside, cols], weights[inside, cols]
    decided = None if index is None else index[inside, cols]
    reached = w > 0 if decided is None else (w > 0) | (decided != NONE)
    covered = wanted & reached  # a valid pixel no finite tile value reached is nodata
    counts.valid += int(np.count_nonzero(wanted))
    counts.lost += int(np.count_nonzero(wanted)) - int(np.count_nonzero(covered))
    rows.push(head.finish(sums[:, inside, cols], w, covered, len(rows.writers), decided))


def check_finite(model_path: str, counts: Counts, warn: Callable[[str], None]) -> None:
    """Non-finite model output: a warning that counts it, or a failure that blames the model when it is most."""
    if not counts.lost and not counts.non_finite:
        return
    share = counts.lost / counts.valid if counts.valid else 1.0
    name = os.path.basename(model_path)
    if share > MOSTLY_NON_FINITE:
        raise ModelError(f"The model '{name}' returned NaN or infinite values for {100 * share:.1f} % of the valid "
                         f"pixels ({counts.lost:,} of {counts.valid:,}), so there is nothing to write. The fault is "
                         "in the model, not the raster: check its export (a division by zero, a log of 0, float16 "
                         "overflow) on a sample in Python, or ask its author.")
    warn(f"The model '{name}' returned {counts.non_finite:,} NaN or infinite values; {counts.lost:,} pixels "
         f"({100 * share:.2f} % of the valid ones) got no finite value and are written as nodata.")


def set_scale(model: Model, sizes: tuple[float, float] | None, search_m: float | None, name: str) -> str:
    """A terrain model's scale input for cells of `sizes` (x, y metres; see scale.py), set on `model`; '' for
    other models. `name` says which raster, in messages."""
    spec = model.card.input.scale
    if spec is None:
        return ""
    scale = terrain_scale(spec, sizes, search_m, name)
    if scale.coarse_cell_m:
        raise InputError(f"A search distance of {scale.search_m:g} m is {scale.cells:.3g} cells of {name}, more "
                         f"than the model reaches ({spec.max_cells:g}). Run it through the workflows (or "
                         "run_at_model_resolution), which average the DEM to coarser cells first.")
    model.scale = scale.feed()
    return scale.describe()


def _select_bands(array: np.ndarray, bands: Sequence[int] | None, model: Model) -> np.ndarray:
    """The array's bands that feed the model, in model channel order: `bands` (1-based), or all of them."""
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise InputError(f"An array of shape {array.shape} is not a raster: give (bands, height, width).")
    count = array.shape[0]
    if bands:
        if not all(1 <= int(b) <= count for b in bands):
            raise InputError(f"Bands {list(bands)} do not all exist: the array has {count} (1-{count}).")
        array = array[[int(b) - 1 for b in bands]]
    if array.shape[0] != model.channels:
        raise InputError(f"The model takes {model.channels} band(s) but the array gives {array.shape[0]}. Choose "
                         "the bands that feed it (RunOptions.bands, 1-based, in the model's order).")
    return array


def run_array(model: Model | str | os.PathLike[str], array: np.ndarray, options: RunOptions | None = None, *,
              mask: np.ndarray | None = None, nodata: float | None = None, confidence: bool = False,
              cell_size: tuple[float, float] | None = None, on_progress: Progress | None = None,
              is_cancelled: Cancelled | None = None, rows: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Run `model` over `array` (bands, height, width) in memory: the same plan, tiles, reader thread, batches,
    blending and head as run_model, and the arrays run_model would write (bands, height, width) each, nodata as
    it writes it: the class map (and its confidence with `confidence`), the values or the scores.

    Valid pixels: where `mask` (height, width) is non-zero, the values differ from `nodata` and, for float arrays,
    are finite. `cell_size`: the ground cell sides in metres (x, y), which a terrain model needs for its scale.
    `options` as run_model's, but the whole array is the extent (no extent, no valid_mask path, no destinations).
    `rows` (r0, r1): only those rows of the result, equal to the same rows of the whole run (the band reads the
    rows its tiles need around it); a model with a median filter needs the whole result (the filter reaches
    across the band's edges).
    """
    options = options or RunOptions()
    if options.extent or options.valid_mask:
        raise InputError("run_array runs over the whole array: slice the array instead of an extent, and give the "
                         "validity as mask= instead of valid_mask.")
    if not isinstance(model, Model):
        model = load_model(model, options.device, options.threads, options.card)
    card = model.card
    data = _select_bands(np.asarray(array), options.bands, model)
    if mask is not None and np.shape(mask) != data.shape[1:]:
        raise InputError(f"The mask is {np.shape(mask)} but the array's pixels are {data.shape[1:]}.")
    scale, offset = input_rescaling(options.input_scale, options.input_offset, card) or (None, None)
    source = ArraySource(data, None if mask is None else np.asarray(mask), nodata, scale, offset)
    set_scale(model, cell_size, options.search_m, "the array")
    output = Window(0, 0, source.width, source.height)
    rows = band_rows(rows, output, card.output.median_filter, "the array")
    plan = make_plan(model, output, options, log.warning)
    head = make_head(card, plan.output_channels)
    targets = head.targets("output", "confidence" if confidence and card.task in CLASS_TASKS else None)
    height = output.h if rows is None else rows[1] - rows[0]
    writers = [ArrayWriter(t, output.w, height) for t in targets]
    runner = Runner(model, plan, head, decide=len(targets) == 1)
    progress = on_progress or no_progress
    # no block rows to fill in memory: each finished row is written as it comes
    run_chunks(source, plan, runner, head, writers, progress, is_cancelled or never_cancelled, log.warning, block=1,
               rows=rows)
    arrays = [w.array for w in writers]
    size = card.output.median_filter
    if size > 1:
        arrays[0] = np.stack([median_block(band, targets[0].nodata, size) for band in arrays[0]])
    progress(1.0)
    return arrays
