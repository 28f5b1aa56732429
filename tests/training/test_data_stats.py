"""Class weights and band statistics on data with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from training.data import DataError, band_stats, class_counts, class_weights, normalise


@pytest.fixture()
def labels() -> np.ndarray:
    """Class 1: 6 px, class 2: 3 px, class 3: 1 px, class 4: none; plus unlabelled pixels."""
    flat = np.array([1] * 6 + [2] * 3 + [3] + [0] * 6, dtype=np.int64)
    return flat.reshape(1, 4, 4)


def test_counts_ignore_unlabelled_pixels(labels: np.ndarray) -> None:
    assert class_counts(labels, [1, 2, 3, 4]) == [6, 3, 1, 0]


def test_inverse_frequency_weights(labels: np.ndarray) -> None:
    w = class_weights(labels, [1, 2, 3, 4], method="inverse")
    assert w.weights == pytest.approx([10 / 18, 10 / 9, 10 / 3, 0.0])
    assert w.counts == [6, 3, 1, 0] and w.missing == [4]


def test_median_frequency_weights(labels: np.ndarray) -> None:
    w = class_weights(labels, [1, 2, 3, 4])          # frequencies 0.6, 0.3, 0.1: median 0.3
    assert w.weights == pytest.approx([0.5, 1.0, 3.0, 0.0])
    assert w.missing == [4]
    assert class_weights(labels, [3, 1]).weights == pytest.approx([0.5 * 7, 0.5 * 7 / 6])   # channel order


def test_weights_refuse_label_zero_unknown_methods_and_empty_training(labels: np.ndarray) -> None:
    with pytest.raises(DataError, match="unlabelled"):
        class_weights(labels, [0, 1])
    with pytest.raises(DataError, match="'inverse' or 'median'"):
        class_weights(labels, [1], method="log")
    with pytest.raises(DataError, match="none of the classes"):
        class_weights(labels, [7, 8])


def test_band_statistics_ignore_nodata_and_match_known_values() -> None:
    images = np.full((2, 2, 1, 101), np.nan, np.float32)
    images[0, 0, 0] = np.arange(101)                 # band 1: 0..100 in chip 0, nodata in chip 1
    images[0, 1, 0] = np.nan
    images[1, 1, 0, :4] = [1, 2, 3, 6]               # band 2: 1, 2, 3, 6 in chip 1
    stats = band_stats(images)
    assert stats.count == [101, 4]
    assert stats.mean == pytest.approx([50.0, 3.0]) and stats.std == pytest.approx([np.sqrt(850.0), np.sqrt(3.5)])
    assert stats.min == [0.0, 1.0] and stats.max == [100.0, 6.0]
    assert stats.p2 == pytest.approx([2.0, 1.06]) and stats.p98 == pytest.approx([98.0, 5.82])
    card = stats.card()
    assert list(card) == ["method", "mean", "std"] and card["method"] == "zscore"
    assert card["mean"] == pytest.approx([50.0, 3.0]) and card["std"] == pytest.approx(stats.std)
    assert all(isinstance(v, float) for v in card["mean"] + card["std"])


def test_a_constant_band_gets_unit_std_in_the_card_and_normalise_zeroes_nodata() -> None:
    images = np.stack([np.full((1, 2, 2), 5.0), np.array([[[1.0, 3.0], [np.nan, 5.0]]])], axis=1)
    card = band_stats(images.astype(np.float32)).card()
    assert card == {"method": "zscore", "mean": [5.0, 3.0], "std": [1.0, pytest.approx(np.sqrt(8 / 3))]}
    out = normalise(images.astype(np.float32), card)
    assert out.dtype == np.float32
    assert out[0, 0].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert out[0, 1, 1, 0] == 0.0 and out[0, 1, 0, 0] == pytest.approx(-2 / np.sqrt(8 / 3))
    with pytest.raises(DataError, match="no valid pixel"):
        band_stats(np.full((1, 1, 2, 2), np.nan, np.float32))


def test_normalise_applies_every_card_method_like_the_plugin() -> None:
    images = np.array([[[[100.0, 300.0], [np.nan, 200.0]]]], dtype=np.float32)
    minmax = normalise(images, {"method": "minmax", "min": [100], "max": [300]})
    assert minmax[0, 0].tolist() == [[0.0, 1.0], [0.0, 0.5]]
    scale = normalise(images, {"method": "scale", "factor": 0.01, "offset": -1})
    assert scale[0, 0].tolist() == [[0.0, 2.0], [0.0, 1.0]]
    assert np.isnan(images[0, 0, 1, 0]), "the input chips are left as they were"
