"""Window arithmetic: tiles cover the window, overlap as asked, and blending weights never leave a hole."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepstrata.inference.engine.tiling import TileGrid, axis_starts, axis_weights
from deepstrata.inference.engine.windows import Window, chunk_columns


@given(length=st.integers(1, 3000), tile=st.integers(8, 600), data=st.data())
def test_axis_starts_cover_the_axis_with_at_least_the_overlap(length: int, tile: int, data) -> None:
    overlap = data.draw(st.integers(0, tile - 1))
    starts = axis_starts(length, tile, overlap)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts == sorted(set(starts))
    assert starts[-1] + tile == length  # the last tile is shifted back inside
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap  # consecutive tiles overlap by at least `overlap`
        assert b - a <= tile - overlap or b == starts[-1]


@given(length=st.integers(1, 700), tile=st.integers(8, 200), margin=st.integers(0, 12), extra=st.integers(0, 20))
@settings(max_examples=300)
def test_every_pixel_gets_weight_from_a_reliable_tile(length: int, tile: int, margin: int, extra: int) -> None:
    overlap = 2 * margin + extra
    if overlap >= tile:
        return
    total = np.zeros(length)
    starts = axis_starts(length, tile, overlap)
    for s in starts:
        w = axis_weights(tile, margin, overlap - 2 * margin, s <= 0, s + tile >= length)
        inner = [d for d in range(tile) if (s > 0 and d < margin) or (s + tile < length and tile - 1 - d < margin)]
        assert all(w[d] == 0 for d in inner), "unreliable margin pixels must get zero weight"
        seg = slice(s, min(s + tile, length))
        total[seg] += w[: seg.stop - seg.start]
    assert (total > 0).all()


def test_weights_on_window_edges_stay_full() -> None:
    w = axis_weights(16, margin=2, ramp=4, low_edge=True, high_edge=False)
    assert w[0] == 1.0 and w[:10].min() == 1.0
    assert w[-1] == 0 and w[-2] == 0 and 0 < w[-3] < 1


def test_grid_weights_are_cached_and_read_only() -> None:
    grid = TileGrid(width=100, height=80, tile_w=32, tile_h=32, overlap=8, margin=2)
    tiles = list(grid)
    assert len(tiles) == len(grid) == len(grid.cols) * len(grid.rows)
    w = grid.weights(tiles[0])
    assert w is grid.weights(tiles[0])
    assert not w.flags.writeable
    assert w[0, 0] == 1.0 and w[-1, -1] == 0.0


def test_chunks_split_columns_exactly() -> None:
    chunks = chunk_columns(Window(10, 5, 1000, 7), 256)
    assert [c.x for c in chunks] == [10, 266, 522, 778]
    assert [c.w for c in chunks] == [256, 256, 256, 232]
    assert all(c.y == 5 and c.h == 7 for c in chunks)


@given(length=st.integers(1, 3000), k=st.integers(1, 40), multiple=st.sampled_from([2, 4, 8, 16, 32]),
       data=st.data())
def test_aligned_starts_for_pooling_models(length: int, k: int, multiple: int, data) -> None:
    tile = k * multiple
    overlap = data.draw(st.integers(0, tile - multiple))
    starts = axis_starts(length, tile, overlap, multiple)
    assert all(s % multiple == 0 for s in starts), "every tile starts in the same pooling phase"
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert starts[-1] + tile >= length and (length <= tile or starts[-1] + tile - length < multiple)
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap


def test_row_end_is_the_next_tile_row_or_the_window_end() -> None:
    grid = TileGrid(width=50, height=100, tile_w=32, tile_h=32, overlap=8, margin=2)
    assert grid.rows == [0, 24, 48, 68]
    assert [grid.row_end(y) for y in grid.rows] == [24, 48, 68, 100]
    assert grid.rows is grid.rows  # laid out once per grid, not on every access
