"""Spectral units: k-means on a pixel sample of standardised per-pixel features, with k chosen by silhouette.

k-means (Lloyd's iterations) starts from k-means++ seeds (Arthur & Vassilvitskii 2007) with a fixed seed, best of
`N_INIT` starts by inertia. When k is not given, every k in `K_RANGE` (3..12) is fitted on a subsample and the one
with the highest mean silhouette (Rousseeuw 1987), measured on a subsample of `SILHOUETTE_SAMPLE` pixels, wins:
the silhouette compares each pixel's mean distance to its own unit with that to the nearest other unit, so it
rewards units that are compact and well apart, and does not grow with k as inertia does. Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K_RANGE = range(3, 13)
N_INIT = 3
MAX_ITER = 100
SILHOUETTE_SAMPLE = 2000
SELECT_SAMPLE = 4000
SEED = 0


@dataclass(frozen=True)
class KMeans:
    centroids: np.ndarray  # (k, features)
    labels: np.ndarray  # (n,) 0..k-1 of the fitted sample
    inertia: float

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])


def sq_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, k) squared Euclidean distances."""
    d = (x * x).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d, 0.0)


def assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The nearest centroid of each row of x (0-based)."""
    return np.argmin(sq_distances(x.astype(np.float64), centroids), axis=1)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centroids = [x[rng.integers(len(x))]]
    closest = sq_distances(x, np.asarray(centroids))[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        pick = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=closest / total)
        centroids.append(x[pick])
        closest = np.minimum(closest, sq_distances(x, x[pick][None])[:, 0])
    return np.asarray(centroids)


def kmeans(x: np.ndarray, k: int, seed: int = SEED, n_init: int = N_INIT) -> KMeans:
    """The best of `n_init` k-means++ starts; units ordered by size (largest first), ties by centroid."""
    x = np.asarray(x, dtype=np.float64)
    k = max(1, min(k, len(x)))
    rng = np.random.default_rng(seed)
    best: KMeans | None = None
    for _ in range(n_init):
        centroids = _plus_plus(x, k, rng)
        labels = np.full(len(x), -1, dtype=np.int64)
        for _ in range(MAX_ITER):
            nearest = np.argmin(sq_distances(x, centroids), axis=1)
            if np.array_equal(nearest, labels):
                break
            labels = nearest
            counts = np.bincount(labels, minlength=k)
            sums = np.stack([np.bincount(labels, weights=x[:, f], minlength=k) for f in range(x.shape[1])], 1)
            centroids = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids)
        inertia = float(np.min(sq_distances(x, centroids), axis=1).sum())
        if best is None or inertia < best.inertia - 1e-9:
            best = KMeans(centroids, labels, inertia)
    assert best is not None
    return _by_size(best)


def _by_size(fit: KMeans) -> KMeans:
    counts = np.bincount(fit.labels, minlength=fit.k)
    order = sorted(range(fit.k), key=lambda j: (-counts[j], tuple(fit.centroids[j])))
    rank = np.empty(fit.k, dtype=np.int64)
    rank[order] = np.arange(fit.k)
    return KMeans(fit.centroids[order], rank[fit.labels], fit.inertia)


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the rows of x under `labels` (pixels alone in their unit count 0)."""
    x = np.asarray(x, dtype=np.float64)
    units = np.unique(labels)
    if len(units) < 2:
        return -1.0
    d = np.sqrt(sq_distances(x, x))
    onehot = (labels[:, None] == units[None, :]).astype(np.float64)
    sums, counts = d @ onehot, onehot.sum(0)
    own = np.searchsorted(units, labels)
    rows = np.arange(len(x))
    same = counts[own] - 1
    a = np.where(same > 0, sums[rows, own] / np.maximum(same, 1), 0.0)
    others = sums / counts[None, :]
    others[rows, own] = np.inf
    b = others.min(1)
    s = np.where(same > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def choose_k(x: np.ndarray, ks: range = K_RANGE, seed: int = SEED) -> tuple[KMeans, dict[int, float]]:
    """The fit (on all of x) for the k with the highest silhouette, and the silhouette of every k tried. Each k is
    fitted on a subsample of `SELECT_SAMPLE` rows (two starts) and scored on `SILHOUETTE_SAMPLE` of them."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    pool = x[rng.choice(len(x), size=min(SELECT_SAMPLE, len(x)), replace=False)]
    probe = rng.choice(len(pool), size=min(SILHOUETTE_SAMPLE, len(pool)), replace=False)
    distinct = len(np.unique(pool, axis=0))
    scores: dict[int, float] = {}
    for k in ks:
        if k > distinct:
            break
        fit = kmeans(pool, k, seed, n_init=2)
        scores[k] = silhouette(pool[probe], fit.labels[probe])
    best = max(scores, key=lambda k: (scores[k], -k)) if scores else max(1, min(distinct, len(x)))
    return kmeans(x, best, seed), scores
