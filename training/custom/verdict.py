"""The plain-words verdict of a run (does the network beat each baseline, with the test that says so) and what
to try next, from the cross-validated scores, the paired tests and the findings."""
from __future__ import annotations

from typing import Any, Optional

from .findings import Findings
from .source import Source

LABELS = {"network": "network", "majority": "majority class", "mean": "mean value",
          "random_forest": "per-pixel random forest"}
ALPHA = 0.05
METRICS = {"overall_accuracy": "overall accuracy", "macro_f1": "macro-F1", "rmse": "RMSE", "mae": "MAE", "r2": "R^2"}


def _p(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2g}" if value < 0.01 else f"{value:.2f}"


def sentence(comparison: dict[str, Any], summary: dict[str, Any], metric: str, higher: bool) -> str:
    """One sentence: the network against one baseline on ``metric`` (means, sign test over runs, per fold)."""
    base = comparison["baseline"]
    net_mean, base_mean = summary["network"][metric]["mean"], summary[base][metric]["mean"]
    runs, folds = comparison["runs"], comparison["folds"]
    ahead = net_mean > base_mean if higher else net_mean < base_mean
    floor = 2 / 2 ** folds["pairs"] if folds["pairs"] else 1.0
    per_fold = f"per fold p = {_p(folds['sign_test_p'])}" + (
        f", the least {folds['pairs']} folds allow" if abs(folds["sign_test_p"] - floor) < 1e-12 else "")
    figures = (f"{METRICS[metric]} {net_mean:.3f} vs {base_mean:.3f}, sign test p = {_p(runs['sign_test_p'])} "
               f"over {runs['pairs']} fold/seed pairs ({runs['network_better']} better, {runs['baseline_better']} "
               f"worse), {per_fold}; Wilcoxon p = {_p(runs['wilcoxon_p'])}")
    name = LABELS[base]
    if ahead and runs["sign_test_p"] < ALPHA:
        return f"The network beats the {name} ({figures})."
    if ahead:
        return f"The network is ahead of the {name} on average but not significantly ({figures})."
    return f"The network does not beat the {name} ({figures})."


def verdict(paired: list[dict[str, Any]], summary: dict[str, Any], metric: str, higher: bool) -> list[str]:
    """The random forest first: it is the bar that matters."""
    order = sorted(paired, key=lambda c: c["baseline"] != "random_forest")
    return [sentence(c, summary, metric, higher) for c in order]


def advice(paired: list[dict[str, Any]], summary: dict[str, Any], metric: str, higher: bool, findings: Findings,
           source: Optional[Source], blocks: int, pixel_m: Optional[float], task: str, chip: int) -> list[str]:
    tips: list[str] = []
    forest = next(c for c in paired if c["baseline"] == "random_forest")
    net, rf = summary["network"][metric]["mean"], summary["random_forest"][metric]["mean"]
    if not (net > rf if higher else net < rf) or forest["runs"]["sign_test_p"] >= ALPHA:
        tips.append("The random forest is the bar to beat: with these labels, per-pixel values and their local "
                    "relief and gradient carry as much as the network learnt, or more. Use its result as the "
                    "reference, and give the network more to learn from: more labelled area or more rasters "
                    "(several --image/--labels), or a pretrained encoder (--from terrain for a DEM, --from "
                    "spectral for multispectral bands).")
        tips.append(f"Try more context per chip if the classes are spatial patterns rather than pixel values "
                    f"(--chip {2 * chip} --block {4 * chip}, if the labels still fill enough blocks), or a "
                    "narrower network (--width 8) if the folds disagree a lot (a large std).")
    spread = summary["network"][metric]["std"]
    if spread > 0.1 * max(abs(summary["network"][metric]["mean"]), 1e-9):
        tips.append(f"The network's scores vary a lot between folds and seeds (std {spread:.3f}): with {blocks} "
                    "labelled blocks, a few blocks decide a fold; more labelled area narrows it.")
    if findings.of("null_class") or findings.of("lost_class"):
        tips.append("Some map units never reach the model (NULL class values or lost classes, see the findings): "
                    "fill the values, or choose a class field set on every feature.")
    if findings.of("fold_missing_class") or findings.of("fold_untrained_class"):
        tips.append("Some classes are missing from some folds: their scores rest on few blocks. More labels of them, "
                    "merging similar classes (--merge-class A=B), or dropping them (--drop-class) makes the "
                    "comparison steadier.")
    if source is not None and source.pixel_size_m and pixel_m and not 0.67 < pixel_m / source.pixel_size_m < 1.5:
        tips.append(f"The --from model was trained at {source.pixel_size_m:g} m pixels and this raster has "
                    f"{pixel_m:g} m: its stem and encoder see features at another scale; resample the raster to "
                    f"about {source.pixel_size_m:g} m or start from another encoder.")
    if task == "regression" and summary["network"]["r2"]["mean"] < 0.2:
        tips.append("R^2 is low: the bands explain little of the value; check that the target can be seen in "
                    "them at this pixel size.")
    return tips
