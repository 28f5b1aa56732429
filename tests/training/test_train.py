"""The training loop on tiny synthetic problems: it learns, it is deterministic, the freeze schedule holds,
early stopping and best-weight restoring work, and the autoencoder's reconstruction error falls."""
from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.data import ChipSet  # noqa: E402
from training.nets import ConvAutoencoder, PatchClassifier, UNet  # noqa: E402
from training.train import (IGNORE, Epoch, TrainConfig, majority_class, seed_everything, to_targets,  # noqa: E402
                            train, validate, prepare)

FAST = TrainConfig(epochs=10, batch_size=4, lr=0.02, weight_decay=0.0, patience=None, threads=1)


def sign_problem(n: int, seed: int, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 where band 1's hidden signal is positive, class 2 where negative; the model sees it with noise
    (band 2 is pure noise). Some pixels are unlabelled (0)."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, size, size)).astype(np.float32)
    images = np.stack([signal + 0.1 * rng.standard_normal(signal.shape),
                       rng.standard_normal(signal.shape)], axis=1).astype(np.float32)
    labels = np.where(signal > 0, 1, 2).astype(np.int64)
    labels[rng.random(labels.shape) < 0.1] = 0
    return images, labels


def smooth_chips(n: int, seed: int, size: int = 16) -> np.ndarray:
    """Two-band chips of smooth gradients and blobs: easy to compress, so an autoencoder can learn them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    chips = []
    for _ in range(n):
        a, b, c = rng.standard_normal(3)
        band = a * xx + b * yy + c * np.exp(-((xx - rng.random()) ** 2 + (yy - rng.random()) ** 2) * 8)
        chips.append([band, 0.5 * band + 0.1 * a])
    return np.asarray(chips, dtype=np.float32)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_label_helpers() -> None:
    labels = np.array([[[1, 2], [2, 0]], [[0, 0], [0, 0]], [[3, 1], [1, 3]]])
    np.testing.assert_array_equal(majority_class(labels), [2, 0, 1])  # a tie goes to the smaller id
    np.testing.assert_array_equal(to_targets(np.array([0, 1, 3])), [IGNORE, 0, 2])


def test_unet_learns_and_reruns_identically(caplog: pytest.LogCaptureFixture) -> None:
    train_set, val_set = sign_problem(48, seed=1), sign_problem(8, seed=2)
    runs = []
    for _ in range(2):
        seed_everything(7)
        model = UNet(2, 2, width=4, depth=1)
        with caplog.at_level(logging.INFO, logger="training.train"):
            result = train(model, train_set, val_set, FAST, "segmentation")
        runs.append((result, _weights(model)))
    (first, weights), (second, again) = runs
    assert first.metric == "macro_f1" and first.best_metric > 0.9
    assert first.best_metric == max(first.val_metric) and len(first.history) == FAST.epochs
    assert first.val_metric == second.val_metric and first.train_loss == second.train_loss
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert sum("validation macro_f1" in r.getMessage() for r in caplog.records) == 2 * FAST.epochs


def test_best_weights_are_restored_and_early_stopping() -> None:
    train_set, val_set = sign_problem(16, seed=3), sign_problem(8, seed=4)
    seed_everything(0)
    model = UNet(2, 2, width=4, depth=1)
    result = train(model, train_set, val_set, FAST, "segmentation")
    x, labels = prepare(val_set, "segmentation", None)
    assert validate(model, x, labels, "segmentation", 8) == result.best_metric
    # With a zero learning rate nothing improves after epoch 1: stop after `patience` stale epochs.
    frozen_lr = TrainConfig(epochs=10, batch_size=8, lr=0.0, patience=2, augment=False, threads=1)
    stalled = train(UNet(2, 2, width=4, depth=1), train_set, val_set, frozen_lr, "segmentation")
    assert stalled.stopped_early and len(stalled.history) == 3 and stalled.best_epoch == 1


def test_freeze_schedule_keeps_the_encoder_then_fine_tunes_it() -> None:
    train_set, val_set = sign_problem(16, seed=5), sign_problem(8, seed=6)
    seed_everything(1)
    model = UNet(2, 2, width=4, depth=1)
    before = {k: v.clone() for k, v in _weights(model).items()}
    snapshots: list[tuple[Epoch, dict[str, torch.Tensor]]] = []
    config = TrainConfig(epochs=3, batch_size=8, lr=0.02, patience=None, freeze_encoder_epochs=2, threads=1)
    train(model, train_set, val_set, config, "segmentation", on_epoch=lambda e, m: snapshots.append((e, _weights(m))))
    assert [e.encoder_frozen for e, _ in snapshots] == [True, True, False]
    encoder_keys = [k for k in before if k.startswith("encoder.")]  # weights and batch-norm statistics
    for _, state in snapshots[:2]:
        assert all(torch.equal(state[k], before[k]) for k in encoder_keys)
        assert not torch.equal(state["head.weight"], before["head.weight"])
    assert not all(torch.equal(snapshots[2][1][k], before[k]) for k in encoder_keys)
    assert all(p.requires_grad for p in model.parameters())


def test_autoencoder_reconstruction_error_falls_and_invalid_pixels_are_masked() -> None:
    images = smooth_chips(32, seed=0)
    images[0, :, :3, :3] = np.nan  # invalid pixels: normalised to 0 and left out of the loss
    train_set = ChipSet(images[:24], np.zeros((24, 16, 16), np.int64), np.zeros((24, 3), np.int64), {}, (1, 2), 16)
    val_set = (images[24:], None)
    normalization = {"method": "zscore", "mean": [0.0, 0.0], "std": [1.0, 1.0]}
    config = TrainConfig(epochs=10, batch_size=4, lr=0.005, patience=None, normalization=normalization, threads=1)
    seed_everything(0)
    result = train(ConvAutoencoder(2, width=4, depth=1), train_set, val_set, config, "anomaly")
    assert result.metric == "reconstruction_error" and np.isfinite(result.train_loss).all()
    assert result.best_metric < 0.5 * result.val_metric[0]
    with pytest.raises(ValueError, match="normalisation"):
        train(ConvAutoencoder(2, width=4, depth=1), (images, None), val_set, FAST, "anomaly")


def test_patch_classifier_learns_majority_labels() -> None:
    def chips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        kind = rng.integers(1, 3, n)
        images = rng.standard_normal((n, 2, 8, 8)).astype(np.float32) * 0.5
        images[:, 0] += np.where(kind == 1, 1.0, -1.0)[:, None, None]
        labels = np.repeat(kind[:, None, None], 64, axis=1).reshape(n, 8, 8)
        labels[:, :2] = 0  # partly unlabelled chips keep their majority class
        return images, labels

    seed_everything(0)
    config = TrainConfig(epochs=5, batch_size=8, lr=0.02, patience=None, threads=1, class_weights=[1.0, 1.0])
    result = train(PatchClassifier(2, 2, width=4, depth=1), chips(32, 1), chips(16, 2), config, "classification")
    assert result.best_metric > 0.9


def test_refuses_labels_beyond_the_model_outputs() -> None:
    images, labels = sign_problem(4, seed=0)
    labels[0, 0, 0] = 3
    with pytest.raises(ValueError, match="class id 3 but the model has 2 outputs"):
        train(UNet(2, 2, width=4, depth=1), (images, labels), (images, labels), FAST, "segmentation")
