"""``python -m training segment`` and ``python -m training regress``: a model for any raster(s) and labels, with
honest spatial cross-validation against baselines, exported with its card and checked through the engine."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from ..data.errors import DataError
from ..workflow import command_line
from .run import Options, run

FROM_HELP = ("start from an encoder: geology (the shipped model), terrain, spectral (pretrained "
             "encoders in training/encoders/), or a DeepStrata .onnx / encoder .pt path")


def parser(task: str) -> argparse.ArgumentParser:
    command = "regress" if task == "regression" else "segment"
    p = argparse.ArgumentParser(prog=f"python -m training {command}", description=" ".join(__doc__.split())[:-1])
    p.add_argument("--image", action="append", required=True, help="training raster (repeat for several areas)")
    p.add_argument("--labels", action="append", required=True,
                   help="label raster or polygon file: one per --image, or one covering them all")
    if task == "regression":
        p.add_argument("--value-field", dest="field", help="numeric field of polygon labels")
    else:
        p.add_argument("--class-field", dest="field", help="class field of polygon labels")
        p.add_argument("--min-class-pixels", type=int, default=50,
                       help="classes with fewer labelled pixels are refused (default 50)")
        p.add_argument("--drop-class", action="append", default=[], help="leave this class unlabelled (repeatable)")
        p.add_argument("--merge-class", action="append", default=[], metavar="FROM=TO",
                       help="label class FROM as TO (repeatable)")
    p.add_argument("--out", required=True, help="the .onnx model to write")
    p.add_argument("--report", help="report folder (default: the model's path with .report instead of .onnx)")
    p.add_argument("--bands", help="bands by number or name, comma separated (default: all)")
    p.add_argument("--from", dest="source", help=FROM_HELP)
    for name, what in (("folds", "spatial folds (default from the labelled blocks, 5 or 3)"),
                       ("seeds", "seeds per fold (default 3 for small runs, else 1)"),
                       ("chip", "chip edge in px (default from the block)"),
                       ("block", "block edge in px (default: from the label extent, >= 20 labelled blocks)"),
                       ("epochs", "epochs per run (default: about 500 optimiser steps)"),
                       ("width", "network width (default from the labelled pixels)"),
                       ("depth", "network depth (default 2 for chips up to 32 px, else 3)")):
        p.add_argument("--" + name, type=int, help=what)
    p.add_argument("--threads", type=int, default=1, help="torch and random-forest threads (default 1)")
    p.add_argument("--name", help="the model's name in the card")
    p.add_argument("--kind", choices=("any", "dem", "multispectral", "rgb", "hyperspectral"),
                   help="the card's input kind (default: dem / multispectral for those --from stems, else any)")
    return p


def options(task: str, argv: Sequence[str]) -> Options:
    args = parser(task).parse_args(list(argv))
    command = command_line(["regress" if task == "regression" else "segment", *argv])
    return Options(task=task, images=args.image, labels=args.labels, label_field=args.field, out=args.out, command=command,
                   report=args.report, bands=args.bands, source=args.source, folds=args.folds, seeds=args.seeds,
                   chip=args.chip, block=args.block, epochs=args.epochs, width=args.width, depth=args.depth,
                   threads=args.threads, min_class_pixels=getattr(args, "min_class_pixels", 50),
                   drop=getattr(args, "drop_class", []), merge=getattr(args, "merge_class", []), name=args.name,
                   kind=args.kind)


def _main(task: str, argv: Optional[Sequence[str]]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("training.train").setLevel(logging.WARNING)  # one line per fold and seed, not per epoch
    try:
        doc = run(options(task, list(argv or [])))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join([f"wrote {doc['model']} and {doc['report']}/ in {doc['seconds']:.0f} s", *doc["verdict"]]))
    return 0


def segment_main(argv: Optional[Sequence[str]] = None) -> int:
    return _main("segmentation", argv)


def regress_main(argv: Optional[Sequence[str]] = None) -> int:
    return _main("regression", argv)
