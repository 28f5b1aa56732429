"""Evaluation metrics on hand-computed cases, the report files, and the RX baseline (synthetic and ABU)."""
from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from training.evaluate import (MACRO_NOTE, classification_report, confusion_matrix, read_confusion_csv, report,
                               roc_auc, roc_curve)
from training.rx import read_abu, rx_scores

ABU = Path(__file__).resolve().parents[3] / "shared" / "data" / "anomaly" / "abu"

# Classes 1..4; the last two pixels are unlabelled (0) so their predictions (4 and 3) must not count.
Y_TRUE = np.array([1, 1, 1, 1, 2, 2, 2, 3, 0, 0])
Y_PRED = np.array([1, 1, 1, 2, 2, 2, 1, 2, 4, 3])
CM = np.array([[3, 1, 0, 0], [1, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
NAMES = ["water", "forest", "rock", "ice"]


def test_confusion_matrix_ignores_unlabelled_pixels() -> None:
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, [1, 2, 3, 4]), CM)
    # Rows and columns follow the given order of class ids, not their numeric order.
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, [4, 3, 2, 1]), CM[::-1, ::-1])


@pytest.mark.parametrize("y_true, y_pred, message", [
    ([1, 5], [1, 1], "label 5 is not one of the classes"),
    ([1, 2], [1, 7], "prediction 7 is not one of the classes"),
    ([1, 2], [1, 0], "prediction 0 is not one of the classes"),
])
def test_confusion_matrix_refuses_unknown_classes(y_true: list, y_pred: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(y_true), np.array(y_pred), [1, 2])


def test_classification_report_exact_values() -> None:
    r = classification_report(CM, NAMES)
    assert r["overall_accuracy"] == 5 / 8 and r["total"] == 8
    water, forest, rock, ice = r["classes"]
    assert (water["precision"], water["recall"], water["f1"], water["support"]) == (0.75, 0.75, 0.75, 4)
    assert forest["precision"] == 0.5 and forest["recall"] == pytest.approx(2 / 3)
    assert forest["f1"] == pytest.approx(4 / 7) and forest["predicted"] == 4
    # Present but never predicted: precision undefined, recall and F1 zero.
    assert (rock["precision"], rock["recall"], rock["f1"], rock["support"]) == (None, 0.0, 0.0, 1)
    # Neither present nor predicted: reported, every ratio undefined, left out of the macro average.
    assert (ice["precision"], ice["recall"], ice["f1"], ice["support"], ice["predicted"]) == (None, None, None, 0, 0)
    assert r["macro_f1"] == pytest.approx((0.75 + 4 / 7 + 0.0) / 3)
    assert r["macro_excluded"] == ["ice"] and r["macro_note"] == MACRO_NOTE


def test_a_class_only_predicted_counts_as_error_but_not_in_the_macro_average() -> None:
    cm = np.array([[4, 0, 1], [0, 5, 0], [0, 0, 0]])  # class 3 absent, once predicted for class 1
    r = classification_report(cm, ["a", "b", "c"])
    a, b, c = r["classes"]
    assert a["recall"] == 0.8 and a["f1"] == pytest.approx(8 / 9) and b["f1"] == 1.0
    assert (c["precision"], c["recall"], c["f1"]) == (0.0, None, 0.0)
    assert r["macro_f1"] == pytest.approx((8 / 9 + 1.0) / 2) and r["macro_excluded"] == ["c"]


def test_classification_report_refuses_an_empty_matrix() -> None:
    with pytest.raises(ValueError, match="empty"):
        classification_report(np.zeros((2, 2), dtype=int), ["a", "b"])


@pytest.mark.parametrize("scores, truth, expected", [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
    ([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.875),   # one positive tied with one negative: half a pair
    ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),     # all tied
    ([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1], 1.0),     # perfect
    ([4.0, 3.0, 2.0, 1.0], [0, 0, 1, 1], 0.0),     # inverted
    ([3.0, 1.0, 2.0], [1, 0, 1], 1.0),
])
def test_roc_auc_hand_computed(scores: list, truth: list, expected: float) -> None:
    assert roc_auc(np.array(scores), np.array(truth)) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_matches_pair_counting_and_the_curve_area() -> None:
    rng = np.random.default_rng(3)
    scores, truth = rng.integers(0, 6, 60).astype(float), rng.random(60) < 0.3  # many ties
    pos, neg = scores[truth], scores[~truth]
    pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg)) / (pos.size * neg.size)
    fpr, tpr, _ = roc_curve(scores, truth)
    assert roc_auc(scores, truth) == pytest.approx(pairs, abs=1e-12)
    assert np.trapz(tpr, fpr) == pytest.approx(pairs, abs=1e-12)


def test_roc_auc_refuses_one_class_and_nan() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="finite"):
        roc_auc(np.array([0.1, np.nan]), np.array([0, 1]))


def test_classification_report_files(tmp_path: Path) -> None:
    headline = report(tmp_path / "out", "geology", cm=CM, names=NAMES, title="Geology", extra={"command": "x"})
    assert headline == {"overall_accuracy": 5 / 8, "macro_f1": pytest.approx((0.75 + 4 / 7) / 3)}
    counts, names = read_confusion_csv(tmp_path / "out" / "geology_confusion.csv")
    np.testing.assert_array_equal(counts, CM)
    assert names == NAMES
    document = json.loads((tmp_path / "out" / "geology.json").read_text())
    assert document["confusion_matrix"] == CM.tolist() and document["command"] == "x"
    assert document["classes"][3]["f1"] is None
    png = (tmp_path / "out" / "geology_confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000


def test_anomaly_report_files(tmp_path: Path) -> None:
    scores, truth = np.array([0.1, 0.4, 0.35, 0.8, 0.05]), np.array([0, 0, 1, 1, 0])
    assert report(tmp_path, "rx", scores=scores, truth=truth) == {"roc_auc": pytest.approx(5 / 6)}
    rows = (tmp_path / "rx_roc.csv").read_text().splitlines()
    assert rows[0] == "false_positive_rate,true_positive_rate,threshold" and rows[1].startswith("0.0,0.0,")
    assert json.loads((tmp_path / "rx.json").read_text())["positives"] == 2
    assert (tmp_path / "rx_roc.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="either"):
        report(tmp_path, "bad", cm=CM, names=NAMES, scores=scores, truth=truth)


def _scene_with_anomalies(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correlated 8-band background (rank-3 signal plus noise); 12 pixels shifted along a weak direction."""
    rng = np.random.default_rng(seed)
    bands, size = 8, 40
    background = rng.standard_normal((3, size * size)).T @ rng.standard_normal((3, bands)) * 5
    cube = (background + 0.3 * rng.standard_normal((size * size, bands))).T.reshape(bands, size, size)
    truth = np.zeros((size, size), dtype=np.uint8)
    truth.flat[rng.choice(size * size, 12, replace=False)] = 1
    cube[:, truth == 1] += (rng.standard_normal(bands) * 1.5)[:, None]
    return cube + 100.0, truth


def test_rx_ranks_planted_anomalies_first() -> None:
    cube, truth = _scene_with_anomalies()
    scores = rx_scores(cube)
    assert roc_auc(scores, truth) > 0.95
    assert set(np.argsort(scores.ravel())[-12:]) == set(np.flatnonzero(truth))


def test_rx_is_the_mahalanobis_distance_and_honours_the_mask() -> None:
    cube, _ = _scene_with_anomalies(1)
    pixels = cube.reshape(cube.shape[0], -1).T
    centred = pixels - pixels.mean(axis=0)
    inverse = np.linalg.inv(np.cov(pixels, rowvar=False))
    expected = np.einsum("pb,bc,pc->p", centred, inverse, centred)
    np.testing.assert_allclose(rx_scores(cube, ridge=0.0).ravel(), expected, rtol=1e-9)
    valid = np.ones(cube.shape[1:], dtype=bool)
    valid[:5] = False
    wild = cube.copy()
    wild[:, :5] = 1e6  # masked out: must not move the statistics
    a, b = rx_scores(cube, valid), rx_scores(wild, valid)
    assert np.isnan(a[:5]).all() and np.isfinite(a[5:]).all()
    np.testing.assert_allclose(a[5:], b[5:], rtol=1e-9)


def test_rx_survives_a_singular_covariance() -> None:
    cube, truth = _scene_with_anomalies(2)
    cube = np.concatenate([cube, cube[:2], np.full((1, *cube.shape[1:]), 7.0)])  # duplicated and constant bands
    scores = rx_scores(cube)
    assert np.isfinite(scores).all() and roc_auc(scores, truth) > 0.95


@pytest.mark.skipif(not (ABU / "abu-airport-4_data.tif").exists(),
                    reason=f"the ABU benchmark is not at {ABU} (the shared data folder beside the repository)")
def test_rx_reproduces_the_reference_auc_on_abu_airport_4() -> None:
    cube, truth = read_abu(ABU, "abu-airport-4")
    assert roc_auc(rx_scores(cube), truth) == pytest.approx(0.953, abs=1e-3)  # ../shared/data/README.md
