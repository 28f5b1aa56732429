"""The baselines every network is compared with, on the same folds and pixels: the majority class (or the mean
value) of the fold's training pixels, and a per-pixel random forest (scikit-learn) on the input bands and simple
derivatives (:mod:`training.custom.features`), trained on a seeded subsample of the fold's training pixels."""
from __future__ import annotations

from typing import Any

import numpy as np

MAX_PIXELS = 30_000     # training pixels per classification forest (a seeded subsample)
MAX_PIXELS_REGRESSION = 20_000  # regression trees grow far deeper (no pure leaves): fewer pixels keep it minutes
TREES = 100


def majority(train_labels: np.ndarray) -> int:
    """The most frequent class id of the training pixels (the smallest on ties)."""
    values, counts = np.unique(train_labels, return_counts=True)
    return int(values[np.argmax(counts)])


def _sample(n: int, seed: int, limit: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, limit, replace=False)) if n > limit else np.arange(n)


def random_forest(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, task: str, seed: int,
                  threads: int) -> np.ndarray:
    """Predictions for (P, F) test pixels from a forest fitted on (P, F) training pixels; class-balanced for
    segmentation (the network gets class weights too)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    keep = _sample(len(x_train), seed, MAX_PIXELS_REGRESSION if task == "regression" else MAX_PIXELS)
    model: Any
    if task == "regression":  # a third of the features per split (Breiman's default for regression): 5x faster
        model = RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, max_features=1 / 3, n_jobs=threads,
                                      random_state=seed)
    else:
        model = RandomForestClassifier(n_estimators=TREES, min_samples_leaf=2, class_weight="balanced",
                                       n_jobs=threads, random_state=seed)
    model.fit(x_train[keep], y_train[keep])
    return np.asarray(model.predict(x_test))


def describe(task: str) -> dict[str, str]:
    regression = task == "regression"
    forest = (f"scikit-learn RandomForest{'Regressor' if regression else 'Classifier'}, {TREES} trees, "
              f"min_samples_leaf 2, {'a third of the features' if regression else 'sqrt(features)'} per split"
              f"{'' if regression else ', class_weight balanced'}, at most "
              f"{MAX_PIXELS_REGRESSION if regression else MAX_PIXELS} training pixels per fold (seeded subsample); "
              "features per band: value, value minus its local mean at radii 2, 5 and 10 px, gradient magnitude")
    first = ("the mean of the fold's training values" if task == "regression"
             else "the majority class of the fold's training pixels")
    return {"majority" if task != "regression" else "mean": first, "random_forest": forest}
