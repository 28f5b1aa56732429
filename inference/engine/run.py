"""run_model: stream a model over a raster, tile by tile, into GeoTIFF outputs."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .errors import CancelledError, ModelError
from .georef import mean_pixel_size
from .heads import Head, make_head
from .model import Model, check_channels, load_model
from .options import RunOptions, RunResult
from .plan import Plan, make_plan
from .progress import Cancelled, Progress
from .raster import RasterSource, StripReader, extent_to_window, input_rescaling, map_bands, open_raster
from .stream import Prefetcher, StripAccumulator, normalize
from .tiling import TileGrid
from .windows import Window, transform
from .writer import BlockRowBuffer, RasterWriter, check_output_path

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    tiles: list[Window]
    array: np.ndarray


@dataclass
class _Row:
    y: int
    valid: np.ndarray  # (tile_h, window width): validity of the output rows this tile row covers
    batches: list[_Batch]
    skipped: int


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


def _rows(source: RasterSource, plan: Plan, window: Window, grid: TileGrid, model: Model,
          is_cancelled: Cancelled) -> Iterator[_Row]:
    """Reader thread: one strip per tile row, normalised and cut into batches of tiles."""
    crop = plan.crop
    th, tw = grid.tile_h + 2 * crop, grid.tile_w + 2 * crop
    width = grid.span[1]
    dtype = model.input_dtype
    reader = StripReader(source, window.x - crop, width + 2 * crop, th)
    for y in grid.rows:
        if is_cancelled():
            return
        data, valid = reader.read(window.y + y - crop, th)
        normalize(data, valid, model.card.input.normalization)
        out_valid = valid[crop:crop + grid.tile_h, crop:crop + window.w]
        tiles = [t for t in grid.row_tiles(y) if out_valid[:, t.x:t.x1].any()]
        batches = []
        for i in range(0, len(tiles), plan.batch):
            part = tiles[i:i + plan.batch]
            array = np.stack([data[:, :, t.x:t.x + tw] for t in part])
            if dtype == np.uint8:
                array = np.clip(np.rint(array), 0, 255)
            batches.append(_Batch(part, array.astype(dtype, copy=False)))
        yield _Row(y, out_valid, batches, len(grid.cols) - len(tiles))


class _Runner:
    """Runs batches through the model and checks the first output's shape against the plan."""

    def __init__(self, model: Model, plan: Plan, head: Head) -> None:
        self.model, self.plan, self.head = model, plan, head
        self.checked: set[tuple[int, ...]] = set()

    def __call__(self, batch: _Batch) -> np.ndarray:
        array, n = batch.array, len(batch.tiles)
        fixed = self.model.fixed_batch
        if fixed and n < fixed:
            array = np.concatenate([array, np.zeros((fixed - n,) + array.shape[1:], array.dtype)])
        raw = self.model.run(array)[:n]
        if raw.shape[1:] not in self.checked:
            self._check(raw.shape, array.shape)
            self.checked.add(raw.shape[1:])
        return self.head.prepare(raw, array[:n].astype(np.float32, copy=False))

    def _check(self, shape: tuple[int, ...], given: tuple[int, ...]) -> None:
        check_channels(self.model.card, shape[1] if len(shape) > 1 else None)
        if self.model.card.task == "classification":
            if len(shape) != 2:
                raise ModelError(f"Unsupported output shape {shape}: a classification model must output "
                                 "(batch, classes).")
            return
        crop = self.plan.crop
        want = (given[2] - 2 * crop, given[3] - 2 * crop)
        if len(shape) != 4 or tuple(shape[2:]) != want:
            raise ModelError(f"Unsupported output shape: the model returned {tuple(shape)} for an input of "
                             f"{tuple(given)}; with output.crop = {crop} the card expects height and width {want}. "
                             "Fix output.crop (or the task) in the card.")


def _process_chunk(source: RasterSource, plan: Plan, chunk: Window, runner: _Runner, head: Head,
                   buffer: BlockRowBuffer, tick: Callable[[int], None], is_cancelled: Cancelled) -> None:
    window = plan.processing_window(chunk, source.window)
    grid = plan.grid(window)
    acc = StripAccumulator(head.channels, grid.tile_h, window.w)
    reader = Prefetcher(lambda: _rows(source, plan, window, grid, runner.model, is_cancelled))
    try:
        for item in reader:
            acc.set_valid(item.valid, item.y)
            for batch in item.batches:
                if is_cancelled():
                    raise CancelledError()
                values = runner(batch)
                for k, tile in enumerate(batch.tiles):
                    acc.add(values[k], grid.weights(tile), tile.x, tile.y)
                tick(len(batch.tiles))
            tick(item.skipped)
            if is_cancelled():
                raise CancelledError()
            until = grid.row_end(item.y)
            sums, weights, valid = acc.finished(until)
            _emit(head, sums, weights, valid, window.y + acc.top, window, chunk, plan.output, buffer)
            acc.advance(until)
        if is_cancelled() or acc.top < window.h:  # the reader stops early on a cancel
            raise CancelledError()
        buffer.flush()
    finally:
        reader.close()


def _emit(head: Head, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray, row: int, window: Window,
          chunk: Window, output: Window, buffer: BlockRowBuffer) -> None:
    """Hand the finished rows that fall inside the output window to the block buffer."""
    r0, r1 = max(row, output.y), min(row + valid.shape[0], output.y1)
    if r1 <= r0:
        return
    c0 = chunk.x - window.x
    rows = slice(r0 - row, r1 - row)
    cols = slice(c0, c0 + chunk.w)
    buffer.push(head.finish(sums[:, rows, cols], weights[rows, cols], valid[rows, cols], len(buffer.writers)))


def run_model(model: Model | str | os.PathLike[str], input_path: str, output_path: str,
              options: RunOptions | None = None, on_progress: Progress | None = None,
              is_cancelled: Cancelled | None = None) -> RunResult:
    """Run `model` over the raster at `input_path` and write `output_path` (GeoTIFF); see docs/architecture.md."""
    options = options or RunOptions()
    on_progress = on_progress or (lambda fraction: None)
    is_cancelled = is_cancelled or (lambda: False)
    started = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    check_output_path(output_path, input_path)
    if options.confidence_path:
        check_output_path(options.confidence_path, input_path)
    if not isinstance(model, Model):
        model = load_model(model, options.device, options.threads)
    warnings = list(model.warnings)
    scale, offset = input_rescaling(options.input_scale, options.input_offset, model.card) or (None, None)
    ds = open_raster(input_path)
    source = RasterSource(input_path, ds, map_bands(ds, model.card, options.bands, input_path), scale, offset)
    _input_warnings(source, model, warnings)
    output = extent_to_window(ds, options.extent, input_path) if options.extent else source.window
    plan = make_plan(model, output, options, lambda message: _warn(warnings, message))
    head = make_head(model.card, plan.output_channels)
    conf = options.confidence_path if model.card.task in ("segmentation", "classification") else None
    if options.confidence_path and not conf:
        _warn(warnings, f"A confidence raster is only written for class outputs; a {model.card.task} model "
                        "has none, so it is skipped.")
    origin = transform(output, source.geotransform)
    chunks = plan.chunks()
    total = sum(len(plan.grid(plan.processing_window(c, source.window))) for c in chunks)
    log.info("%s on %s: %d tiles of %dx%d px, overlap %d, batch %d, %s", model.card.name,
             os.path.basename(input_path), total, plan.tile_in[1], plan.tile_in[0], plan.overlap, plan.batch,
             model.provider)
    writers: list[RasterWriter] = []
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        on_progress(min(done[0] / total, 1.0) if total else 1.0)

    try:
        writers = [RasterWriter(t, output.w, output.h, origin, source.projection)
                   for t in head.targets(output_path, conf)]
        runner = _Runner(model, plan, head)
        for chunk in chunks:
            buffer = BlockRowBuffer(writers, chunk.x - output.x, chunk.w)
            _process_chunk(source, plan, chunk, runner, head, buffer, tick, is_cancelled)
        styles = head.style(writers)
        style_paths = [w.commit(s) for w, s in zip(writers, styles)]
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        source.close()
    on_progress(1.0)
    return RunResult(output_path, conf, style_paths[0], model.provider, model.card.task,
                     list(model.card.output.classes), output.w, output.h, total, time.perf_counter() - started,
                     list(source.bands), warnings, plan.tile_in[0], plan.overlap, plan.batch,
                     style_paths[1] if len(style_paths) > 1 else "")
