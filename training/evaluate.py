"""Held-out evaluation (numpy only): confusion matrices, per-class metrics, ROC AUC, and the report files.

Conventions: class ids are the label raster's (1..n; 0 = unlabelled, never scored). A confusion matrix has
true classes on rows and predicted classes on columns, in the order of the ``classes`` it was built with.
A metric that is 0/0 (precision of a class never predicted, recall of a class absent from the test set) is
``None`` (JSON null), never a silent 0.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

PathLike = str | os.PathLike[str]
MACRO_NOTE = "macro_f1 averages the classes with support in the test set; the others are listed in macro_excluded"


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """(n, n) int64 counts of pixels (or chips) with true class ``classes[i]`` predicted as ``classes[j]``.

    Pixels whose true label is 0 are ignored whatever was predicted there. Any other label or prediction
    outside ``classes`` is an error: it would otherwise vanish from the counts.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} true labels but {y_pred.size} predictions.")
    ids = np.asarray(list(classes), dtype=np.int64)
    if ids.size == 0 or 0 in ids or np.unique(ids).size != ids.size:
        raise ValueError(f"classes must be distinct non-zero ids, not {ids.tolist()}.")
    scored = y_true != 0
    t, p = y_true[scored].astype(np.int64), y_pred[scored].astype(np.int64)
    order = np.argsort(ids)
    t_index, p_index = np.searchsorted(ids[order], t), np.searchsorted(ids[order], p)
    for name, values, index in (("label", t, t_index), ("prediction", p, p_index)):
        clipped = np.minimum(index, ids.size - 1)
        unknown = ids[order][clipped] != values
        if unknown.any():
            raise ValueError(f"{name} {int(values[unknown][0])} is not one of the classes {ids.tolist()}.")
    t_index, p_index = order[t_index], order[p_index]
    n = ids.size
    return np.bincount(t_index * n + p_index, minlength=n * n).reshape(n, n).astype(np.int64)


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num / den) if den else None


def classification_report(cm: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Overall accuracy, per-class precision / recall / F1 / support, and macro-F1 from a confusion matrix.

    F1 is 2TP / (support + predicted), which is 0 for a class that is missed or only falsely predicted and
    ``None`` for a class that is neither present nor predicted. Macro-F1 averages the classes with support > 0
    only; classes without support are still reported and named in ``macro_excluded``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(names):
        raise ValueError(f"a confusion matrix of {len(names)} classes must be square, not {cm.shape}.")
    total = int(cm.sum())
    if total == 0:
        raise ValueError("the confusion matrix is empty: nothing labelled was evaluated.")
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    per_class: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        per_class.append({
            "name": str(name), "support": int(support[i]), "predicted": int(predicted[i]),
            "precision": _ratio(tp[i], predicted[i]), "recall": _ratio(tp[i], support[i]),
            "f1": _ratio(2 * tp[i], support[i] + predicted[i]),
        })
    scored = [c["f1"] for c in per_class if c["support"] > 0]
    return {
        "overall_accuracy": float(np.trace(cm) / total),
        "macro_f1": float(np.mean(scored)),
        "macro_excluded": [c["name"] for c in per_class if c["support"] == 0],
        "macro_note": MACRO_NOTE,
        "total": total,
        "classes": per_class,
    }


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first occurrence
    return (first + (counts + 1) / 2.0)[inverse.ravel()]


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive (truth != 0) scores above a random
    negative, ties counting one half (the Mann-Whitney U statistic over n_pos x n_neg)."""
    scores, positive = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(truth).ravel() != 0
    if scores.shape != positive.shape:
        raise ValueError(f"{scores.size} scores but {positive.size} truth values.")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite: mask invalid pixels out before computing the AUC.")
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC AUC needs both classes ({n_pos} positives, {n_neg} negatives).")
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def roc_curve(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) at every distinct score, from the highest
    threshold down, starting at (0, 0); a pixel is flagged when its score >= the threshold."""
    scores, positive = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(truth).ravel() != 0
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last_of_each = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tp, fp = np.cumsum(positive)[last_of_each], np.cumsum(~positive)[last_of_each]
    fpr = np.r_[0.0, fp / max(int((~positive).sum()), 1)]
    tpr = np.r_[0.0, tp / max(int(positive.sum()), 1)]
    return fpr, tpr, np.r_[np.inf, scores[last_of_each]]


def write_confusion_csv(cm: np.ndarray, names: Sequence[str], path: PathLike) -> Path:
    """Counts with a header row of predicted class names and a leading column of true class names."""
    target = Path(path)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *names])
        rows: np.ndarray = np.asarray(cm, dtype=np.int64)
        for name, row in zip(names, rows):
            writer.writerow([name, *(int(v) for v in row)])
    return target


def read_confusion_csv(path: PathLike) -> tuple[np.ndarray, list[str]]:
    """The counts and class names written by :func:`write_confusion_csv`."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    names = rows[0][1:]
    return np.array([[int(v) for v in row[1:]] for row in rows[1:]], dtype=np.int64).reshape(-1, len(names)), names


# --- Pictures (Pillow, imported only here: the metrics above need numpy alone) ------------------------------

_DARK, _LIGHT = np.array([8, 48, 107]), np.array([255, 255, 255])  # shading from white (0) to dark blue (1)


def _font(size: int = 14) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:  # no DejaVu on this system: Pillow's built-in bitmap font is small but legible
        return ImageFont.load_default()


def _size(font: Any, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


def _text(image: Any, xy: tuple[float, float], text: str, font: Any, fill: Any = "black",
          rotate: bool = False, align: str = "centre") -> None:
    """Draw ``text`` (turned to read upwards with ``rotate``) with its box centred on ``xy``, or ending left of it
    (``align="right"``), or hanging below it (``align="top"``)."""
    from PIL import Image, ImageDraw

    width, height = _size(font, text)
    label = Image.new("L", (width + 4, height + 6), 0)
    ImageDraw.Draw(label).text((2 - font.getbbox(text)[0], 3 - font.getbbox(text)[1]), text, font=font, fill=255)
    if rotate:
        label = label.rotate(90, expand=True)
    x = xy[0] - (label.width if align == "right" else label.width / 2)
    y = xy[1] if align == "top" else xy[1] - label.height / 2
    image.paste(Image.new("RGB", label.size, fill), (int(x), int(y)), label)


def write_confusion_png(cm: np.ndarray, names: Sequence[str], path: PathLike, title: str = "") -> Path:
    """A heat map of ``cm``: counts in the cells, shading by the share of each true class (row), true classes
    down the left, predicted classes along the bottom."""
    from PIL import Image, ImageDraw

    cm = np.asarray(cm, dtype=np.int64)
    font, small = _font(14), _font(12)
    rows = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    share = cm / rows
    cell = max(44, max(_size(font, str(v))[0] for v in cm.ravel()) + 12)
    name_w = max(_size(font, str(n))[0] for n in names) + 12
    n = len(names)
    left, top = 24 + name_w, 58
    width, height = left + n * cell + 16, top + n * cell + name_w + 30
    image = Image.new("RGB", (max(width, _size(font, title)[0] + 20), height), "white")
    draw = ImageDraw.Draw(image)
    _text(image, (image.width / 2, 16), title, font)
    _text(image, (image.width / 2, 38), "shading: share of the true class (row)", small, fill=(90, 90, 90))
    for i in range(n):
        for j in range(n):
            colour = tuple(int(c) for c in np.round(_LIGHT + (_DARK - _LIGHT) * share[i, j]))
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell, top + (i + 1) * cell)
            draw.rectangle(box, fill=colour, outline=(200, 200, 200))
            ink = "white" if share[i, j] > 0.5 else "black"
            _text(image, (box[0] + cell / 2, box[1] + cell / 2), str(int(cm[i, j])), font, fill=ink)
        _text(image, (left - 6, top + i * cell + cell / 2), str(names[i]), font, align="right")
        _text(image, (left + i * cell + cell / 2, top + n * cell + 6), str(names[i]), font, rotate=True,
              align="top")
    _text(image, (10, top + n * cell / 2), "true", small, rotate=True)
    _text(image, (left + n * cell / 2, height - 12), "predicted", small)
    target = Path(path)
    image.save(target, format="PNG")
    return target


def _corners(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """Indices of the ROC points where the curve turns (plus both ends): the curve, without its straight runs."""
    d_f, d_t = np.diff(fpr), np.diff(tpr)
    turns = np.nonzero(d_f[:-1] * d_t[1:] - d_t[:-1] * d_f[1:])[0] + 1
    return np.r_[0, turns, fpr.size - 1]


def write_roc_png(fpr: np.ndarray, tpr: np.ndarray, path: PathLike, title: str = "", side: int = 320) -> Path:
    """The ROC curve on unit axes with the chance diagonal."""
    from PIL import Image, ImageDraw

    font, small = _font(14), _font(12)
    left, top = 56, 40
    image = Image.new("RGB", (left + side + 20, top + side + 50), "white")
    draw = ImageDraw.Draw(image)

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * side, top + (1 - y) * side

    draw.rectangle((*at(0, 1), *at(1, 0)), outline="black")
    for tick in (0.0, 0.5, 1.0):
        _text(image, (at(tick, 0)[0], top + side + 12), f"{tick:g}", small)
        _text(image, (left - 16, at(0, tick)[1]), f"{tick:g}", small)
    draw.line((*at(0, 0), *at(1, 1)), fill=(170, 170, 170), width=1)
    draw.line([at(float(x), float(y)) for x, y in zip(fpr, tpr)], fill=tuple(_DARK), width=2)
    _text(image, (image.width / 2, 18), title, font)
    _text(image, (left + side / 2, top + side + 34), "false positive rate", small)
    _text(image, (14, top + side / 2), "true positive rate", small, rotate=True)
    target = Path(path)
    image.save(target, format="PNG")
    return target


def report(folder: PathLike, name: str, *, cm: Optional[np.ndarray] = None, names: Optional[Sequence[str]] = None,
           scores: Optional[np.ndarray] = None, truth: Optional[np.ndarray] = None, title: str = "",
           extra: Optional[dict[str, Any]] = None) -> dict[str, float]:
    """Write ``name``.json plus a CSV and a PNG into ``folder`` and return the card's headline figures.

    Classification / segmentation (``cm`` and ``names``): ``name``_confusion.csv and .png, returns overall
    accuracy and macro-F1. Anomaly (``scores`` and ``truth``, finite scores only): ``name``_roc.csv (the curve's
    corners) and .png, returns ROC AUC. ``extra`` (data, command, ...) is stored in the JSON as given.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    label = title or name
    if cm is not None and names is not None and scores is None:
        body = classification_report(cm, names)
        body["confusion_matrix"] = np.asarray(cm).tolist()
        write_confusion_csv(cm, names, out / f"{name}_confusion.csv")
        write_confusion_png(cm, names, out / f"{name}_confusion.png", label)
        headline = {"overall_accuracy": body["overall_accuracy"], "macro_f1": body["macro_f1"]}
    elif scores is not None and truth is not None and cm is None:
        auc = roc_auc(scores, truth)
        fpr, tpr, thresholds = roc_curve(scores, truth)
        keep = _corners(fpr, tpr)
        with open(out / f"{name}_roc.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["false_positive_rate", "true_positive_rate", "threshold"])
            writer.writerows(zip(fpr[keep].tolist(), tpr[keep].tolist(), thresholds[keep].tolist()))
        write_roc_png(fpr[keep], tpr[keep], out / f"{name}_roc.png", f"{label}: ROC AUC {auc:.3f}")
        positives = int((np.asarray(truth) != 0).sum())
        body = {"roc_auc": auc, "positives": positives, "negatives": int(np.asarray(truth).size - positives)}
        headline = {"roc_auc": auc}
    else:
        raise ValueError("report() takes either cm and names, or scores and truth.")
    document = {"name": name, "title": label, **body, **(extra or {})}
    (out / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return headline
