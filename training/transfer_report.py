"""The transfer-vs-scratch report files: CSV of the curve and of every run, JSON, a PNG plot and README.md."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .evaluate import _font, _size, _text, classification_report
from .workflow import write_json

METHODS = ("scratch", "transfer")
COLOURS = {"scratch": (215, 48, 39), "transfer": (33, 102, 172)}
CURVE_FIELDS = ("chips", "mean_chips", "method", "overall_accuracy", "macro_f1", "runs", "run_accuracy_min",
                "run_accuracy_max", "pixels")
RUN_FIELDS = ("fold", "draw", "requested", "chips", "method", "seed", "epochs", "frozen_epochs", "overall_accuracy",
              "macro_f1", "final_loss", "seconds")


def summarise(rows: list[dict[str, Any]], names: list[str], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Per requested n and method: the confusion matrix pooled over folds and draws, its accuracy and macro-F1,
    and the spread of the runs' accuracies."""
    out = []
    for n in sizes:
        for method in METHODS:
            chosen = [r for r in rows if r["requested"] == n and r["method"] == method]
            cm = sum(r["cm"] for r in chosen)
            body = classification_report(cm, names)
            per_run = [float(r["overall_accuracy"]) for r in chosen]
            out.append({"chips": "all" if n == 0 else n, "mean_chips": float(np.mean([r["chips"] for r in chosen])),
                        "method": method, "overall_accuracy": body["overall_accuracy"], "macro_f1": body["macro_f1"],
                        "runs": len(chosen), "run_accuracy_min": min(per_run), "run_accuracy_max": max(per_run),
                        "pixels": int(cm.sum()), "confusion_matrix": cm.tolist()})
    return out


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign-test p-value of ``wins`` against ``losses`` (ties left out): the chance of a split at least
    this uneven if either arm were equally likely to come out ahead."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(rows: list[dict[str, Any]], sizes: Sequence[int], metric: str = "overall_accuracy") -> list[dict[str, Any]]:
    """Per requested n: the runs of both arms on the same chips and test blocks, compared pair by pair on
    ``metric``."""
    out = []
    for n in sizes:
        pairs: dict[tuple[int, int], dict[str, float]] = {(r["fold"], r["draw"]): {} for r in rows
                                                          if r["requested"] == n}
        for r in rows:
            if r["requested"] == n:
                pairs[(r["fold"], r["draw"])][r["method"]] = r[metric]
        gains = [p["transfer"] - p["scratch"] for p in pairs.values()]
        out.append({"chips": "all" if n == 0 else n, "pairs": len(gains), "transfer_ahead": sum(g > 0 for g in gains),
                    "scratch_ahead": sum(g < 0 for g in gains), "mean_gain": float(np.mean(gains)),
                    "sign_test_p": sign_test(sum(g > 0 for g in gains), sum(g < 0 for g in gains))})
    return out


def _csv(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})


def curve_png(summary: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Two panels (overall accuracy, macro-F1) against the number of labelled chips on a log2 axis; accuracy
    whiskers span the runs' lowest and highest accuracy."""
    from PIL import Image, ImageDraw

    font, small = _font(14), _font(12)
    panel, left, top, gap = 300, 56, 56, 70
    image = Image.new("RGB", (left + 2 * panel + gap + 20, top + panel + 70), "white")
    draw = ImageDraw.Draw(image)
    xs = sorted({float(r["mean_chips"]) for r in summary})
    names = {float(r["mean_chips"]): f"all ({r['mean_chips']:.0f})" for r in summary if r["chips"] == "all"}
    lo, hi = np.log2(xs[0]), np.log2(xs[-1])

    def at(x0: float, x: float, y: float) -> tuple[float, float]:
        return x0 + 12 + (np.log2(x) - lo) / max(hi - lo, 1e-9) * (panel - 24), top + (1 - y) * panel

    _text(image, (image.width / 2, 16), title, font)
    for p, (key, label) in enumerate((("overall_accuracy", "overall accuracy"), ("macro_f1", "macro-F1"))):
        x0 = left + p * (panel + gap)
        draw.rectangle((x0, top, x0 + panel, top + panel), outline="black")
        for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = top + (1 - tick) * panel
            draw.line((x0, y, x0 + panel, y), fill=(230, 230, 230))
            _text(image, (x0 - 18, y), f"{tick:g}", small)
        for x in xs:
            _text(image, (at(x0, x, 0)[0], top + panel + 12), names.get(x, f"{x:g}"), small)
        _text(image, (x0 + panel / 2, top + panel + 32), "labelled training chips (log scale)", small)
        _text(image, (x0 + panel / 2, top - 14), label, font)
        for offset, (method, colour) in zip((-4, 4), COLOURS.items()):
            rows = sorted((r for r in summary if r["method"] == method), key=lambda r: r["mean_chips"])
            points = [at(x0, r["mean_chips"], r[key]) for r in rows]
            draw.line(points, fill=colour, width=3)
            for r, (px, py) in zip(rows, points):
                draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour)
                if key == "overall_accuracy":
                    y0, y1 = at(x0, r["mean_chips"], r["run_accuracy_min"])[1], at(x0, r["mean_chips"],
                                                                                    r["run_accuracy_max"])[1]
                    draw.line((px + offset, y0, px + offset, y1), fill=colour, width=2)
    for i, (method, colour) in enumerate(COLOURS.items()):
        y = top + panel + 54
        x = left + i * 200
        draw.line((x, y, x + 24, y), fill=colour, width=3)
        _text(image, (x + 32 + _size(small, method)[0] / 2, y), method, small)
    note = "whiskers: lowest to highest single-run accuracy"
    _text(image, (image.width - 20 - _size(small, note)[0] / 2, top + panel + 54), note, small, fill=(90, 90, 90))
    image.save(path, format="PNG")
    return path


def write(folder: Path, document: dict[str, Any], summary: list[dict[str, Any]], runs: list[dict[str, Any]],
          readme: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _csv(folder / "transfer_curve.csv", CURVE_FIELDS, summary)
    _csv(folder / "transfer_runs.csv", RUN_FIELDS, runs)
    curve_png(summary, folder / "transfer_curve.png", document["title"])
    write_json(folder / "transfer_curve.json", document)
    (folder / "README.md").write_text(readme, encoding="utf-8")


def _pairs(summary: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    scratch = [r for r in summary if r["method"] == "scratch"]
    transfer = {r["chips"]: r for r in summary if r["method"] == "transfer"}
    return [(s, transfer[s["chips"]]) for s in scratch]


def _verdict(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]], paired: Sequence[dict[str, Any]]) -> str:
    """One plain sentence on the outcome, from the numbers."""
    few = [(s, t, pp) for (s, t), pp in zip(pairs, paired) if s["chips"] != "all"]
    wins = sum(pp["transfer_ahead"] for *_, pp in few)
    losses = sum(pp["scratch_ahead"] for *_, pp in few)
    gain = float(np.mean([t["overall_accuracy"] - s["overall_accuracy"] for s, t, _ in few])) if few else 0.0
    full = [(s, t) for s, t in pairs if s["chips"] == "all"]
    tail = ""
    if full:
        s, t = full[0]
        tail = (f" With every chip, transfer scores {t['overall_accuracy']:.3f} against {s['overall_accuracy']:.3f} "
                f"(runs {t['run_accuracy_min']:.2f}-{t['run_accuracy_max']:.2f} against "
                f"{s['run_accuracy_min']:.2f}-{s['run_accuracy_max']:.2f}).")
    p = sign_test(wins, losses)
    if p < 0.05:
        head = (f"With fewer than all chips the pretrained encoder {'helps' if wins > losses else 'hurts'}: "
                f"{gain:+.3f} accuracy on average over those points, ahead in {wins} and behind in {losses} paired "
                f"runs (sign test p = {p:.3f}).")
    else:
        head = (f"With fewer than all chips the difference is not significant at this number of runs: {gain:+.3f} "
                f"accuracy on average over those points, transfer ahead in {wins} and behind in {losses} paired "
                f"runs (sign test p = {p:.2f}).")
    single = [f"{pp['chips']} chips: {pp['transfer_ahead']} to {pp['scratch_ahead']}, p = {pp['sign_test_p']:.3f}"
              for (_, _, pp) in few if pp["sign_test_p"] < 0.05]
    if single:
        head += (" Taken alone, the paired runs differ significantly at " + "; ".join(single) + f" (one of "
                 f"{len(few)} points tested, without correction for multiple comparisons).")
    return head + tail


def readme(document: dict[str, Any]) -> str:
    """The report's summary: what was compared, the table, the figure, and what it does and does not show."""
    d, c, pre = document, document["curve"], document["pretraining"]
    pairs = _pairs(d["summary"])
    rows = ["| labelled chips | scratch accuracy | transfer accuracy | gain | scratch macro-F1 | transfer macro-F1 "
            "| paired runs: transfer / scratch ahead (sign test p) | run accuracy range, scratch / transfer |",
            "|---|---|---|---|---|---|---|---|"]
    for (s, t), p in zip(pairs, d["paired"]):
        chips = f"{s['chips']} (mean {s['mean_chips']:.0f})" if s["chips"] == "all" else str(s["chips"])
        rows.append(f"| {chips} | {s['overall_accuracy']:.3f} | {t['overall_accuracy']:.3f} | "
                    f"{t['overall_accuracy'] - s['overall_accuracy']:+.3f} | {s['macro_f1']:.3f} | {t['macro_f1']:.3f} "
                    f"| {p['transfer_ahead']} / {p['scratch_ahead']} of {p['pairs']} (p = {p['sign_test_p']:.2f}) "
                    f"| {s['run_accuracy_min']:.2f}-{s['run_accuracy_max']:.2f} / "
                    f"{t['run_accuracy_min']:.2f}-{t['run_accuracy_max']:.2f} |")
    ahead = [s["chips"] for s, t in pairs if t["overall_accuracy"] > s["overall_accuracy"]]
    f1_ahead = [s["chips"] for s, t in pairs if t["macro_f1"] > s["macro_f1"]]
    few = [(s, t) for s, t in pairs if s["chips"] != "all"]
    mean_gain = float(np.mean([t["overall_accuracy"] - s["overall_accuracy"] for s, t in few])) if few else 0.0
    pixels = ", ".join(f"{k} {v}" for k, v in d["labelled_pixels"].items())
    return "\n".join([
        f"# {d['title']}",
        "",
        "Does an encoder pretrained without labels help when labelled chips are few? The task is the 36 real "
        "land-cover polygons of the Landsat 5 TM scene LT52240631988227CUB02 (Para, Brazil; "
        "`training/datasets/landsat5_amazon`), classes " + ", ".join(d["classes"]) + f" (labelled pixels: {pixels}). "
        "The encoder was pretrained as a convolutional autoencoder on unlabelled chips of the Landsat 8 OLI (Florida) "
        "and Sentinel-2 MSI (Para) scenes of the geology model: another sensor, other places, no labels. It is the "
        "very encoder the shipped geology model (`resources/models/geology_oli.onnx`) was fine-tuned from.",
        "",
        f"Command (from the repository root): `{d['command']}`; run time {d['seconds']:.0f} s on this machine "
        f"({c['threads']} torch threads). Figures: `transfer_curve.csv` (the curves), `transfer_runs.csv` (every "
        "run), `transfer_curve.json` (everything, with each run's confusion matrix), `transfer_curve.png`.",
        "",
        "![accuracy and macro-F1 against the number of labelled chips](transfer_curve.png)",
        "",
        *rows,
        "",
        f"Transfer is ahead in overall accuracy at {len(ahead)} of {len(pairs)} points ({', '.join(map(str, ahead)) or 'none'}) "
        f"and in macro-F1 at {len(f1_ahead)} ({', '.join(map(str, f1_ahead)) or 'none'}); averaged over the points "
        f"with fewer than all chips its accuracy gain is {mean_gain:+.3f}.",
        "",
        "## How it was measured",
        "",
        f"- Spatial folds: the labelled {c['block']} px blocks are dealt into {c['folds']} folds of about equal chip "
        f"counts; each fold is held out in turn and its blocks are never trained on. For each fold and n, "
        f"{c['draws']} different sets of n chips are drawn (one set when n is every chip). Every figure pools the "
        "confusion matrices of all runs of a point, so each point scores every polygon pixel that lies in a "
        "labelled block, once per draw. Run accuracy range: the lowest and highest accuracy of a single run "
        "(whiskers in the plot).",
        f"- Chips: {c['chip']} px, laid every {c['stride']} px inside the blocks. For n chips, one chip of each class "
        "(by majority) is drawn first, then random others, from the training folds (seeded per fold and n).",
        f"- Both arms train the same U-Net (width {pre['width']}, depth {pre['depth']}) with the same first layer "
        "(log reflectance, `training/spectral.py`), the same chips, seed, class weights (square root of median-"
        f"frequency weights, capped at 10), augmentation and {c['steps']} optimiser steps (batches of up to 16, "
        f"lr {c['lr']:g}). Built from one seed, their decoders start identical; only the encoder differs. Transfer "
        f"keeps the encoder frozen for the first {c['freeze_share']:.0%} of the epochs, then fine-tunes it at a "
        "tenth of the learning rate.",
        "- No label beyond the n chips is used: there is no validation set, the final weights are scored.",
        f"- Pretraining: {pre['chips']} unlabelled chips, {pre['epochs']} epochs (best reconstruction error "
        f"{pre['reconstruction_error']:.3f} at epoch {pre['best_epoch']}); the geology model's held-out blocks "
        "are left out of it.",
        "- Inference for scoring is the PyTorch model over the whole scene at once (not the plugin engine: these "
        "models are not shipped); the geology report's figures come from the engine.",
        "",
        "## What this does and does not show",
        "",
        _verdict(pairs, d["paired"]),
        "",
        f"- The scene is small: 36 polygons in {d['labelled_blocks']} labelled blocks. With 4 or 8 chips a run's "
        "accuracy depends mostly on which chips are drawn and which blocks are held out (see the run ranges), so "
        "differences of a few points between the arms are within the noise. The paired column counts, over runs "
        "with the same chips and test blocks, how often each arm was ahead, with the two-sided sign-test p-value.",
        f"- Only {c['draws']} draws per fold and n fit the time budget of `make models`; the hyperparameters "
        "(steps, freeze share, learning rates) were fixed before the comparison, not tuned on it.",
        "- Both arms get the log-reflectance first layer, which already exposes the band ratios that separate "
        "these four classes; a network trained from scratch on such inputs needs little data, which likely leaves "
        "less for the pretrained encoder to add than on raw bands (not tested here).",
        "- Pretraining used other sensors (OLI, MSI) converted to one input (`training/sensors.py`); the TM scene "
        "is converted the same way.",
        "",
    ])
