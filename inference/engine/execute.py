"""execute: stream a model over a raster, tile by tile, into staged GeoTIFF outputs, the tiles computed here
(local_fill) or by a Fill such as a Dask cluster's (cluster/dispatch.py). run.py's run_model picks the fill."""
from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .batches import Runner
from .destinations import Destination, check_destinations
from .domain import domain_warnings
from .georef import ground_pixel_size, mean_pixel_size
from .heads import Head, make_head
from .median import filter_raster
from .model import CLASS_TASKS, Model, load_model
from .options import RunOptions, RunResult
from .pipeline import Counts, band_columns, band_rows, run_chunks, set_scale, tile_count
from .plan import Plan, make_plan
from .progress import Cancelled, Progress, doing, never_cancelled, no_progress, note
from .raster import RasterSource, extent_to_window, input_reads, map_bands, open_mask, open_raster
from .staging import Staging, staged
from .strips import input_rescaling
from .targets import RasterTarget
from .windows import Window, transform
from .writer import RasterWriter, human_size

log = logging.getLogger(__name__)


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    log.warning(message)


def input_name(input_path: str, options: RunOptions) -> str:
    """How messages name the input: "'dem.tif'", or the caller's name for it (options.labels["input"]: the user's
    raster where the run reads a resampled copy of it)."""
    return options.labels.get("input") or f"'{os.path.basename(input_path)}'"


def _input_warnings(source: RasterSource, model: Model, warnings: list[str], name: str, domain: bool) -> None:
    """No CRS, a pixel size far from the model's and, with `domain`, the input outside the model's training
    domain (domain.py)."""
    if not source.projection:
        _warn(warnings, f"{name} has no CRS: the output is written without one. Assign the layer's CRS "
                        "(Layer Properties > Source, or gdal_edit.py -a_srs) to georeference it.")
    trained = model.card.input.pixel_size_m
    actual = mean_pixel_size(source.dataset)
    if trained and actual and not 0.5 <= actual / trained <= 2.0:
        _warn(warnings, f"{name} has about {actual:.3g} m pixels but the model was trained at {trained:g} m; "
                        "results may be poor. Resample the raster to the model's resolution first.")
    for message in domain_warnings(source, model.card, name) if domain else []:
        _warn(warnings, message)


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
            "scale": overrides.scale if overrides else None, "search_m": options.search_m,
            **({"rows": list(options.rows)} if options.rows else {}),
            **({"columns": list(options.columns)} if options.columns else {}),
            **({"cluster": options.cluster} if options.cluster else {})}


@dataclass
class FillJob:
    """What a fill computes: the tiles of `plan` over `source` into `writers` (one per target, of the written
    window's size), only raster rows `band` and output columns `columns` when set; `options` and `input_path` as
    the run was asked."""

    model: Model
    input_path: str
    options: RunOptions
    source: RasterSource
    plan: Plan
    head: Head
    writers: Sequence[RasterWriter]
    band: tuple[int, int] | None
    columns: tuple[int, int] | None  # output columns (pipeline.band_columns), or None for all
    on_progress: Progress
    is_cancelled: Cancelled
    warn: Callable[[str], None]


@dataclass
class Filled:
    """What a fill did: the pixel counts, and where it ran when not on this machine's model provider."""

    counts: Counts
    provider: str = ""


class Fill(Protocol):
    def __call__(self, job: FillJob) -> Filled: ...


def local_fill(job: FillJob, check: bool = True) -> Filled:
    """The tiles computed here, on the model's own session; `check`: the non-finite check over this run."""
    runner = Runner(job.model, job.plan, job.head, decide=len(job.writers) == 1)
    if runner.note:
        note(log, runner.note)
    return Filled(run_chunks(job.source, job.plan, runner, job.head, job.writers, job.on_progress, job.is_cancelled,
                             job.warn, rows=job.band, check=check, columns=job.columns))


def execute(model: Model | str | os.PathLike[str], input_path: str, output_path: str,
            options: RunOptions | None = None, on_progress: Progress | None = None,
            is_cancelled: Cancelled | None = None, staging: Staging | None = None,
            fill: Fill = local_fill) -> RunResult:
    """Run `model` over the raster at `input_path` and write `output_path` (GeoTIFF), its tiles computed by
    `fill`; see docs/architecture.md.

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
    name = input_name(input_path, options)
    doing(f"Reading {name}")
    scale, offset = input_rescaling(options.input_scale, options.input_offset, card) or (None, None)
    source = RasterSource(input_path, ds, map_bands(ds, card, options.bands, input_path), scale, offset,
                          open_mask(options.valid_mask, ds, input_path) if options.valid_mask else None)
    _input_warnings(source, model, warnings, name, not options.input_checked)
    scale_note = set_scale(model, ground_pixel_size(ds) if model.card.input.scale else None, options.search_m,
                           name)
    if scale_note and not options.input_checked:
        note(log, scale_note)
    output = extent_to_window(ds, options.extent, input_path) if options.extent else source.window
    plan = make_plan(model, output, options, lambda message: _warn(warnings, message))
    head = make_head(card, plan.output_channels)
    targets = head.targets(output_path, conf)
    band = band_rows(options.rows, output, card.output.median_filter, "the output")
    cols = band_columns(options.columns, plan, card.output.median_filter, "the output")
    written = Window(output.x + (cols[0] if cols else 0), band[0] if band else output.y,
                     cols[1] - cols[0] if cols else output.w, band[1] - band[0] if band else output.h)
    _space_warning(targets, written, warnings)
    origin = transform(written, source.geotransform)
    total = tile_count(plan, source.window, band, cols)
    note(log, f"{card.name} on {name}: {total} tiles of {plan.tile_in[1]}x{plan.tile_in[0]} px, overlap "
              f"{plan.overlap}, batch {plan.batch}, {model.provider}")
    try:
        with staged(staging, is_cancelled, options.output_format) as stage:
            stage.model = (card.name, card.version, model.sha256)
            planned = RunResult(output_path, conf, "", model.provider, card.task, [], output.w, output.h, total,
                                0.0, list(source.bands), [], plan.tile_in[0], plan.overlap, plan.batch)
            for key, value in run_parameters(input_path, options, planned).items():
                stage.parameters.setdefault(key, value)
            with ExitStack() as stack:
                writers = [stack.enter_context(RasterWriter(stage, t, written.w, written.h, origin,
                                                            source.projection)) for t in targets]
                filled = fill(FillJob(model, input_path, options, source, plan, head, writers, band, cols,
                                      on_progress, is_cancelled, lambda message: _warn(warnings, message)))
                if not filled.counts.valid:
                    _warn(warnings, f"Every pixel of {name} "
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
    return RunResult(output_path, conf, styles[0], filled.provider or model.provider, card.task, list(card.output.classes),
                     written.w, written.h, total, time.perf_counter() - started, list(source.bands), warnings,
                     plan.tile_in[0], plan.overlap, plan.batch, styles[1] if len(styles) > 1 else "",
                     scale_note, filled.counts.valid, filled.counts.lost, filled.counts.non_finite)
