"""Paired comparison of the network with a baseline over the same held-out pixels: the two-sided exact sign test
(training.transfer_report.sign_test) and the Wilcoxon signed-rank test (scipy, when installed), over the
(fold, seed) pairs and, stricter because the seeds of one fold share its pixels, over the folds (seed means)."""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence, cast

import numpy as np

from ..transfer_report import sign_test


def wilcoxon(differences: Sequence[float]) -> tuple[Optional[float], str]:
    """Two-sided Wilcoxon signed-rank p-value, or None with the reason (no scipy, or no non-zero difference)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[d != 0]  # zero differences carry no sign (Wilcoxon's own convention), dropped up front
    if d.size == 0:
        return None, "every difference is 0"
    try:
        from scipy.stats import wilcoxon as test
    except ImportError:
        return None, "scipy is not installed"
    with warnings.catch_warnings():  # small samples and ties: scipy warns and picks its method; the note says so
        warnings.simplefilter("ignore")
        p = float(test(d, alternative="two-sided").pvalue)
    return p, (f"only {d.size} non-zero pairs: p cannot fall below {2 / 2 ** d.size:.2g}" if d.size < 6 else "")


def compare(net: Sequence[float], base: Sequence[float], higher_is_better: bool) -> dict[str, Any]:
    """Wins, losses and ties of the network (better = higher or lower), the mean difference (network - baseline)
    and both tests' p-values."""
    diff = np.asarray(net, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    better = diff > 0 if higher_is_better else diff < 0
    worse = diff < 0 if higher_is_better else diff > 0
    p, why = wilcoxon(cast(list[float], diff.tolist()))
    out: dict[str, Any] = {"pairs": int(diff.size), "network_better": int(better.sum()), "baseline_better": int(worse.sum()),
           "ties": int(diff.size - better.sum() - worse.sum()), "mean_difference": float(diff.mean()),
           "sign_test_p": sign_test(int(better.sum()), int(worse.sum())), "wilcoxon_p": p}
    if why:
        out["wilcoxon_note"] = why
    return out


def paired(rows: Sequence[dict[str, Any]], baseline: str, metric: str, higher_is_better: bool) -> dict[str, Any]:
    """The network against ``baseline`` on ``metric``: over (fold, seed) pairs and over folds."""
    def scores(method: str) -> dict[tuple[int, int], float]:
        return {(r["fold"], r["seed"]): float(r[metric]) for r in rows if r["method"] == method}

    net, base = scores("network"), scores(baseline)
    keys = sorted(set(net) & set(base))
    folds = sorted({k[0] for k in keys})
    fold_net = [float(np.mean([net[k] for k in keys if k[0] == f])) for f in folds]
    fold_base = [float(np.mean([base[k] for k in keys if k[0] == f])) for f in folds]
    return {"baseline": baseline, "metric": metric,
            "runs": compare([net[k] for k in keys], [base[k] for k in keys], higher_is_better),
            "folds": compare(fold_net, fold_base, higher_is_better)}
