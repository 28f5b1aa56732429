"""The command line: ``run`` a model over a raster, ``info`` about a model, ``providers`` on this machine."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Sequence, TextIO

from .engine.errors import DeepStrataError, InputError
from .engine.model import load_model, model_info
from .engine.options import RunOptions
from .engine.providers import DEVICES, available_providers
from .engine.run import run_model


class ProgressBar:
    """A one-line text progress bar on a terminal; occasional percentages otherwise."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.last = -1
        self.start = time.perf_counter()

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent == self.last or (not self.tty and percent % 10 and percent != 100):
            return
        self.last = percent
        filled = int(self.width * fraction)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {percent:3d}%  {time.perf_counter() - self.start:5.1f}s"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and percent == 100:
            self.stream.write("\n")
        self.stream.flush()


def _bands(text: str) -> list[int]:
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of band numbers (e.g. 4,3,2)") from None


def _extent(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"'{text}' is not xmin,ymin,xmax,ymax")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deepstrata.inference",
                                description="Run DeepStrata ONNX models on rasters without QGIS.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a model over a raster and write a GeoTIFF")
    run.add_argument("--model", required=True, help="the .onnx model file")
    run.add_argument("--input", required=True, help="the input raster (any GDAL format)")
    run.add_argument("--output", required=True, help="the output GeoTIFF (.tif)")
    run.add_argument("--bands", type=_bands, help="raster bands in model order, e.g. 4,3,2 (default: by name)")
    run.add_argument("--extent", type=_extent, help="xmin,ymin,xmax,ymax in the raster's CRS")
    run.add_argument("--device", default="auto", choices=DEVICES, help="execution provider (default: auto)")
    run.add_argument("--tile-size", type=int, help="tile edge in pixels (default: from the model card)")
    run.add_argument("--batch-size", type=int, help="tiles per inference call (default: 4)")
    run.add_argument("--overlap", type=int, help="tile overlap in pixels (default: twice the card's margin, or 1/8 of the tile without one)")
    run.add_argument("--confidence", help="also write the maximum class probability to this GeoTIFF")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    info = sub.add_parser("info", help="show a model's card and where it would run")
    info.add_argument("--model", required=True)
    info.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("providers", help="list the execution providers available here, best first")
    return p


def _run(args: argparse.Namespace) -> int:
    options = RunOptions(bands=args.bands, extent=args.extent, device=args.device, tile_size=args.tile_size,
                         batch_size=args.batch_size, overlap=args.overlap, confidence_path=args.confidence)
    progress = None if args.quiet else ProgressBar(sys.stderr)
    result = run_model(args.model, args.input, args.output, options, on_progress=progress)
    print(f"Wrote {result.output_path} ({result.width}x{result.height} px, {result.task}) in "
          f"{result.seconds:.1f} s: {result.tiles} tiles of {result.tile_size} px, overlap {result.overlap}, "
          f"batch {result.batch_size}, on {result.provider}")
    if result.confidence_path:
        print(f"Wrote {result.confidence_path} (confidence)")
    if result.style_path:
        print(f"Style: {result.style_path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(model_info(args.model), indent=2))
    else:
        print(load_model(args.model).describe())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "info":
            return _info(args)
        print("\n".join(available_providers()))
        return 0
    except KeyboardInterrupt:
        print("\nerror: cancelled; no output was written", file=sys.stderr)
        return 130
    except DeepStrataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
