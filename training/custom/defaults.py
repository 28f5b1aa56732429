"""Defaults sized from the data, each printed with its reason: block and chip from the raster size and the label
extent (a small map is never one block), the network from the amount of labelled data, epochs from the number of
optimiser steps they give, folds from the labelled blocks, seeds from the cost of a run."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .findings import Choices, Refused
from .folds import block_pixels
from .targets import Dataset

BLOCKS = (256, 192, 128, 96, 64, 48, 32, 24, 16)
TARGET_BLOCKS = 20          # labelled blocks wanted: 5 folds of about 4 blocks
STEPS = 500                 # optimiser steps a run should get
BATCH = 16
SMALL_RUN = 3e8             # pixel-passes (folds x epochs x chips x chip^2) under which 3 seeds are affordable


@dataclass
class Plan:
    chip: int
    stride: int
    block: int
    depth: int
    width: int
    epochs: int = 0
    patience: int = 0
    folds: int = 0
    seeds: list[int] = field(default_factory=list)
    freeze_epochs: int = 0
    batch_size: int = BATCH
    lr: float = 2e-3
    threads: int = 1

    @property
    def size_multiple(self) -> int:
        return 2 ** self.depth


def _block(dataset: Dataset, given: Optional[int], choices: Choices) -> int:
    if given:
        return int(choices.set("block", given, "", given=True))
    side = max(max(s.shape) for s in dataset.scenes)
    counts = {b: len(block_pixels(dataset, b)) for b in BLOCKS if b <= max(side // 2, 16)}
    for b, n in counts.items():
        if n >= TARGET_BLOCKS:
            return int(choices.set("block", b, f"the largest block giving at least {TARGET_BLOCKS} labelled blocks "
                                               f"({n} of {b} px) for the spatial folds"))
    b = min(counts)
    return int(choices.set("block", b, f"the labels cover only {counts[b]} blocks even at {b} px (fewer than "
                                       f"{TARGET_BLOCKS}): the smallest block"))


def geometry(dataset: Dataset, choices: Choices, chip: Optional[int], block: Optional[int],
             width: Optional[int], depth: Optional[int], source_shape: Optional[tuple[int, int]]) -> Plan:
    """Block, chip, stride, depth and width (``source_shape`` = (width, depth) of a --from encoder)."""
    b = _block(dataset, block, choices)
    smallest = min(min(s.shape) for s in dataset.scenes)
    if source_shape is not None:
        choices.set("depth", source_shape[1], "the --from encoder's depth")
    if chip:
        c = int(choices.set("chip", chip, "", given=True))
    else:
        fits = [c for c in (64, 32, 16) if 2 * c <= b and c <= smallest]
        c = int(choices.set("chip", fits[0] if fits else min(16, b, smallest),
                            f"the largest of 64/32/16 px with at least 2 x 2 chip positions per {b} px block" if fits
                            else f"the smallest chip: the {b} px block or the raster is too small for 2 x 2 chip "
                                 "positions per block"))
    if source_shape is None:
        d = int(choices.set("depth", depth, "", given=True)) if depth else \
            int(choices.set("depth", 2 if c <= 32 else 3, f"{'2' if c <= 32 else '3'} poolings suit {c} px chips"))
    else:
        d = source_shape[1]
    if c % 2 ** d or c < 2 ** d or b < c:
        raise Refused(f"chips of {c} px must fit the {b} px blocks and be a multiple of {2 ** d} (network depth {d}); "
                      "change --chip or --block.")
    stride = int(choices.set("stride", max(c // 2, 2 ** d), "half a chip: overlapping chips (each labelled pixel is "
                                                            "still counted once in every statistic)"))
    n = dataset.pixels
    if source_shape is not None:
        w = int(choices.set("width", source_shape[0], "the --from encoder's width"))
    elif width:
        w = int(choices.set("width", width, "", given=True))
    else:
        w = int(choices.set("width", 8 if n < 10_000 else 16 if n < 1_000_000 else 32,
                            f"{n} labelled px: {'a narrow network for little data' if n < 10_000 else 'a moderate network' if n < 1_000_000 else 'a wider network for plenty of data'}"))
    return Plan(chip=c, stride=stride, block=b, depth=d, width=w)


def schedule(plan: Plan, choices: Choices, chips: int, blocks: int, epochs: Optional[int], folds: Optional[int],
             seeds: Optional[int], threads: int, transfer: bool) -> Plan:
    """Folds, epochs, patience, seeds and the freeze schedule, from the chips and labelled blocks."""
    if folds:
        k = int(choices.set("folds", folds, "", given=True))
    else:
        k = int(choices.set("folds", 5 if blocks >= 10 else 3, f"{blocks} labelled blocks"))
    if k < 2 or blocks < k + 1:
        raise Refused(f"{blocks} labelled blocks of {plan.block} px cannot make {k} folds with blocks left to choose "
                      "the epoch on: use a smaller --block (or --folds, at least 2).")
    train_chips = max(1, int(chips * (k - 1) / k * 0.8))
    batches = math.ceil(train_chips / plan.batch_size)
    if epochs:
        e = int(choices.set("epochs", epochs, "", given=True))
    else:
        e = int(choices.set("epochs", min(60, max(10, math.ceil(STEPS / batches))),
                            f"about {STEPS} optimiser steps at {batches} batches of {plan.batch_size} per epoch "
                            f"(~{train_chips} training chips per fold), between 10 and 60"))
    patience = int(choices.set("patience", max(5, e // 4), "a quarter of the epochs, at least 5"))
    cost = k * e * train_chips * plan.chip ** 2
    if seeds:
        n = int(choices.set("seeds", seeds, "", given=True))
    else:
        n = int(choices.set("seeds", 3 if cost <= SMALL_RUN else 1,
                            f"runs are {'small' if cost <= SMALL_RUN else 'large'} ({cost:.2g} pixel-passes per "
                            f"seed): {'3 seeds' if cost <= SMALL_RUN else '1 seed'}"))
    freeze = int(choices.set("freeze_epochs", max(1, e // 4) if transfer else 0,
                             "the --from encoder stays frozen for a quarter of the epochs, then fine-tunes at 0.1 x "
                             "the rate" if transfer else "no pretrained encoder"))
    plan.epochs, plan.patience, plan.folds, plan.freeze_epochs = e, patience, k, freeze
    plan.seeds, plan.threads = list(range(n)), threads
    return plan
