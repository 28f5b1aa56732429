"""Scores on held-out pixels and their summaries: overall accuracy and macro-F1 (over the classes present in
the fold) from a confusion matrix, or RMSE, MAE and R^2; mean, std (population), min and max over runs."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..evaluate import classification_report, confusion_matrix

PRIMARY = {"segmentation": "macro_f1", "regression": "rmse"}
HIGHER = {"overall_accuracy": True, "macro_f1": True, "rmse": False, "mae": False, "r2": True}


def segmentation_scores(truth: np.ndarray, predicted: np.ndarray, ids: Sequence[int],
                        names: Sequence[str]) -> tuple[dict[str, Any], np.ndarray]:
    cm = confusion_matrix(truth, predicted, ids)
    body = classification_report(cm, names)
    return {"overall_accuracy": body["overall_accuracy"], "macro_f1": body["macro_f1"],
            "classes_absent": body["macro_excluded"], "pixels": int(cm.sum())}, cm


def regression_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE and R^2 = 1 - SSE / SST, SST about the held-out pixels' own mean."""
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    sst = float(((truth - truth.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error))),
            "r2": 1.0 - float((error ** 2).sum()) / sst if sst > 0 else float("nan"), "pixels": int(truth.size)}


def summary(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan"), "runs": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
            "runs": int(v.size)}


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, so the JSON is strict."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def metric_names(task: str) -> list[str]:
    return ["rmse", "mae", "r2"] if task == "regression" else ["overall_accuracy", "macro_f1"]


def summarise(rows: Sequence[dict[str, Any]], task: str, methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per method and metric: mean, std, min, max over the (fold, seed) runs."""
    return {m: {k: summary([r[k] for r in rows if r["method"] == m]) for k in metric_names(task)} for m in methods}


def pooled(task: str, parts: Sequence[Any], names: Sequence[str]) -> dict[str, Any]:
    """Scores of all held-out predictions pooled: summed confusion matrices, or concatenated (truth, prediction)."""
    if task == "regression":
        truth = np.concatenate([p[0] for p in parts])
        pred = np.concatenate([p[1] for p in parts])
        return regression_scores(truth, pred)
    cm = np.sum(parts, axis=0)
    body = classification_report(cm, names)
    return {"overall_accuracy": body["overall_accuracy"], "macro_f1": body["macro_f1"],
            "classes": body["classes"], "confusion_matrix": cm.tolist()}
