"""From strips of the raster to batches of model input, and from batches to values to blend.

`tile_rows` runs on the reader thread: one strip per tile row, normalised and cut into batches of tiles (tiles
with no valid pixel are skipped). `Runner` runs on the main thread: the model on a batch, the output's shape
checked once against the plan, the head's activation, and non-finite values (NaN, Inf) taken out of the blend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from .decision import OUTPUT, decision_rule, decision_session
from .errors import ModelError
from .heads import Head
from .model import Model, check_channels
from .plan import Plan
from .progress import Cancelled
from .strips import PixelSource, StripReader
from .stream import normalize
from .tiling import TileGrid
from .windows import Window


@dataclass
class Batch:
    tiles: list[Window]
    array: np.ndarray


@dataclass
class Outputs:
    """A batch's results: values to blend over whole tiles (`values`, `finite`), or, where the class is decided
    on the raw output (decision.py), the raw output (N, C, h, w) and the class index per pixel (N, h, w)."""

    values: np.ndarray | None = None
    finite: np.ndarray | None = None  # (N, h, w), None when every value is finite
    raw: np.ndarray | None = None
    index: np.ndarray | None = None


@dataclass
class Row:
    """The end of a tile row: its batches came before it."""

    y: int
    valid: np.ndarray  # (tile_h, window width): validity of the output rows this tile row covers
    skipped: int


def tile_rows(source: PixelSource, plan: Plan, window: Window, grid: TileGrid, model: Model,
              is_cancelled: Cancelled, rows: Sequence[int] | None = None) -> Iterator[Batch | Row]:
    """Reader thread: one strip per tile row, normalised and cut into batches of tiles, handed on one batch at a
    time (a few batches in flight, not whole rows of them), then the row's end."""
    crop = plan.crop
    th, tw = grid.tile_h + 2 * crop, grid.tile_w + 2 * crop
    width = grid.span[1]
    dtype = model.input_dtype
    nan = model.card.input.nodata == "nan"  # the model sees nodata and what lies beyond the edge as NaN
    reader = StripReader(source, window.x - crop, width + 2 * crop, th, "nan" if nan else "mirror")
    for y in grid.rows if rows is None else rows:
        if is_cancelled():
            return
        data, valid = reader.read(window.y + y - crop, th, copy=False)
        # normalised into a new array (the reader's buffer keeps the raw rows the next strip shares)
        data = normalize(data, valid, model.card.input.normalization, np.nan if nan else 0.0, np.empty_like(data))
        valid = valid.copy()
        out_valid = valid[crop:crop + grid.tile_h, crop:crop + window.w]
        tiles = [t for t in grid.row_tiles(y) if out_valid[:, t.x:t.x1].any()]
        for i in range(0, len(tiles), plan.batch):
            part = tiles[i:i + plan.batch]
            array = np.stack([data[:, :, t.x:t.x + tw] for t in part])
            if dtype == np.uint8:
                array = np.clip(np.rint(array), 0, 255)
            yield Batch(part, array.astype(dtype, copy=False))
        yield Row(y, out_valid, len(grid.cols) - len(tiles))


class Runner:
    """Runs batches through the model: values to blend, and where they are finite."""

    def __init__(self, model: Model, plan: Plan, head: Head, decide: bool = False) -> None:
        """`decide`: decide classes on the raw output where a tile alone covers a pixel (decision.py), when the
        model's task and card allow it."""
        self.model, self.plan, self.head = model, plan, head
        self.checked: set[tuple[tuple[int, ...], ...]] = set()
        self.non_finite = 0  # non-finite values the model returned, all outputs together
        self.rule = decision_rule(model.card, plan.output_channels[0]) if decide else None
        self.session: Any = None
        self.note = ""
        if self.rule is not None:
            self.session, self.note = decision_session(model, self.rule)

    def __call__(self, batch: Batch) -> Outputs:
        array, n = batch.array, len(batch.tiles)
        fixed = self.model.fixed_batch
        if fixed and n < fixed:
            array = np.concatenate([array, np.zeros((fixed - n,) + array.shape[1:], array.dtype)])
        raws = [raw[:n] for raw in self._run(array)]
        decided = raws.pop() if self.session is not None else None
        shapes = tuple(raw.shape[1:] for raw in raws)
        if shapes not in self.checked:
            for i, raw in enumerate(raws):
                self._check(i, raw.shape, array.shape)
            self.checked.add(shapes)
        if self.rule is not None and np.isfinite(raws[0].sum()):  # one pass: NaN and Inf show (or an overflow)
            raw = raws[0][:, None] if raws[0].ndim == 3 else raws[0]
            index = self.rule.numpy(raw) if decided is None else decided.reshape(raw.shape[:1] + raw.shape[2:])
            return Outputs(raw=raw, index=index)
        bad = sum(int(raw.size - np.count_nonzero(np.isfinite(raw))) for raw in raws if raw.dtype.kind == "f")
        if bad and self.model.card.input.nodata == "nan":
            bad = self._bad_where_seen(raws, array[:n])
        values = self.head.prepare(raws, array[:n].astype(np.float32, copy=False))
        if not bad and np.isfinite(values).all():
            return Outputs(values)
        self.non_finite += bad
        finite = np.isfinite(values).all(axis=1)
        values[~np.broadcast_to(finite[:, None], values.shape)] = 0.0
        return Outputs(values, finite)

    def _bad_where_seen(self, raws: list[np.ndarray], array: np.ndarray) -> int:
        """Non-finite values at pixels whose input is valid: a model fed NaN for nodata may return NaN there."""
        crop = self.plan.crop
        seen = np.isfinite(array).all(axis=1)[:, crop:array.shape[2] - crop, crop:array.shape[3] - crop]
        bad = 0
        for raw in raws:
            if raw.dtype.kind == "f" and raw.ndim >= 3 and raw.shape[-2:] == seen.shape[-2:]:
                wrong = ~np.isfinite(raw) & (seen[:, None] if raw.ndim == 4 else seen)
                bad += int(np.count_nonzero(wrong))
            elif raw.dtype.kind == "f":
                bad += int(raw.size - np.count_nonzero(np.isfinite(raw)))
        return bad

    def _run(self, array: np.ndarray) -> list[np.ndarray]:
        """The model on a batch; a failure is said in one sentence that names the model and what to try."""
        try:
            if self.session is not None:
                return self.model.run(array, self.session, [OUTPUT])
            return self.model.run(array)
        except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            hint = (" Try a batch size of 1 (Batch size / --batch-size 1): some graphs only run one tile at a "
                    "time." if array.shape[0] > 1 else " Check that the model runs on a tile of this size in "
                    "onnxruntime, or re-export it.")
            raise ModelError(f"The model '{self.model.path}' failed on a batch of {array.shape[0]} tile(s) of "
                             f"{array.shape[3]}x{array.shape[2]} px: {detail}.{hint}") from exc

    def _check(self, index: int, shape: tuple[int, ...], given: tuple[int, ...]) -> None:
        card = self.model.card
        check_channels(card, 1 if len(shape) == 3 and card.task != "classification" else
                       shape[1] if len(shape) > 1 else None, index)
        if card.task == "classification":
            if len(shape) != 2:
                raise ModelError(f"Unsupported output shape {shape}: a classification model must output "
                                 "(batch, classes).")
            return
        crop = self.plan.crop
        want = (given[2] - 2 * crop, given[3] - 2 * crop)
        if len(shape) not in (3, 4) or tuple(shape[-2:]) != want:
            raise ModelError(f"Unsupported output shape: the model returned {tuple(shape)} for an input of "
                             f"{tuple(given)}; with output.crop = {crop} the card expects height and width {want}. "
                             "Fix output.crop (or the task) in the card.")
