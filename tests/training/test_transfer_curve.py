"""The transfer-vs-scratch experiment: spatial folds, chip draws, a fair pair of models, and a tiny end-to-end run."""
from __future__ import annotations

import csv
import json

import numpy as np
import torch

from training import transfer_curve as tc
from training.data.splits import block_keys
from training.nets import ConvAutoencoder
from training.train import majority_class


def test_spatial_folds_partition_the_blocks_with_balanced_chip_counts() -> None:
    rng = np.random.default_rng(0)
    origins = np.stack([np.zeros(60, int), rng.integers(0, 5, 60) * 64, rng.integers(0, 4, 60) * 64], axis=1)
    curve = tc.Curve(folds=3, chip=32, block=64)
    folds = tc.spatial_folds(origins, curve)
    keys, _ = block_keys(origins, 32, 64)
    assert set().union(*folds) == set(keys) and sum(len(f) for f in folds) == len(set(keys))
    loads = [sum(k in fold for k in keys) for fold in folds]
    biggest = max(keys.count(k) for k in set(keys))
    assert max(loads) - min(loads) <= biggest
    assert tc.spatial_folds(origins, curve) == folds            # seeded


def test_pick_draws_one_chip_per_class_first() -> None:
    labels = np.zeros((12, 4, 4), dtype=np.int64)
    for i, c in enumerate([1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 1, 2]):
        labels[i, :3] = c
    chosen = tc.pick(labels, 4, np.random.default_rng(5))
    assert len(set(chosen.tolist())) == 4 and set(majority_class(labels[chosen]).tolist()) == {1, 2, 3, 4}
    assert tc.pick(labels, 2, np.random.default_rng(5)).size == 2
    assert np.array_equal(tc.pick(labels, 0, np.random.default_rng(5)), np.arange(12))


def test_scratch_and_transfer_differ_only_in_the_encoder() -> None:
    torch.manual_seed(3)
    autoencoder = ConvAutoencoder(6, width=4, depth=2)
    scratch, transfer = (tc.build(m, autoencoder, 4, seed=7) for m in ("scratch", "transfer"))
    a, b = scratch.state_dict(), transfer.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        same = torch.equal(a[key], b[key])
        if key.startswith("encoder.") and key.endswith("weight") and a[key].dim() == 4:
            assert not same and torch.equal(b[key], autoencoder.state_dict()[key]), key
        elif not key.startswith("encoder."):
            assert same, key


def test_a_tiny_run_writes_both_curves(tmp_path) -> None:
    out = tmp_path / "transfer"
    assert tc.main(["--reports", str(out), "--sizes", "4,all", "--folds", "2", "--draws", "2", "--steps", "2",
                    "--pretrain-epochs", "1", "--threads", "1"]) == 0
    with open(out / "transfer_curve.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["chips"], r["method"]) for r in rows] == [("4", "scratch"), ("4", "transfer"), ("all", "scratch"),
                                                         ("all", "transfer")]
    assert all(0 <= float(r["overall_accuracy"]) <= 1 for r in rows)
    document = json.loads((out / "transfer_curve.json").read_text())
    assert len(document["runs"]) == 2 * (2 + 1) * 2 and document["classes"] == ["cleared", "fallen_dry", "forest", "water"]
    pixels = {(r["chips"], r["method"]): r["pixels"] for r in document["summary"]}
    assert pixels[("all", "scratch")] > 1000                  # every labelled pixel of the folds, once per draw
    assert pixels[(4, "scratch")] == pixels[(4, "transfer")] == 2 * pixels[("all", "transfer")]
    assert (out / "transfer_curve.png").stat().st_size > 0 and (out / "transfer_runs.csv").exists()
    assert "| labelled chips |" in (out / "README.md").read_text()
