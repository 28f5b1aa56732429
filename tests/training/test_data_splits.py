"""Spatial block splits: whole blocks per split, disjoint, seeded, fractions respected, no straddling chip."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data import SPLITS, DataError, block_keys, block_split, grid_positions, split_report

SIZE, BLOCK = 16, 64


def grid_origins(width: int, height: int, stride: int, rasters: int = 1, block: int | None = None) -> np.ndarray:
    return np.array([(r, x, y) for r in range(rasters)
                     for y in grid_positions(height, SIZE, stride, block)
                     for x in grid_positions(width, SIZE, stride, block)], dtype=np.int64)


def test_every_block_lies_in_one_split_and_the_splits_partition_the_chips() -> None:
    origins = grid_origins(1280, 1280, 8, rasters=2, block=BLOCK)       # 2 x 400 blocks of 49 chips
    split = block_split(origins, SIZE, BLOCK, seed=3)
    keys, inside = block_keys(origins, SIZE, BLOCK)
    assert inside.all() and len(split.dropped()) == 0
    parts = [set(split.indices(name).tolist()) for name in SPLITS]
    assert sum(len(p) for p in parts) == len(origins) and set().union(*parts) == set(range(len(origins)))
    for i, key in enumerate(keys):
        assert SPLITS[split.assignment[i]] == split.blocks[key]
    shares = [len(p) / len(origins) for p in parts]
    assert shares == pytest.approx([0.7, 0.15, 0.15], abs=0.01)
    assert split.warnings == []


def test_a_split_is_deterministic_for_its_seed() -> None:
    origins = grid_origins(640, 640, 16)
    first, again = block_split(origins, SIZE, BLOCK, seed=7), block_split(origins, SIZE, BLOCK, seed=7)
    assert np.array_equal(first.assignment, again.assignment) and first.blocks == again.blocks
    other = block_split(origins, SIZE, BLOCK, seed=8)
    assert not np.array_equal(first.assignment, other.assignment)


def test_chips_crossing_a_block_edge_are_dropped_and_overlapping_chips_share_a_split() -> None:
    origins = grid_origins(320, 320, 8)                                  # the plain grid: some cross edges
    split = block_split(origins, SIZE, BLOCK, fractions=(0.5, 0.25, 0.25), seed=1)
    x, y = origins[:, 1], origins[:, 2]
    crossing = (x // BLOCK != (x + SIZE - 1) // BLOCK) | (y // BLOCK != (y + SIZE - 1) // BLOCK)
    assert np.array_equal(np.flatnonzero(crossing), split.dropped())
    kept = origins[~crossing]
    overlap = ((np.abs(kept[:, None, 1] - kept[None, :, 1]) < SIZE)
               & (np.abs(kept[:, None, 2] - kept[None, :, 2]) < SIZE))
    assigned = split.assignment[~crossing]
    assert overlap.sum() > 4 * len(kept)                       # stride 8 < 16: plenty of overlapping pairs
    assert np.all(assigned[:, None] == assigned[None, :], where=overlap)


def test_fractions_follow_chips_even_when_blocks_are_unevenly_full() -> None:
    rng = np.random.default_rng(0)
    full = grid_origins(1280, 1280, 16, block=BLOCK)
    origins = full[rng.random(len(full)) < np.where(full[:, 1] < 320, 0.9, 0.1)]   # dense west, sparse east
    split = block_split(origins, SIZE, BLOCK, fractions=(0.6, 0.2, 0.2), seed=0)
    shares = [len(split.indices(name)) / len(origins) for name in SPLITS]
    assert shares == pytest.approx([0.6, 0.2, 0.2], abs=0.02)


def test_user_test_blocks_are_exactly_the_test_split() -> None:
    origins = grid_origins(640, 640, 16, block=BLOCK)
    held = {(0, 2, 3), (0, 9, 9)}
    split = block_split(origins, SIZE, BLOCK, seed=0, test_blocks=held)
    assert {k for k, s in split.blocks.items() if s == "test"} == held
    keys, _ = block_keys(origins, SIZE, BLOCK)
    assert set(split.indices("test").tolist()) == {i for i, k in enumerate(keys) if k in held}
    train, validation = len(split.indices("train")), len(split.indices("validation"))
    assert train / (train + validation) == pytest.approx(0.7 / 0.85, abs=0.03)


def test_too_few_blocks_warn_and_bad_parameters_are_refused() -> None:
    split = block_split(grid_origins(64, 64, 16), SIZE, BLOCK)
    assert len(split.indices("train")) == 16
    assert any("validation split has no chips" in w for w in split.warnings)
    with pytest.raises(DataError, match="cannot hold chips"):
        block_split(grid_origins(64, 64, 16), SIZE, 8)
    with pytest.raises(DataError, match="fractions"):
        block_split(grid_origins(64, 64, 16), SIZE, BLOCK, fractions=(1.0, -1.0, 0.0))


def test_the_report_counts_chips_blocks_and_pixels_per_class() -> None:
    origins = np.array([(0, 0, 0), (0, 16, 0), (0, 64, 0)], dtype=np.int64)
    labels = np.zeros((3, SIZE, SIZE), np.int64)
    labels[0, :4] = 1
    labels[1, :, :2] = 2
    labels[2] = 2
    split = block_split(origins, SIZE, BLOCK, seed=0, test_blocks=[(0, 1, 0)], fractions=(1, 0, 0))
    report = split_report(split, labels, {"a": 1, "b": 2})
    assert report["train"] == {"chips": 2, "blocks": 1, "pixels": {"a": 64, "b": 32}}
    assert report["test"] == {"chips": 1, "blocks": 1, "pixels": {"a": 0, "b": 256}}
    assert report["validation"] == {"chips": 0, "blocks": 0, "pixels": {"a": 0, "b": 0}}


@settings(max_examples=60, deadline=None)
@given(stride=st.integers(4, 24), block=st.sampled_from([16, 32, 48]), seed=st.integers(0, 2**32 - 1),
       width=st.integers(16, 200), height=st.integers(16, 200))
def test_no_block_is_ever_shared_between_splits(stride: int, block: int, seed: int, width: int,
                                                height: int) -> None:
    origins = grid_origins(width, height, stride)
    split = block_split(origins, SIZE, block, seed=seed)
    keys, inside = block_keys(origins, SIZE, block)
    seen: dict[tuple[int, int, int], int] = {}
    for key, ok, s in zip(keys, inside, split.assignment):
        assert (s == -1) == (not ok)
        if ok:
            assert seen.setdefault(key, int(s)) == s


def test_overlapping_chips_count_each_pixel_once() -> None:
    """Two 4 px chips 2 px apart share 8 pixels: per chip they count 32 labelled pixels, once 24."""
    labels = np.ones((2, 4, 4), dtype=np.int64)
    origins = np.array([[0, 0, 0], [0, 2, 0]])
    split = block_split(origins, 4, 64, (1, 0, 0))
    assert split_report(split, labels, {"a": 1})["train"]["pixels"] == {"a": 32}
    assert split_report(split, labels, {"a": 1}, origins)["train"]["pixels"] == {"a": 24}
