"""What the outputs of a run hold (`RasterTarget`, nodata, the block edge) and how finished rows reach them
(`BlockRowBuffer`), whether they are written to GeoTIFF (writer.RasterWriter) or kept in memory (`ArrayWriter`).
No GDAL here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from .card import ClassInfo

BLOCK = 256  # the outputs' block edge (GeoTIFF tiles, both layouts, geotiff.py); column chunks are multiples of it
FLOAT_NODATA = float(np.finfo(np.float32).min)


@dataclass
class RasterTarget:
    """What one output raster holds."""

    path: str
    dtype: np.dtype
    nodata: float
    descriptions: Sequence[str]
    band_classes: Sequence[Sequence[ClassInfo]] = ()  # per band: its class names and colours (class rasters)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def classes(self) -> Sequence[ClassInfo]:
        """The classes of band 1."""
        return self.band_classes[0] if self.band_classes else ()

    @property
    def bands(self) -> int:
        return len(self.descriptions)


class RowWriter(Protocol):
    def write(self, x: int, y: int, array: np.ndarray) -> None:
        """Write (bands, h, w) at column x, row y."""
        ...


class ArrayWriter:
    """An output kept in memory: (bands, height, width) of the target's type."""

    def __init__(self, target: RasterTarget, width: int, height: int) -> None:
        self.array = np.empty((target.bands, height, width), dtype=target.dtype)

    def write(self, x: int, y: int, array: np.ndarray) -> None:
        self.array[:, y:y + array.shape[1], x:x + array.shape[2]] = array


class BlockRowBuffer:
    """Collects finished rows of one column chunk and writes them to the writers a whole block row at a time."""

    def __init__(self, writers: Sequence[RowWriter], x: int, width: int, block: int = BLOCK) -> None:
        self.writers, self.x, self.width, self.block = writers, x, width, block
        self.parts: list[list[np.ndarray]] = [[] for _ in writers]
        self.y = 0  # first row held
        self.rows = 0

    def push(self, arrays: Sequence[np.ndarray]) -> None:
        for part, array in zip(self.parts, arrays):
            part.append(array)
        self.rows += arrays[0].shape[1]
        block = self.block
        if self.rows >= block and (self.y + self.rows) // block > self.y // block:
            self._write(((self.y + self.rows) // block) * block - self.y)

    def flush(self) -> None:
        if self.rows:
            self._write(self.rows)

    def _write(self, count: int) -> None:
        for i, writer in enumerate(self.writers):
            rows = self.parts[i][0] if len(self.parts[i]) == 1 else np.concatenate(self.parts[i], axis=1)
            writer.write(self.x, self.y, rows[:, :count])
            self.parts[i] = [rows[:, count:]] if count < rows.shape[1] else []
        self.y += count
        self.rows -= count
