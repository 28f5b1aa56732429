"""``main(argv)``: describe what a training run would see, before training: chips per split, pixels per
class, class weights and the normalisation the card would get, as JSON on stdout."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from .chips import extract_chips
from .errors import DataError
from .splits import block_split, split_report
from .stats import band_stats, class_weights


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training data", description=__doc__)
    p.add_argument("--image", action="append", required=True, help="image raster (repeat for several)")
    p.add_argument("--labels", action="append", required=True,
                   help="label raster or polygon file, one per --image, in the same order")
    p.add_argument("--class-field", help="class field of polygon labels")
    p.add_argument("--bands", help="1-based bands, comma separated (default: all)")
    p.add_argument("--size", type=int, default=64, help="chip edge in px (default 64)")
    p.add_argument("--stride", type=int, help="chip step in px (default: the chip size)")
    p.add_argument("--block", type=int, help="split block edge in px (default: 4 x the chip size)")
    p.add_argument("--fractions", default="0.7,0.15,0.15", help="train,validation,test shares of chips")
    p.add_argument("--min-labelled", type=float, default=0.0, help="least labelled fraction of a chip")
    p.add_argument("--max-nodata", type=float, default=0.0, help="largest nodata fraction of a chip")
    p.add_argument("--seed", type=int, default=0)
    return p


def describe(args: argparse.Namespace) -> dict[str, Any]:
    if len(args.image) != len(args.labels):
        raise DataError(f"{len(args.image)} --image but {len(args.labels)} --labels: give one label source each.")
    block = args.block or 4 * args.size
    bands = [int(b) for b in args.bands.split(",")] if args.bands else None
    chips = extract_chips(list(zip(args.image, args.labels)), args.size, args.stride, bands, args.class_field,
                          args.min_labelled, args.max_nodata, block)
    if len(chips) == 0:
        raise DataError("no chip passed the filters: lower --min-labelled or --size, or raise --max-nodata.")
    split = block_split(chips.origins, args.size, block, [float(f) for f in args.fractions.split(",")],
                        args.seed)
    train = chips.subset(split.indices("train"))
    weights = class_weights(train.labels, list(chips.classes.values()))
    return {
        "classes": chips.classes,
        "splits": split_report(split, chips.labels, chips.classes, chips.origins),  # each pixel once
        "class_weights": dict(zip(chips.classes, weights.weights)),
        "normalization": band_stats(train.images).card(),
        "warnings": split.warnings + [f"class {c} has no training pixel" for c in weights.missing],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = describe(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0
