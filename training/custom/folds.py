"""Spatial k-fold cross-validation over blocks, and the training chips of each block.

A block is a square of ``block`` px of one raster, keyed (raster, column, row). Only blocks holding labelled
pixels take part. Blocks are dealt to k folds with about equal labelled pixels (a seeded shuffle, then largest
first to the lightest fold), so every labelled pixel is held out exactly once. Inside a fold, an inner share of
the training blocks is set aside to choose the epoch; the held-out fold is never used to choose anything.
Chips lie wholly inside one block (laid per block every ``stride`` px), so no chip straddles two folds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence, cast

import numpy as np

from ..data.chips import grid_positions
from .findings import Refused
from .targets import Dataset

BlockKey = tuple[int, int, int]


def block_pixels(dataset: Dataset, block: int) -> dict[BlockKey, int]:
    """Labelled pixels per block (blocks without any are left out), each pixel counted once."""
    counts: dict[BlockKey, int] = {}
    for index in range(len(dataset.scenes)):
        rows, cols = np.nonzero(dataset.labelled(index))
        keys, n = np.unique(np.stack([cols // block, rows // block], axis=1), axis=0, return_counts=True)
        for (col, row), c in zip(cast(list[list[int]], keys.tolist()), cast(list[int], n.tolist())):
            counts[(index, int(col), int(row))] = int(c)
    return counts


def assign_folds(counts: dict[BlockKey, int], k: int, seed: int = 0) -> list[list[BlockKey]]:
    """The blocks dealt into ``k`` folds of about equal labelled pixels (deterministic for a seed)."""
    if len(counts) < k:
        raise Refused(f"{len(counts)} labelled blocks cannot make {k} folds: use smaller blocks (--block) or fewer "
                      "folds (--folds).")
    order = sorted(counts)
    order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    folds: list[list[BlockKey]] = [[] for _ in range(k)]
    load = [0] * k
    for key in sorted(order, key=lambda b: -counts[b]):  # stable: ties keep the shuffled order
        lightest = int(np.argmin(load))
        folds[lightest].append(key)
        load[lightest] += counts[key]
    return [sorted(f) for f in folds]


def inner_split(blocks: Sequence[BlockKey], counts: dict[BlockKey, int], share: float,
                seed: int) -> tuple[list[BlockKey], list[BlockKey]]:
    """(fit, validation) blocks: shuffled blocks go to validation until it holds ``share`` of the labelled
    pixels; at least one block each."""
    if len(blocks) < 2:
        raise Refused(f"a fold's training side has {len(blocks)} labelled block: nothing is left to choose the "
                      "epoch on. Use smaller blocks (--block) or fewer folds (--folds).")
    order = [blocks[i] for i in np.random.default_rng(seed).permutation(len(blocks))]
    total = sum(counts[b] for b in blocks)
    validation: list[BlockKey] = []
    for key in order[:-1]:
        if sum(counts[b] for b in validation) >= share * total:
            break
        validation.append(key)
    fit = [b for b in blocks if b not in validation]
    return sorted(fit), sorted(validation)


def block_masks(dataset: Dataset, blocks: Iterable[BlockKey], block: int) -> list[np.ndarray]:
    """Per raster, (H, W) bool: the pixels inside ``blocks``."""
    masks = [np.zeros(s.shape, dtype=bool) for s in dataset.scenes]
    for index, col, row in blocks:
        masks[index][row * block:(row + 1) * block, col * block:(col + 1) * block] = True
    return masks


@dataclass
class Chips:
    """Every training chip: images (N, C, s, s) raw (NaN invalid), labels (N, s, s), its block and origin."""

    images: np.ndarray
    labels: np.ndarray
    keys: list[BlockKey]
    origins: np.ndarray           # (N, 3): raster, x, y
    uncovered: int                # labelled pixels inside no chip (never trained on; still scored when held out)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def indices(self, blocks: Iterable[BlockKey]) -> np.ndarray:
        chosen = set(blocks)
        return np.array([i for i, k in enumerate(self.keys) if k in chosen], dtype=np.int64)


def cut_chips(dataset: Dataset, chip: int, stride: int, block: int, max_nodata: float = 0.5) -> Chips:
    """Chips of ``chip`` px every ``stride`` px inside each block, kept when they hold a labelled pixel and at
    most ``max_nodata`` of their pixels are invalid."""
    images, labels, keys, origins = [], [], [], []
    uncovered = 0
    for index, scene in enumerate(dataset.scenes):
        height, width = scene.shape
        labelled, valid = dataset.labelled(index), scene.valid
        covered = np.zeros_like(labelled)
        for y in grid_positions(height, chip, stride, block):
            for x in grid_positions(width, chip, stride, block):
                window = (slice(y, y + chip), slice(x, x + chip))
                if not labelled[window].any() or 1.0 - valid[window].mean() > max_nodata:
                    continue
                images.append(scene.image[(slice(None), *window)])
                labels.append(dataset.truth[index][window])
                keys.append((index, x // block, y // block))
                origins.append((index, x, y))
                covered[window] = True
        uncovered += int((labelled & ~covered).sum())
    if not images:
        raise Refused(f"no chip of {chip} px holds a labelled pixel with enough valid image: use a smaller --chip.")
    return Chips(np.stack(images).astype(np.float32), np.stack(labels), keys, np.asarray(origins, dtype=np.int64),
                 uncovered)
