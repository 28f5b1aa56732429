"""The run plan: tile size, overlap, batch and the windows a run works through, decided once up front."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InputError
from .model import Model
from .options import RunOptions
from .providers import GPU_BATCH, is_gpu
from .targets import BLOCK
from .tiling import TileGrid
from .windows import Window, chunk_columns, round_up

DEFAULT_BATCH = 4


@dataclass(frozen=True)
class Plan:
    output: Window  # the pixels written, in raster coordinates
    tile_in: tuple[int, int]  # model input tile (height, width)
    crop: int
    overlap: int
    margin: int
    batch: int
    size_multiple: int
    dynamic: bool  # the graph takes any tile size
    chunk_width: int
    output_channels: tuple[int | None, ...]  # per graph output used
    beyond_edge: bool = False  # tiles reach past the raster's edge (models fed NaN there, card input.nodata)

    @property
    def tile_out(self) -> tuple[int, int]:
        return self.tile_in[0] - 2 * self.crop, self.tile_in[1] - 2 * self.crop

    def chunks(self) -> list[Window]:
        return chunk_columns(self.output, self.chunk_width)

    def processing_window(self, chunk: Window, raster: Window) -> Window:
        """The chunk grown by the margin (real context for tiles at its edges), clipped to the raster, unless the
        model is fed NaN beyond the raster's edge: then tiles reach past it, and the model sees the edge as NaN
        rather than as the end of its tile.

        Its origin is kept on a multiple of size_multiple, so that pooling models see every pixel in the same
        pooling phase in every chunk and tile.
        """
        grown = chunk.grow(self.margin) if self.beyond_edge else chunk.grow(self.margin).intersect(raster)
        assert grown is not None
        m = self.size_multiple
        x, y = grown.x // m * m, grown.y // m * m
        return Window(x, y, grown.x1 - x, grown.y1 - y)

    def grid(self, window: Window) -> TileGrid:
        """Tiles over `window`; a dynamic graph gets smaller tiles when the window is smaller than one tile."""
        th, tw = self.tile_out
        if self.dynamic:
            m, c = self.size_multiple, self.crop
            if window.h < th:
                th = round_up(window.h + 2 * c, m) - 2 * c
            if window.w < tw:
                tw = round_up(window.w + 2 * c, m) - 2 * c
        return TileGrid(window.w, window.h, tw, th, self.overlap, self.margin, self.size_multiple)


def _tile_size(model: Model, options: RunOptions, warn: Callable[[str], None]) -> tuple[int, int]:
    fixed = model.fixed_size
    if fixed:
        if options.tile_size and options.tile_size not in fixed:
            warn(f"The model only takes {fixed[1]}x{fixed[0]} tiles; tile size {options.tile_size} is ignored.")
        return fixed
    m = model.card.input.size_multiple
    size = int(options.tile_size or model.card.input.tile_size)
    rounded = max(m, size // m * m)
    if rounded != size:
        warn(f"Tile size {size} is not a multiple of {m} (the model's size_multiple); using {rounded}.")
    return rounded, rounded


def _output_channels(model: Model, tile_in: tuple[int, int]) -> tuple[int | None, ...]:
    """Each used graph output's channels: from the graph, or by running it once on a blank tile where the graph
    leaves them open and a regression card does not name them."""
    found = tuple(model.output_channels_of(i) for i in range(len(model.card.output.heads)))
    if model.card.task != "regression" or all(n is not None for n in found):
        return found
    probe = np.zeros((model.fixed_batch or 1, model.channels) + tile_in, dtype=model.input_dtype)
    return tuple(1 if a.ndim == 3 else int(a.shape[1]) for a in model.run(probe))


def make_plan(model: Model, output: Window, options: RunOptions, warn: Callable[[str], None]) -> Plan:
    card = model.card
    tile_in = _tile_size(model, options, warn)
    crop, margin = card.output.crop, card.input.margin or 0
    tile_out = min(tile_in) - 2 * crop
    if tile_out <= 2 * margin:
        raise InputError(f"Tile size {min(tile_in)} is too small for this model: with a crop of {crop} and a "
                         f"margin of {margin} px nothing reliable is left. Use a tile size above "
                         f"{2 * (crop + margin) + 8}.")
    # A card that gives its margin is trusted (0 for exact graphs); one that does not gets a safety overlap.
    default = 2 * margin if card.input.margin is not None else max(tile_out // 8, 1)
    overlap = default if options.overlap is None else int(options.overlap)
    if overlap < 2 * margin:
        warn(f"Overlap {overlap} is less than twice the model's margin ({margin} px); using "
             f"{2 * margin} so that tile edges do not show.")
        overlap = 2 * margin
    step = max(1, card.input.size_multiple)
    if overlap > tile_out - step:
        raise InputError(f"Overlap {overlap} leaves no room to step between tiles of {tile_out} px (the step must be "
                         f"at least {step} px). Lower the overlap or raise the tile size.")
    batch = model.fixed_batch or int(options.batch_size or (GPU_BATCH if is_gpu(model.provider) else DEFAULT_BATCH))
    if batch < 1:
        raise InputError(f"Batch size must be at least 1, got {batch}.")
    return Plan(output, tile_in, crop, overlap, margin, batch, card.input.size_multiple,
                model.fixed_size is None, max(BLOCK, options.chunk_width // BLOCK * BLOCK),
                _output_channels(model, tile_in), card.input.nodata == "nan")
