"""Streaming building blocks: a background reader that overlaps inference, and the strip accumulator."""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator

import numpy as np

from .card import Normalization
from .decision import NONE

_DONE = object()


class Prefetcher:
    """Runs `produce()` on a background thread, at most `depth` items ahead of the consumer.

    Reading (GDAL releases the GIL) overlaps inference (onnxruntime releases it too). An exception in the reader
    is re-raised in the consumer; close() stops the reader early (errors, cancel).
    """

    def __init__(self, produce: Callable[[], Iterator[Any]], depth: int = 2) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), name="deepstrata-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce: Callable[[], Iterator[Any]]) -> None:
        try:
            for item in produce():
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


def normalize(data: np.ndarray, valid: np.ndarray, norm: Normalization, fill: float = 0.0,
              out: np.ndarray | None = None) -> np.ndarray:
    """Raw pixels (bands, h, w) float32 -> model units, in place or into `out` (same shape: the first operation
    writes there, so `data` is read once and left as it was); invalid pixels become `fill` (0, or NaN)."""
    target = data if out is None else out
    if norm.method == "zscore":
        mean = np.asarray(norm.mean, dtype=np.float32)[:, None, None]
        if mean.any():  # a mean of 0 (Deepness's default) subtracts nothing: one pass less
            np.subtract(data, mean, out=target)
            data = target
        np.divide(data, np.asarray(norm.std, dtype=np.float32)[:, None, None], out=target)
    elif norm.method == "minmax":
        lo = np.asarray(norm.min, dtype=np.float32)[:, None, None]
        np.subtract(data, lo, out=target)
        target /= np.asarray(norm.max, dtype=np.float32)[:, None, None] - lo
    elif norm.method == "scale":
        np.multiply(data, np.float32(norm.factor), out=target)
        if norm.offset:
            target += np.float32(norm.offset)
    elif out is not None:
        out[...] = data
    if not valid.all():
        target[:, ~valid] = fill
    return target


class StripAccumulator:
    """Weighted sums of predictions over a strip of rows as tall as one tile, as wide as the window.

    Rows are final once no later tile row reaches them, and the strip then shifts up, so
    memory is one tile row high whatever the raster's height. `finished()` gives the final rows, `advance()` drops
    them.
    """

    def __init__(self, channels: int, height: int, width: int, decided: bool = False) -> None:
        self.sums = np.zeros((channels, height, width), dtype=np.float32)
        self.weights = np.zeros((height, width), dtype=np.float32)
        self.valid = np.zeros((height, width), dtype=bool)
        # Class indices decided where one tile alone covers a pixel (decision.py), NONE elsewhere; None: unused
        self.index = np.full((height, width), NONE, dtype=np.uint16) if decided else None
        self.top = 0  # window row of the strip's first row

    def add(self, values: np.ndarray, weights: np.ndarray, x: int, y: int) -> None:
        """Add one tile's values (K, h, w) or (K, 1, 1) with its weights (h, w) at window column x, row y.

        Per-pixel values are overwritten (weighted in place).
        """
        r0 = y - self.top
        h = min(weights.shape[0], self.weights.shape[0] - r0)
        w = min(weights.shape[1], self.weights.shape[1] - x)
        wt = weights[:h, :w]
        target = self.sums[:, r0:r0 + h, x:x + w]
        if values.shape[1:] == (1, 1):  # one value per tile (classification)
            target += values * wt
        else:  # the values are the caller's scratch: weight them in place, no temporary
            vals = values[:, :h, :w]
            np.multiply(vals, wt, out=vals)
            target += vals
        self.weights[r0:r0 + h, x:x + w] += wt

    def decide(self, index: np.ndarray, x: int, y: int) -> None:
        """Class indices (h, w) decided by one tile alone, at window column x, row y."""
        assert self.index is not None
        r0 = y - self.top
        h = min(index.shape[0], self.index.shape[0] - r0)
        w = min(index.shape[1], self.index.shape[1] - x)
        self.index[r0:r0 + h, x:x + w] = index[:h, :w]

    def set_valid(self, valid: np.ndarray, y: int) -> None:
        r0 = y - self.top
        h = min(valid.shape[0], self.valid.shape[0] - r0)
        self.valid[r0:r0 + h] = valid[:h]

    def finished(self, until: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Views of the weighted sums (K, n, width), weights, input validity and decided class indices (n, width;
        None when unused) of rows [top, until).

        A valid pixel with zero weight and no decided class got no usable tile value (the model returned NaN or
        Inf there): the caller writes it as nodata. Use them before advance().
        """
        n = until - self.top
        return self.sums[:, :n], self.weights[:n], self.valid[:n], None if self.index is None else self.index[:n]

    def advance(self, until: int) -> None:
        """Drop rows [top, until) and move the strip down."""
        n = until - self.top
        for array in (self.sums, self.weights, self.valid, self.index):
            if array is None:
                continue
            rest = array.shape[-2] - n
            array[..., :rest, :] = array[..., n:, :]
            array[..., rest:, :] = NONE if array is self.index else 0
        self.top = until
