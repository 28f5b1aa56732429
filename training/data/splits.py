"""Train / validation / test split by spatial blocks, so neighbouring chips never land in different splits.

A block is a square of ``block`` px of one raster, keyed ``(raster index, column, row)``. Every chip lies in
exactly one block (chips that cross a block edge are dropped, which never happens to chips laid with the
same ``block`` by :func:`training.data.chips.extract_chips`), and all chips of a block share its split; chips
in different blocks never overlap. Blocks are shuffled by a seeded RNG and dealt, one by one, to the split
furthest below its target share of chips, so the chip fractions are respected even when sparse labels leave
some blocks much fuller than others. A user-given set of test blocks is held out instead of a random one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from .errors import DataError

SPLITS = ("train", "validation", "test")
DROPPED = -1
BlockKey = tuple[int, int, int]


@dataclass(frozen=True)
class Split:
    """``assignment[i]`` is the index in :data:`SPLITS` of chip i's split, or :data:`DROPPED`."""

    assignment: np.ndarray
    blocks: dict[BlockKey, str]
    warnings: list[str] = field(default_factory=list)

    def indices(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.assignment == SPLITS.index(name))

    def dropped(self) -> np.ndarray:
        return np.flatnonzero(self.assignment == DROPPED)


def block_keys(origins: np.ndarray, size: int, block: int) -> tuple[list[BlockKey], np.ndarray]:
    """Each chip's block key and whether the chip lies wholly inside it."""
    origins = np.asarray(origins, dtype=np.int64).reshape(-1, 3)
    raster, x, y = origins[:, 0], origins[:, 1], origins[:, 2]
    col, row = x // block, y // block
    inside = ((x + size - 1) // block == col) & ((y + size - 1) // block == row)
    keys = [(int(r), int(c), int(w)) for r, c, w in zip(raster, col, row)]
    return keys, inside


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or f.sum() <= 0:
        raise DataError(f"fractions are (train, validation, test) shares >= 0, not all 0; got {tuple(fractions)}.")
    return f / f.sum()


def _deal(order: Sequence[BlockKey], counts: Mapping[BlockKey, int], shares: np.ndarray,
          splits: Sequence[int]) -> dict[BlockKey, int]:
    """Give each block in ``order`` to the split (among ``splits``) furthest below its target chip count."""
    total = sum(counts[k] for k in order)
    targets = shares * total
    dealt = np.zeros(3)
    out: dict[BlockKey, int] = {}
    for key in order:
        deficit = [(targets[s] - dealt[s], -s) for s in splits if shares[s] > 0]
        chosen = -max(deficit)[1]
        out[key] = chosen
        dealt[chosen] += counts[key]
    return out


def block_split(origins: np.ndarray, size: int, block: int,
                fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                test_blocks: Optional[Iterable[BlockKey]] = None) -> Split:
    """Assign chips (their ``origins`` rows: raster index, x, y; edge ``size`` px) to splits by block.

    With ``test_blocks`` those blocks (and only they) are the test split, and the other blocks are dealt to
    train and validation in the ratio of their fractions. Deterministic for a given seed.
    """
    if block < size:
        raise DataError(f"blocks of {block} px cannot hold chips of {size} px: use blocks of several chips.")
    shares = _check_fractions(fractions)
    keys, inside = block_keys(origins, size, block)
    counts: dict[BlockKey, int] = {}
    for key, ok in zip(keys, inside):
        if ok:
            counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts)
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    held = set(test_blocks) if test_blocks is not None else set()
    if held:
        shares = shares.copy()
        shares[2] = 0.0
        if shares.sum() == 0:
            shares[0] = 1.0
        dealt = _deal([k for k in shuffled if k not in held], counts, shares / shares.sum(), (0, 1))
        dealt.update({k: 2 for k in shuffled if k in held})
    else:
        dealt = _deal(shuffled, counts, shares, (0, 1, 2))
    assignment = np.array([dealt[k] if ok else DROPPED for k, ok in zip(keys, inside)], dtype=np.int64)
    warnings = [f"{name} split has no chips: use smaller blocks, more data or other fractions"
                for s, name in enumerate(SPLITS) if not np.any(assignment == s) and
                (shares[s] > 0 or (s == 2 and held))]
    if held - set(counts):
        warnings.append(f"test blocks without chips: {sorted(held - set(counts))}")
    return Split(assignment, {k: SPLITS[v] for k, v in sorted(dealt.items())}, warnings)


def _once(labels: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """The labels of the pixels the chips cover, each pixel once however many overlapping chips hold it."""
    size = labels.shape[-1]
    origins = np.asarray(origins, dtype=np.int64).reshape(-1, 3)
    rows, cols = np.mgrid[0:size, 0:size]
    keys = np.stack([np.repeat(origins[:, 0], size * size),
                     (origins[:, 1:2] + cols.ravel()[None]).ravel(),
                     (origins[:, 2:3] + rows.ravel()[None]).ravel()], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.asarray(labels).reshape(-1)[first]


def split_report(split: Split, labels: np.ndarray, classes: Mapping[str, int],
                 origins: Optional[np.ndarray] = None) -> dict[str, dict]:
    """Per split: number of chips and blocks, and labelled pixels per class name. With the chips' ``origins``
    each pixel is counted once even where chips overlap (a stride below the chip size); without, per chip."""
    report: dict[str, dict] = {}
    for name in SPLITS:
        index = split.indices(name)
        chosen = labels[index] if origins is None else _once(labels[index], np.asarray(origins)[index])
        values, counts = np.unique(chosen, return_counts=True)
        by_id = dict(zip(values.tolist(), counts.tolist()))
        report[name] = {
            "chips": int(len(index)),
            "blocks": sum(1 for s in split.blocks.values() if s == name),
            "pixels": {cls: int(by_id.get(cid, 0)) for cls, cid in classes.items()},
        }
    return report
