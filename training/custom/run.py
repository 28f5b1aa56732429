"""One ``segment`` / ``regress`` run from start to finish: rasters and labels (findings), defaults, spatial
cross-validation with baselines and paired tests, the final model, its export with the card, the check through
the plugin's engine, and the report."""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..export import export_model
from . import baselines
from ..nets import receptive_radius
from ..receptive import effective_margin
from ..workflow import engine_output
from .card import build_card
from .cv import CVResult, cross_validate
from .defaults import Plan, geometry, schedule
from .encoders import build_unet, load_source
from .findings import Choices, Findings
from .folds import Chips, block_pixels, cut_chips
from .inputs import describe, read_scenes
from .metrics import HIGHER, PRIMARY, pooled, summarise
from .onnx_ops import preflight
from .network import Fitted, class_weights_for, export_ready, predict, train_network
from .paired import paired
from .report import write_report
from .source import Source, stem_margin
from .targets import Dataset, LabelOptions, build_dataset
from .verdict import advice, verdict

log = logging.getLogger("training.custom")
MAX_SHIFT = {"segmentation": 0.1, "regression": 0.05}  # margin: probability, or target std (the unscaled output)


@dataclass
class Options:
    task: str
    images: list[str]
    labels: list[str]
    label_field: Optional[str]
    out: str
    command: str
    report: Optional[str] = None
    bands: Optional[str] = None
    source: Optional[str] = None
    folds: Optional[int] = None
    seeds: Optional[int] = None
    chip: Optional[int] = None
    block: Optional[int] = None
    epochs: Optional[int] = None
    width: Optional[int] = None
    depth: Optional[int] = None
    threads: int = 1
    min_class_pixels: int = 50
    drop: list[str] = field(default_factory=list)
    merge: list[str] = field(default_factory=list)
    name: Optional[str] = None
    kind: Optional[str] = None


def _check_scale(source: Source, pixel_m: Optional[float], findings: Findings) -> None:
    if source.pixel_size_m and pixel_m and not 0.67 < pixel_m / source.pixel_size_m < 1.5:
        findings.add("source_scale", f"--from {source.name} was trained at {source.pixel_size_m:g} m pixels, the "
                                     f"raster has {pixel_m:g} m: its stem and encoder see its features at another "
                                     "scale (kept as trained; resample the raster to compare)", 1, "reported",
                     source_m=source.pixel_size_m, raster_m=pixel_m)


def _final(dataset: Dataset, chips: Chips, plan: Plan, source: Optional[Source], epochs: int,
           choices: Choices) -> Fitted:
    everything = np.arange(len(chips))
    values = np.concatenate([t[dataset.labelled(i)] for i, t in enumerate(dataset.truth)])
    regression = dataset.task == "regression"
    weights = None if regression else class_weights_for(values, dataset.ids)
    if weights is not None:
        choices.set("class_weights", {n: round(w, 3) for n, w in zip(dataset.names, weights)},
                    "median-frequency weights of the labelled pixels, each counted once (per fold: of its training "
                    "pixels), capped at 10")
    target = (float(values.mean()), float(values.std()) or 1.0) if regression else (0.0, 1.0)
    return train_network(dataset.task, chips.images, chips.labels, everything, everything[:1], plan, source,
                         plan.seeds[0], 1 if regression else len(dataset.classes), weights, target, epochs=epochs)


def _margin(fitted: Fitted, dataset: Dataset, plan: Plan, source: Optional[Source]) -> tuple[int, str]:
    from ..data import normalise

    image = dataset.scenes[0].image
    h, w = image.shape[1:]
    side = min(h, w, 384)
    y, x = (h - side) // 2, (w - side) // 2
    sample = normalise(image[None, :, y:y + side, x:x + side], fitted.normalization)[0]
    floor = stem_margin(source.stem if source else None) + plan.size_multiple  # a few px even if it looks exact
    try:
        with torch.no_grad():
            check = effective_margin(fitted.model, sample, plan.size_multiple, floor=floor,
                                     softmax=dataset.task != "regression", tile=128, max_shift=MAX_SHIFT[dataset.task])
        return check.margin, f"measured on {dataset.scenes[0].path} ({check.changed:.2%} of pixels change beyond it)"
    except ValueError:
        fallback = min(receptive_radius(plan.depth), 32) + floor
        return fallback, "the raster is too small to measure it: the receptive radius, capped at 32 px, plus the stem"


def _engine_check(path: Path, dataset: Dataset, fitted: Fitted, threads: int) -> dict[str, Any]:
    """Run the exported file through the plugin's engine on the first raster and compare with PyTorch's whole-raster
    prediction (the one the folds are scored with)."""
    scene = dataset.scenes[0]
    output, result = engine_output(path, scene.path, bands=list(scene.bands), threads=threads)
    mine = predict(fitted, scene.image, dataset.task, threads)
    valid = scene.valid
    if dataset.task == "regression":
        diff = np.abs(output[valid] - mine[valid])
        scale = float(np.nanstd(mine[valid])) or 1.0
        return {"raster": scene.path, "max_abs_difference": float(diff.max()), "relative": float(diff.max() / scale),
                "summary": f"the plugin's engine ran it on {scene.path}: largest difference from PyTorch "
                           f"{float(diff.max()):.3g} ({float(diff.max() / scale):.2%} of the predictions' std)"}
    values = np.array([0] + [c.value for c in dataset.classes])
    agree = float((output[valid] == values[mine[valid]]).mean())
    return {"raster": scene.path, "agreement": agree, "tiles": getattr(result, "tiles", None),
            "summary": f"the plugin's engine ran it on {scene.path}: its classes agree with PyTorch on "
                       f"{agree:.2%} of the valid pixels"}


def _document(options: Options, dataset: Dataset, plan: Plan, choices: Choices, findings: Findings, chips: Chips,
              blocks: int, cv: CVResult, source: Optional[Source], extra: dict[str, Any]) -> dict[str, Any]:
    task, metric = dataset.task, PRIMARY[dataset.task]
    first = "mean" if task == "regression" else "majority"
    methods = ["network", first, "random_forest"]
    summary = summarise(cv.rows, task, methods)
    comparisons = [paired(cv.rows, b, metric, HIGHER[metric]) for b in (first, "random_forest")]
    return {
        "title": f"{'Regression of' if task == 'regression' else 'Segmentation of'} "
                 f"{options.label_field or 'labels'} from {Path(options.images[0]).name}",
        "task": task, "command": options.command,
        "inputs": {"rasters": [describe(s) for s in dataset.scenes],
                   "labels": {"sources": dataset.labels, "field": options.label_field, "labelled_pixels": dataset.pixels}},
        "classes": [{"id": c.id, "value": c.value, "name": c.name, "pixels": c.pixels} for c in dataset.classes],
        "findings": findings.to_json(), "choices": choices.items,
        "plan": {k: getattr(plan, k) for k in ("chip", "stride", "block", "depth", "width", "epochs", "patience",
                                               "folds", "seeds", "freeze_epochs", "batch_size", "lr", "threads")},
        "chips": {"count": len(chips), "uncovered": chips.uncovered},
        "blocks": blocks,
        "folds": [{"fold": f.index + 1, "test_blocks": f.test, "fit_blocks": f.fit, "validation_blocks": f.validation,
                   "held_out_pixels": f.pixels, "absent_classes": f.absent, "untrained_classes": f.untrained}
                  for f in cv.folds],
        "baselines": baselines.describe(task),
        "rows": cv.rows, "summary": summary,
        "pooled": {m: pooled(task, cv.parts[m], dataset.names) for m in methods if cv.parts[m]},
        "paired": comparisons,
        "verdict": verdict(comparisons, summary, metric, HIGHER[metric]),
        "advice": advice(comparisons, summary, metric, HIGHER[metric], findings, source, blocks,
                         dataset.scenes[0].pixel_m, task, plan.chip),
        **extra,
    }


def run(options: Options) -> dict[str, Any]:
    started = time.perf_counter()
    findings, choices = Findings(), Choices()
    torch.set_num_threads(options.threads)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="deepstrata-custom-") as work:
        source = load_source(options.source) if options.source else None  # a missing encoder fails first
        scenes = read_scenes(options.images, options.bands, Path(work), findings)
        labels = LabelOptions(options.label_field, options.min_class_pixels, tuple(options.drop), tuple(options.merge))
        dataset = build_dataset(options.task, scenes, options.labels, labels, findings)
        if source is not None:
            _check_scale(source, scenes[0].pixel_m, findings)
            choices.set("from", source.describe(), f"--from {options.source}" + (
                f"; features checked against the graph (largest difference {source.verified:.2g})"
                if source.verified is not None else ""))
        plan = geometry(dataset, choices, options.chip, options.block, options.width, options.depth,
                        (source.width, source.depth) if source else None)
        if source is not None:
            outputs = 1 if dataset.task == "regression" else len(dataset.classes)
            preflight(build_unet(source, len(scenes[0].bands), outputs, plan.width, plan.depth)[0],
                      len(scenes[0].bands), 8 * plan.size_multiple, f"--from {options.source}")
        counts = block_pixels(dataset, plan.block)
        chips = cut_chips(dataset, plan.chip, plan.stride, plan.block)
        log.info("%d labelled px (each counted once) in %d blocks; %d chips (overlapping)", dataset.pixels,
                 len(counts), len(chips))
        plan = schedule(plan, choices, len(chips), len(counts), options.epochs, options.folds, options.seeds,
                        options.threads, source is not None)
        timings["prepare"] = time.perf_counter() - started
        cv = cross_validate(dataset, chips, counts, plan, source, findings)
        timings["cross_validation"] = cv.seconds
        epochs = max(1, int(round(float(np.median(cv.chosen_epochs)))))
        choices.set("final_epochs", epochs, f"the median of the {len(cv.chosen_epochs)} chosen epochs")
        fitted = _final(dataset, chips, plan, source, epochs, choices)
        margin, margin_why = _margin(fitted, dataset, plan, source)
        choices.set("margin", margin, margin_why)
        doc = _document(options, dataset, plan, choices, findings, chips, len(counts), cv, source, {})
        validation = {"folds": plan.folds, "seeds": plan.seeds, "block_px": plan.block,
                      "summary": doc["summary"], "paired": doc["paired"]}
        card = build_card(dataset, plan, source, fitted.normalization, margin, doc["summary"], validation,
                          options.command, findings, options.name, options.kind, options.label_field or "labels", epochs)
        out = Path(options.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        model = export_ready(fitted, dataset.task)
        scale = abs(fitted.target[0]) + 10 * fitted.target[1]
        export_model(model, card, out, sizes=(64, 96), tolerance=max(1e-4, 1e-6 * scale))
        engine = _engine_check(out, dataset, fitted, options.threads)
        timings["final_and_export"] = time.perf_counter() - started - sum(timings.values())
    log.info("%s", engine["summary"])
    doc.update({"model": str(out), "card_metrics": card["training"]["metrics"], "choices": choices.items,
                "findings": findings.to_json(),
                "final": {"epochs": epochs, "normalization": fitted.normalization, "engine": engine,
                          "bands_matched": fitted.bands_matched,
                          "summary": f"{out.name}: trained on every block for {epochs} epochs; {engine['summary']}"},
                "source": None if source is None else {"description": source.describe(), "bands": fitted.bands_matched,
                                                       "verified": source.verified, "path": source.path},
                "timings_s": {k: round(v, 1) for k, v in timings.items()},
                "seconds": round(time.perf_counter() - started, 1)})
    report = Path(options.report) if options.report else out.with_suffix(".report")
    write_report(report, doc, cv.parts, dataset.names)
    doc["report"] = str(report)
    return doc
