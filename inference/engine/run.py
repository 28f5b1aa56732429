"""run_model: stream a model over a raster, tile by tile, into staged GeoTIFF outputs."""
from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import ExitStack
from typing import Any, Callable

import numpy as np

from .batches import Batch, Outputs, Runner, tile_rows
from .decision import NONE
from .destinations import Destination, check_destinations
from .errors import CancelledError, InputError, ModelError
from .georef import ground_pixel_size, mean_pixel_size
from .heads import Head, make_head
from .median import filter_raster
from .model import CLASS_TASKS, Model, load_model
from .options import RunOptions, RunResult
from .plan import Plan, make_plan
from .progress import Cancelled, Progress, never_cancelled, no_progress
from .raster import (RasterSource, extent_to_window, input_reads, input_rescaling, map_bands, open_mask,
                     open_raster)
from .scale import terrain_scale
from .staging import Staging, staged
from .stream import Prefetcher, StripAccumulator
from .tiling import TileGrid
from .windows import Window, transform
from .writer import BlockRowBuffer, RasterTarget, RasterWriter, human_size

log = logging.getLogger(__name__)

MOSTLY_NON_FINITE = 0.5  # a run where more of the valid pixels than this got NaN or Inf fails


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    log.warning(message)


def _input_warnings(source: RasterSource, model: Model, warnings: list[str]) -> None:
    name = os.path.basename(source.path)
    if not source.projection:
        _warn(warnings, f"'{name}' has no CRS: the output is written without one. Assign the layer's CRS "
                        "(Layer Properties > Source, or gdal_edit.py -a_srs) to georeference it.")
    trained = model.card.input.pixel_size_m
    actual = mean_pixel_size(source.dataset)
    if trained and actual and not 0.5 <= actual / trained <= 2.0:
        _warn(warnings, f"'{name}' has about {actual:.3g} m pixels but the model was trained at {trained:g} m; "
                        "results may be poor. Resample the raster to the model's resolution first.")


def _space_warning(targets: list[RasterTarget], output: Window, warnings: list[str]) -> None:
    """Warn before the work when the outputs, uncompressed, would not fit on their disk."""
    need = sum(output.w * output.h * t.bands * np.dtype(t.dtype).itemsize for t in targets)
    folder = os.path.dirname(os.path.abspath(targets[0].path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need:
        _warn(warnings, f"Only {human_size(free)} is free in '{folder}' and the outputs take up to {human_size(need)} "
                        "uncompressed. Compression usually makes them much smaller, but the run may stop for lack "
                        "of space; if it does, earlier files stay unchanged.")


class _Counts:
    """Valid pixels, and those that got no finite value from the model (they become nodata)."""

    def __init__(self) -> None:
        self.valid = 0
        self.lost = 0


def _process_chunk(source: RasterSource, plan: Plan, chunk: Window, runner: Runner, head: Head,
                   buffer: BlockRowBuffer, tick: Callable[[int], None], is_cancelled: Cancelled,
                   counts: _Counts) -> None:
    window = plan.processing_window(chunk, source.window)
    grid = plan.grid(window)
    acc = StripAccumulator(head.channels, grid.tile_h, window.w, decided=runner.rule is not None)
    reader = Prefetcher(lambda: tile_rows(source, plan, window, grid, runner.model, is_cancelled))
    try:
        for item in reader:
            if is_cancelled():
                raise CancelledError()
            if isinstance(item, Batch):
                out = runner(item)
                for k, tile in enumerate(item.tiles):
                    _accumulate(acc, grid, head, out, k, tile)
                tick(len(item.tiles))
                continue
            acc.set_valid(item.valid, item.y)
            tick(item.skipped)
            if is_cancelled():
                raise CancelledError()
            until = grid.row_end(item.y)
            _emit(head, acc.finished(until), window.y + acc.top, window, chunk, plan.output, buffer, counts)
            acc.advance(until)
        if is_cancelled() or acc.top < window.h:  # the reader stops early on a cancel
            raise CancelledError()
        buffer.flush()
    finally:
        reader.close()


def _accumulate(acc: StripAccumulator, grid: TileGrid, head: Head, out: Outputs, k: int, tile: Window) -> None:
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


def _emit(head: Head, strip: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], row: int,
          window: Window, chunk: Window, output: Window, buffer: BlockRowBuffer, counts: _Counts) -> None:
    """Hand the finished rows that fall inside the output window to the block buffer."""
    sums, weights, valid, index = strip
    r0, r1 = max(row, output.y), min(row + valid.shape[0], output.y1)
    if r1 <= r0:
        return
    c0 = chunk.x - window.x
    rows, cols = slice(r0 - row, r1 - row), slice(c0, c0 + chunk.w)
    wanted, w = valid[rows, cols], weights[rows, cols]
    decided = None if index is None else index[rows, cols]
    reached = w > 0 if decided is None else (w > 0) | (decided != NONE)
    covered = wanted & reached  # a valid pixel no finite tile value reached is nodata
    counts.valid += int(np.count_nonzero(wanted))
    counts.lost += int(np.count_nonzero(wanted)) - int(np.count_nonzero(covered))
    buffer.push(head.finish(sums[:, rows, cols], w, covered, len(buffer.writers), decided))


def _check_finite(runner: Runner, counts: _Counts, model: Model, warnings: list[str]) -> None:
    """Non-finite model output: a warning that counts it, or a failure that blames the model when it is most."""
    if not counts.lost and not runner.non_finite:
        return
    share = counts.lost / counts.valid if counts.valid else 1.0
    name = os.path.basename(model.path)
    if share > MOSTLY_NON_FINITE:
        raise ModelError(f"The model '{name}' returned NaN or infinite values for {100 * share:.1f} % of the valid "
                         f"pixels ({counts.lost:,} of {counts.valid:,}), so there is nothing to write. The fault is "
                         "in the model, not the raster: check its export (a division by zero, a log of 0, float16 "
                         "overflow) on a sample in Python, or ask its author.")
    _warn(warnings, f"The model '{name}' returned {runner.non_finite:,} NaN or infinite values; {counts.lost:,} "
                    f"pixels ({100 * share:.2f} % of the valid ones) got no finite value and are written as "
                    "nodata.")


def run_parameters(input_path: str, options: RunOptions, result: RunResult) -> dict[str, Any]:
    """The parameters of a run, for its outputs' provenance."""
    overrides = options.card
    return {"input": os.path.abspath(input_path), "bands": result.bands, "extent": options.extent,
            "tile_size": result.tile_size, "overlap": result.overlap, "batch_size": result.batch_size,
            "device": options.device, "provider": result.provider, "input_scale": options.input_scale,
            "input_offset": options.input_offset, "task": overrides.task if overrides else None,
            "classes": overrides.classes if overrides else None,
            "threshold": overrides.threshold if overrides else None,
            "median_filter": overrides.median_filter if overrides else None,
            "scale": overrides.scale if overrides else None, "search_m": options.search_m}


def run_model(model: Model | str | os.PathLike[str], input_path: str, output_path: str,
              options: RunOptions | None = None, on_progress: Progress | None = None,
              is_cancelled: Cancelled | None = None, staging: Staging | None = None) -> RunResult:
    """Run `model` over the raster at `input_path` and write `output_path` (GeoTIFF); see docs/architecture.md.

    Every destination is checked before any work. The outputs are staged: with `staging` the caller commits
    them together with its other outputs; without, they are committed here when the run is complete.
    """
    options = options or RunOptions()
    on_progress = on_progress or no_progress
    is_cancelled = is_cancelled or never_cancelled
    started = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    if not isinstance(model, Model):
        model = load_model(model, options.device, options.threads, options.card)
    card = model.card
    warnings = list(model.warnings)
    ds = open_raster(input_path)
    conf = options.confidence_path if card.task in CLASS_TASKS else None
    labels = options.labels
    destinations = [Destination(output_path, labels.get("output", "the output"))]
    if options.confidence_path:
        destinations.append(Destination(options.confidence_path, labels.get("confidence", "the confidence raster")))
    check_destinations(destinations, input_reads(ds, input_path) + model.reads)
    if options.confidence_path and not conf:
        _warn(warnings, f"A confidence raster is only written for class outputs; a {card.task} model "
                        "has none, so it is skipped.")
    scale, offset = input_rescaling(options.input_scale, options.input_offset, card) or (None, None)
    source = RasterSource(input_path, ds, map_bands(ds, card, options.bands, input_path), scale, offset,
                          open_mask(options.valid_mask, ds, input_path) if options.valid_mask else None)
    _input_warnings(source, model, warnings)
    scale_note = _set_scale(model, ds, options, os.path.basename(input_path))
    output = extent_to_window(ds, options.extent, input_path) if options.extent else source.window
    plan = make_plan(model, output, options, lambda message: _warn(warnings, message))
    head = make_head(card, plan.output_channels)
    targets = head.targets(output_path, conf)
    _space_warning(targets, output, warnings)
    origin = transform(output, source.geotransform)
    chunks = plan.chunks()
    total = sum(len(plan.grid(plan.processing_window(c, source.window))) for c in chunks)
    log.info("%s on %s: %d tiles of %dx%d px, overlap %d, batch %d, %s", card.name,
             os.path.basename(input_path), total, plan.tile_in[1], plan.tile_in[0], plan.overlap, plan.batch,
             model.provider)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        on_progress(min(done[0] / total, 1.0) if total else 1.0)

    counts = _Counts()
    try:
        with staged(staging, is_cancelled, options.output_format) as stage:
            stage.model = (card.name, card.version, model.sha256)
            planned = RunResult(output_path, conf, "", model.provider, card.task, [], output.w, output.h, total,
                                0.0, list(source.bands), [], plan.tile_in[0], plan.overlap, plan.batch)
            for key, value in run_parameters(input_path, options, planned).items():
                stage.parameters.setdefault(key, value)
            with ExitStack() as stack:
                writers = [stack.enter_context(RasterWriter(stage, t, output.w, output.h, origin, source.projection))
                           for t in targets]
                runner = Runner(model, plan, head, decide=len(targets) == 1)
                if runner.note:
                    log.info("%s", runner.note)
                for chunk in chunks:
                    buffer = BlockRowBuffer(writers, chunk.x - output.x, chunk.w)
                    _process_chunk(source, plan, chunk, runner, head, buffer, tick, is_cancelled, counts)
                _check_finite(runner, counts, model, warnings)
                if not counts.valid:
                    _warn(warnings, f"Every pixel of '{os.path.basename(input_path)}' "
                                    f"{'in the extent ' if options.extent else ''}is nodata (or masked), so the "
                                    "output holds only nodata. Check the layer's nodata value (Layer Properties > "
                                    "Transparency), the extent, or choose the raster that holds the data.")
                for writer, style in zip(writers, head.style(writers)):
                    writer.style_xml = style
            if card.output.median_filter > 1:
                filter_raster(stage, targets[0], card.output.median_filter, writers[0].style_xml, is_cancelled)
    finally:
        source.close()
    on_progress(1.0)
    styles = [w.style_path if w.style_xml else "" for w in writers]
    return RunResult(output_path, conf, styles[0], model.provider, card.task, list(card.output.classes),
                     output.w, output.h, total, time.perf_counter() - started, list(source.bands), warnings,
                     plan.tile_in[0], plan.overlap, plan.batch, styles[1] if len(styles) > 1 else "",
                     scale_note)


def _set_scale(model: Model, ds: Any, options: RunOptions, name: str) -> str:
    """A terrain model's scale input for this raster (see scale.py); '' for other models."""
    spec = model.card.input.scale
    if spec is None:
        return ""
    scale = terrain_scale(spec, ground_pixel_size(ds), options.search_m, f"'{name}'")
    if scale.coarse_cell_m:
        raise InputError(f"A search distance of {scale.search_m:g} m is {scale.cells:.3g} cells of '{name}', more "
                         f"than the model reaches ({spec.max_cells:g}). Run it through the workflows (or "
                         "run_at_model_resolution), which average the DEM to coarser cells first.")
    model.scale = scale.feed()
    log.info("%s", scale.describe())
    return scale.describe()
