"""The command line: ``run`` a model over a raster, ``info`` about a model, ``providers`` on this machine.

SIGINT and SIGTERM cancel a run at any moment: the engine stops at the next tile or block, drops its staged files
and leaves every earlier output byte-identical (a signal during the final commit rolls it back). The exit status
is 130 (SIGINT) or 143 (SIGTERM); 2 for bad input, 1 for any other error; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Sequence, TextIO

from .engine.deepness import CardOverrides
from .engine.errors import CancelledError, DeepStrataError, InputError
from .engine.geotiff import FORMATS
from .engine.model import load_model, model_info
from .engine.options import RunOptions
from .engine.progress import telling
from .engine.providers import DEVICES, available_providers
from .engine.run import run_model

LABELS = {"output": "--output", "confidence": "--confidence"}


class ProgressBar:
    """A one-line text progress bar on a terminal, with what the run does now; occasional percentages otherwise.
    The run's notes (scale, resampling, tiles) are printed on lines of their own (`tell`)."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.last = -1
        self.start = time.perf_counter()
        self.doing = ""

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent == self.last or (not self.tty and percent % 10 and percent != 100):
            return
        self.last = percent
        self._draw(fraction)

    def _draw(self, fraction: float) -> None:
        filled = int(self.width * fraction)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {int(fraction * 100):3d}%  "
                f"{time.perf_counter() - self.start:5.1f}s  {self.doing[:40]}").rstrip()
        self.stream.write(("\r\033[K" + line) if self.tty else line + "\n")
        if self.tty and fraction >= 1:
            self.stream.write("\n")
        self.stream.flush()

    def tell(self, kind: str, text: str) -> None:
        """The engine's listener (progress.telling): notes on their own line, stages beside the bar."""
        if kind == "note":
            self.stream.write(("\r\033[K" if self.tty and 0 <= self.last < 100 else "") + text + "\n")
            if self.tty and 0 <= self.last < 100:
                self._draw(self.last / 100)
            self.stream.flush()
        elif self.doing != text:
            self.doing = text
            if self.tty and 0 <= self.last < 100:
                self._draw(self.last / 100)


def _print_note(kind: str, text: str) -> None:
    """The listener of a --quiet run: the notes only."""
    if kind == "note":
        print(text, file=sys.stderr)


class Signals:
    """SIGINT and SIGTERM set a flag the engine polls (is_cancelled) instead of interrupting it anywhere."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.received = self.received or number
        self.event.set()

    def __call__(self) -> bool:
        return self.event.is_set()

    def __enter__(self) -> "Signals":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    @property
    def status(self) -> int:
        return 128 + int(self.received or signal.SIGINT)


def _number(what: str, kind: type = int, low: float = 1, high: float | None = None,
            odd: bool = False) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` in [low, high] (odd if asked), refused with a message naming `what`."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {'whole ' if kind is int else ''}number") from None
        if value < low or (high is not None and value > high):
            span = f"between {low:g} and {high:g}" if high is not None else f"{low:g} or more"
            raise argparse.ArgumentTypeError(f"{what} must be {span}, not {value}")
        if odd and value % 2 == 0:
            raise argparse.ArgumentTypeError(f"{what} must be an odd number of pixels, not {value}")
        return value
    return parse


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


def _classes(text: str) -> list[list[str]]:
    return [[n.strip() for n in group.split(",") if n.strip()] for group in text.split(";")]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deepstrata.inference",
                                description="Run DeepStrata ONNX models on rasters without QGIS.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a model over a raster and write a Cloud-Optimized GeoTIFF")
    run.add_argument("--model", required=True, help="the .onnx model file")
    run.add_argument("--input", required=True, help="the input raster (any GDAL format)")
    run.add_argument("--output", required=True, help="the output GeoTIFF (.tif)")
    run.add_argument("--output-format", choices=FORMATS, default="cog",
                     help="cog (the default): Cloud-Optimized GeoTIFFs with internal overviews (nearest for classes, "
                          "average for scores), which draw at once at any scale; gtiff: plain tiled GeoTIFFs "
                          "without overviews, a little faster to write")
    run.add_argument("--bands", type=_bands, help="raster bands in model order, e.g. 4,3,2 (default: by name)")
    run.add_argument("--extent", type=_extent, help="xmin,ymin,xmax,ymax in the raster's CRS")
    run.add_argument("--device", default="auto", choices=DEVICES, help="execution provider (default: auto)")
    run.add_argument("--tile-size", type=_number("the tile size"), help="tile edge in pixels (default: the card's)")
    run.add_argument("--batch-size", type=_number("the batch size"), help="tiles per inference call (default: 4)")
    run.add_argument("--overlap", type=_number("the overlap", low=0), help="tile overlap in pixels (default: twice the card's "
                                                           "margin, or 1/8 of the tile without one)")
    run.add_argument("--confidence", help="also write the maximum class probability to this GeoTIFF")
    run.add_argument("--pixel-size", choices=("model", "raster"), default="model",
                     help="run at the model's pixel size (resampling the raster when its card gives one; the "
                          "default) or the raster's own")
    run.add_argument("--task", choices=("segmentation", "regression"),
                     help="what a model without a card or Deepness metadata computes")
    run.add_argument("--classes", type=_classes, help="class names of such a model, e.g. water,land (outputs "
                                                      "separated by ';')")
    run.add_argument("--threshold", type=_number("the threshold (a probability)", float, 0, 1), help="class probability threshold (default: the model's)")
    run.add_argument("--median", type=_number("the median filter", odd=True), help="median filter over the class map, odd pixels (default: the "
                                                 "model's; 1 = none)")
    run.add_argument("--search-m", type=_number("the search distance", float), help="terrain models: the "
                     "search distance in metres (default: the model's, in cells of the DEM)")
    run.add_argument("--max-upsampling", type=_number("the upsampling limit", float, 1), default=2.0,
                     help="models trained at one pixel size: the most the raster's pixels may be split to reach "
                          "it (default: 2)")
    run.add_argument("--threads", type=_number("the thread count", low=0), default=0,
                     help="onnxruntime intra-op threads (default 0: onnxruntime's own choice, one per core)")
    run.add_argument("--dask", metavar="CLUSTER",
                     help="compute the tiles on a Dask cluster: local (one worker process per core), local:N, a "
                          "scheduler address (tcp://host:8786) or a scheduler file (.json); the output is written "
                          "here and equals a run without it (docs/scale-out.md). Needs dask[distributed]")
    run.add_argument("--dask-rows", type=_number("the rows per Dask task"),
                     help="output rows per Dask task, rounded up to whole 256-row blocks (default: chosen from the "
                          "raster's size and the number of workers)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    info = sub.add_parser("info", help="show a model's card and where it would run")
    info.add_argument("--model", required=True)
    info.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("providers", help="list the execution providers available here, best first")
    return p


def _run(args: argparse.Namespace, signals: Signals) -> int:
    from .workflows.resample import run_at_model_resolution

    overrides = CardOverrides(args.task, args.classes, args.threshold, args.median)
    options = RunOptions(bands=args.bands, extent=args.extent, device=args.device, tile_size=args.tile_size,
                         batch_size=args.batch_size, overlap=args.overlap, confidence_path=args.confidence,
                         card=overrides, labels=LABELS, search_m=args.search_m,
                         max_upsampling=args.max_upsampling, output_format=args.output_format,
                         threads=args.threads, cluster=args.dask, cluster_rows=args.dask_rows)
    if args.dask_rows and not args.dask:
        raise InputError("--dask-rows cuts a run into Dask tasks: give --dask too (e.g. --dask local:2).")
    progress = None if args.quiet else ProgressBar(sys.stderr)
    model = load_model(args.model, args.device, args.threads, overrides=overrides)
    with telling(progress.tell if progress else _print_note):
        if args.pixel_size == "model":
            result = run_at_model_resolution(model, args.input, args.output, options, progress, signals).result
        else:
            result = run_model(model, args.input, args.output, options, on_progress=progress, is_cancelled=signals)
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
    with Signals() as signals:
        try:
            if args.command == "run":
                return _run(args, signals)
            if args.command == "info":
                return _info(args)
            print("\n".join(available_providers()))
            return 0
        except (KeyboardInterrupt, CancelledError):
            name = signal.Signals(signals.received).name if signals.received else "SIGINT"
            print(f"\nerror: cancelled ({name}); nothing was written and earlier files are unchanged",
                  file=sys.stderr)
            return signals.status
        except DeepStrataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, InputError) else 1
        except OSError as exc:  # an unexpected file-system failure: said in one line, never a traceback
            print(f"error: {exc.strerror or exc} ({exc.filename or 'no file named'}). Check the paths, their "
                  "permissions and the free disk space.", file=sys.stderr)
            return 1
        except Exception as exc:  # a bug: one line for the user, the traceback with DEEPSTRATA_DEBUG=1
            if os.environ.get("DEEPSTRATA_DEBUG"):
                raise
            print(f"error: unexpected {type(exc).__name__}: {exc}. This is a fault in DeepStrata, not in your "
                  "data: please report it with the command you ran (DEEPSTRATA_DEBUG=1 shows the details).",
                  file=sys.stderr)
            return 1
