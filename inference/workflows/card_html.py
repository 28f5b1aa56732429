"""A model's card as formatted HTML: what the Model info dialog shows and the HTML report holds.

`card_html` is a fragment in the subset of HTML that Qt's rich text draws (tables, cell background colours for
the class swatches, no CSS layout), so the same text reads the same in QGIS's dialog and in a browser;
`card_page` wraps it in a self-contained page with the card's JSON. Plain text: `Model.describe()`.
"""
from __future__ import annotations

import json
import os
from html import escape
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from ..engine.card import ClassInfo, ModelCard
    from ..engine.model import Model


def _row(label: str, value: str) -> str:
    return f"<tr><th align='left' valign='top'>{escape(label)}</th><td>{value}</td></tr>"


def _bands(card: "ModelCard") -> str:
    names = ", ".join(escape(b.name + (f" [{b.unit}]" if b.unit else "")) for b in card.input.bands)
    count = len(card.input.bands)
    kind = "" if card.input.kind in ("", "any") else f" ({escape(card.input.kind)})"
    return f"{count} band{'s' if count != 1 else ''}{kind}: {names}"


def _pixel_size(card: "ModelCard") -> str:
    if card.input.scale:
        s = card.input.scale
        return (f"any; search distance {s.default_cells:g} cells by default, {s.min_cells:g} to {s.max_cells:g} "
                "cells (coarser cells beyond)")
    if card.input.pixel_size_m:
        return f"{card.input.pixel_size_m:g} m (rasters of another pixel size are resampled to it)"
    return "not given: the raster's own"


def _classes(classes: Iterable["ClassInfo"]) -> str:
    rows = "".join(
        f"<tr><td align='right'>{c.value}</td><td bgcolor='{escape(c.color)}' "
        f"style='background-color:{escape(c.color)}'>&nbsp;&nbsp;&nbsp;&nbsp;</td><td>{escape(c.name)}</td>"
        f"<td>{escape(c.description)}</td></tr>" for c in classes)
    return ("<table cellspacing='2' cellpadding='3'><tr><th>Value</th><th>Colour</th><th align='left'>Name</th>"
            f"<th align='left'>Description</th></tr>{rows}</table>")


def _anomaly(card: "ModelCard") -> str:
    a = card.output.anomaly
    if a is None:
        return ""
    if a.direct:
        calibration = f"calibration median {a.median:g}, MAD {a.mad:g}; " if a.calibrated else ""
        return f"score from the graph; {calibration}default threshold {a.threshold:g}"
    return (f"robust z-score of the {escape(a.error)} reconstruction error (median {a.median:g}, MAD {a.mad:g}); "
            f"default threshold {a.threshold:g}")


def card_html(model: "Model", providers: Iterable[str] = ()) -> str:
    """The card of `model` as a rich-text fragment: name, task, bands, tile and pixel size, classes with their
    colours, metrics, training, the execution provider and the file."""
    c = model.card
    rows = [_row("Task", escape(c.task)), _row("Input", _bands(c)),
            _row("Tile size", f"{c.input.tile_size} px" + (f", margin {c.input.margin} px"
                                                           if c.input.margin is not None else "")),
            _row("Pixel size", _pixel_size(c)), _row("Normalisation", escape(c.input.normalization.method))]
    if _anomaly(c):
        rows.append(_row("Anomaly score", _anomaly(c)))
    if c.output.threshold is not None:
        rows.append(_row("Class threshold", f"{c.output.threshold:g}"))
    if c.output.median_filter > 1:
        rows.append(_row("Median filter", f"{c.output.median_filter} px"))
    metrics = c.training.get("metrics") or {}
    if metrics:
        rows.append(_row("Metrics", "<br>".join(f"{escape(str(k).replace('_', ' '))}: {escape(str(v))}"
                                                for k, v in metrics.items())))
    for key in ("data", "labels", "pretrained_from", "created_by", "source"):
        if c.training.get(key):
            rows.append(_row(f"Training {key.replace('_', ' ')}", escape(str(c.training[key]))))
    available = ", ".join(providers)
    rows.append(_row("Provider", escape(model.provider) + (f" (available here: {escape(available)})"
                                                           if available else "")))
    rows.append(_row("File", escape(os.path.basename(model.path))))
    parts = [f"<h2>{escape(c.name)}</h2>"]
    if c.version:
        parts.append(f"<p>Version {escape(c.version)}</p>")
    if c.description:
        parts.append(f"<p>{escape(c.description)}</p>")
    parts.append(f"<table cellspacing='2' cellpadding='3'>{''.join(rows)}</table>")
    heads = c.output.heads
    for i, head in enumerate(heads):
        if head.classes:
            title = f"Classes of output {i + 1} ({head.name})" if len(heads) > 1 else "Classes"
            parts.append(f"<h3>{escape(title)}</h3>{_classes(head.classes)}")
    if model.warnings:
        parts.append("<h3>Warnings</h3>" + "".join(f"<p>{escape(w)}</p>" for w in model.warnings))
    return "\n".join(parts)


def card_page(model: "Model", providers: Iterable[str] = ()) -> str:
    """A self-contained HTML page: `card_html`, then the card's JSON."""
    card = model.card
    card_json = escape(json.dumps(card.to_dict(), indent=2))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(card.name)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px}"
            "pre{background:#f4f4f4;padding:1em}</style></head><body>"
            f"{card_html(model, providers)}<h2>Model card</h2><pre>{card_json}</pre></body></html>")
