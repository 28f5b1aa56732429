"""The report of a run: report.json (everything), README.md for a geologist (findings first, what was done,
network vs baselines as mean +- std, the verdict with its tests, what to try) and the pooled cross-validation
confusion matrices as PNG (a predicted-vs-true density plot for regression)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..evaluate import write_confusion_png
from ..workflow import write_json
from .metrics import finite, metric_names
from .verdict import LABELS

TITLES = {"overall_accuracy": "overall accuracy", "macro_f1": "macro-F1", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def _cell(s: dict[str, float]) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"


def _p(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def scatter_png(truth: np.ndarray, predicted: np.ndarray, path: Path, title: str, side: int = 320) -> Path:
    """Density of (true, predicted) pixels on common axes, with the 1:1 line."""
    from PIL import Image, ImageDraw

    lo, hi = np.percentile(np.concatenate([truth, predicted]), (0.5, 99.5))
    hi = hi if hi > lo else lo + 1.0
    cells = 80
    hist, _, _ = np.histogram2d(truth, predicted, bins=cells, range=[[lo, hi], [lo, hi]])
    shade = np.log1p(hist) / max(np.log1p(hist).max(), 1e-9)
    left, top = 60, 40
    image = Image.new("RGB", (left + side + 20, top + side + 50), "white")
    draw = ImageDraw.Draw(image)
    cell = side / cells
    for i in range(cells):
        for j in range(cells):
            if hist[i, j]:
                v = int(255 * (1 - shade[i, j]))
                x0, y0 = left + i * cell, top + side - (j + 1) * cell
                draw.rectangle((x0, y0, x0 + cell, y0 + cell), fill=(v, v, 255))
    draw.rectangle((left, top, left + side, top + side), outline="black")
    draw.line((left, top + side, left + side, top), fill=(200, 0, 0))
    draw.text((left, 12), title, fill="black")
    draw.text((left, top + side + 8), f"true {lo:.3g} .. {hi:.3g}", fill="black")
    draw.text((4, top + side // 2), "pred", fill="black")
    image.save(path, format="PNG")
    return path


def write_pictures(folder: Path, task: str, pooled_parts: dict[str, list[Any]], names: Sequence[str]) -> list[str]:
    files = []
    for method in ("network", "random_forest"):
        parts = pooled_parts.get(method) or []
        if not parts:
            continue
        if task == "regression":
            truth = np.concatenate([p[0] for p in parts])
            pred = np.concatenate([p[1] for p in parts])
            target = scatter_png(truth, pred, folder / f"{method}_scatter.png", f"{LABELS[method]}: held-out pixels")
        else:
            target = write_confusion_png(np.sum(parts, axis=0), names, folder / f"{method}_confusion.png",
                                         f"{LABELS[method]}: pooled held-out pixels")
        files.append(target.name)
    return files


def readme(doc: dict[str, Any]) -> str:
    task = doc["task"]
    metrics = metric_names(task)
    lines = [f"# {doc['title']}", "", *[f"**{s}**" for s in doc["verdict"][:1]], "", "## Findings", ""]
    if doc["findings"]:
        lines += [f"- **{f['action']}** ({f['code']}, {f['count']}): {f['message']}" for f in doc["findings"]]
    else:
        lines.append("None: no NULL or empty labels, nothing outside the rasters, one CRS and pixel size, no labels "
                     "on nodata" + (", every class present in every fold." if task != "regression" else "."))
    lines += ["", "## What was done", ""]
    lines += ["- Rasters: " + "; ".join(f"{d['file']} ({d['size_px'][0]} x {d['size_px'][1]} px, "
                                          f"{d['pixel_size_m']} m, {d['crs']}, bands {', '.join(d['bands'])})"
                                          for d in doc["inputs"]["rasters"])]
    lines.append(f"- Labels: {', '.join(l['file'] for l in doc['inputs']['labels']['sources'])}, field "
                 f"`{doc['inputs']['labels']['field']}`; {doc['inputs']['labels']['labelled_pixels']} labelled px, "
                 "each counted once")
    if doc.get("classes"):
        lines.append("- Classes (labelled px): " + ", ".join(f"{c['name']} {c['pixels']}" for c in doc["classes"]))
    lines.append(f"- Chips: {doc['chips']['count']} of {doc['plan']['chip']} px every {doc['plan']['stride']} px "
                 f"(overlapping; {doc['chips']['uncovered']} labelled px lie in no chip and are only scored)")
    if doc.get("source"):
        lines.append(f"- Encoder: {doc['source']['description']}; {doc['source']['bands']}")
    lines += [f"- Baseline, {LABELS[k]}: {v}" for k, v in doc["baselines"].items()]
    lines.append(f"- Validation: spatial {doc['plan']['folds']}-fold cross-validation over {doc['plan']['block']} px "
                 f"blocks ({doc['blocks']} labelled blocks), seeds {doc['plan']['seeds']}; each fold's epoch chosen on "
                 "an inner 20% of its training blocks, never on the held-out fold; baselines on the same folds")
    lines += ["- Choices:"] + [f"  - {k} = {v['value']}: {v['why']}" for k, v in doc["choices"].items()]
    lines += ["", f"## Held-out scores (mean ± std [min, max] over {len(doc['rows']) // 3} fold/seed runs)", "",
              "| method | " + " | ".join(TITLES[m] for m in metrics) + " |",
              "|---|" + "---|" * len(metrics)]
    for method, scores in doc["summary"].items():
        lines.append(f"| {LABELS[method]} | " + " | ".join(_cell(scores[m]) for m in metrics) + " |")
    lines += ["", "Pooled over all held-out predictions (each labelled pixel once per seed; the PNGs show these): " + ", ".join(
        f"{LABELS[m]} " + ", ".join(f"{TITLES[k]} {v[k]:.3f}" for k in metrics) for m, v in doc["pooled"].items())]
    lines += ["", "## Per fold (mean over seeds)", "", "| fold | held-out blocks (raster, column, row) | held-out px | "
              + " | ".join(LABELS[m] for m in doc["summary"]) + " | classes absent |", "|---|---|---|" + "---|" *
              (len(doc["summary"]) + 1)]
    primary = "rmse" if task == "regression" else "macro_f1"
    for fold in doc["folds"]:
        rows = [r for r in doc["rows"] if r["fold"] == fold["fold"]]
        means = [np.mean([r[primary] for r in rows if r["method"] == m]) for m in doc["summary"]]
        blocks = " ".join(f"({b[0]},{b[1]},{b[2]})" for b in fold["test_blocks"])
        lines.append(f"| {fold['fold']} | {blocks} | {rows[0]['pixels']} | " + " | ".join(f"{v:.3f}" for v in means)
                     + f" | {', '.join(fold['absent_classes']) or '-'} |")
    lines += ["", f"Scores are {TITLES[primary]}; blocks are {doc['plan']['block']} px.", "",
              "## Network vs baselines (paired, same pixels)", "",
              "| baseline | pairs | network better / worse / tied | mean difference | sign test p | Wilcoxon p | "
              "per fold: sign p | per fold: Wilcoxon p |", "|---|---|---|---|---|---|---|---|"]
    for c in doc["paired"]:
        r, f = c["runs"], c["folds"]
        lines.append(f"| {LABELS[c['baseline']]} ({TITLES[c['metric']]}) | {r['pairs']} | {r['network_better']} / "
                     f"{r['baseline_better']} / {r['ties']} | {r['mean_difference']:+.3f} | {_p(r['sign_test_p'])} | "
                     f"{_p(r['wilcoxon_p'])} | {_p(f['sign_test_p'])} | {_p(f['wilcoxon_p'])} |")
    lines += ["", "Two-sided exact sign test and Wilcoxon signed-rank test over the (fold, seed) pairs; the seeds "
              "of one fold share its pixels, so the per-fold tests (seed means) are the stricter ones.", "",
              "## Verdict", ""] + doc["verdict"] + ["", "## What to try", ""]
    lines += [f"- {t}" for t in doc["advice"]] or ["- Nothing pressing: the network beats both baselines."]
    lines += ["", "## Final model", "", f"- {doc['final']['summary']}", "", "## Files", ""]
    lines += [f"- `{name}`" for name in doc["files"]]
    lines += ["", f"Command: `{doc['command']}`", f"Time: {doc['seconds']:.0f} s", ""]
    return "\n".join(lines)


def write_report(folder: Path, doc: dict[str, Any], parts: dict[str, list[Any]], names: Sequence[str]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    doc["files"] = ["report.json", "README.md"] + write_pictures(folder, doc["task"], parts, names)
    write_json(folder / "report.json", finite(doc))
    (folder / "README.md").write_text(readme(doc), encoding="utf-8")
    return doc["files"]
