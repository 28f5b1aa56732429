"""Chips on a regular grid: positions, labels and pixels exactly where they belong; the keep rules."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_fixtures import pixel_square_lonlat, position_image, write_geojson, write_raster  # noqa: E402

from training.data import DataError, extract_chips, grid_positions  # noqa: E402

H, W = 64, 96


@pytest.fixture()
def halves(tmp_path: Path) -> tuple[Path, Path]:
    """A 2-band image whose values encode their position, labelled 1 on the left half and 2 on the right."""
    label = np.ones((H, W), np.uint8)
    label[:, W // 2:] = 2
    return (write_raster(tmp_path / "image.tif", position_image(H, W)),
            write_raster(tmp_path / "label.tif", label))


def test_chips_hold_their_own_window_and_the_right_labels(halves: tuple[Path, Path]) -> None:
    chips = extract_chips([halves], size=16, stride=8)
    xs, ys = list(range(0, W - 15, 8)), list(range(0, H - 15, 8))
    assert [tuple(o) for o in chips.origins] == [(0, x, y) for y in ys for x in xs]
    assert chips.images.shape == (len(xs) * len(ys), 2, 16, 16) and chips.images.dtype == np.float32
    assert chips.labels.dtype == np.int64 and chips.bands == (1, 2)
    full = position_image(H, W)
    for image, label, (_, x, y) in zip(chips.images, chips.labels, chips.origins):
        assert np.array_equal(image, full[:, y:y + 16, x:x + 16])
        columns = np.arange(x, x + 16)
        assert np.array_equal(label, np.broadcast_to(np.where(columns < W // 2, 1, 2), (16, 16)))
    assert chips.classes == {"1": 1, "2": 2}


def test_band_selection_reads_the_chosen_bands_in_order(halves: tuple[Path, Path]) -> None:
    chips = extract_chips([halves], size=32, bands=[2, 1])
    assert chips.bands == (2, 1)
    assert np.all(chips.images[:, 0] >= 100000) and np.all(chips.images[:, 1] < 100000)
    with pytest.raises(DataError, match="bands 1..2"):
        extract_chips([halves], size=32, bands=[3])


def test_sparse_labels_keep_only_chips_labelled_enough(tmp_path: Path) -> None:
    label = np.zeros((H, W), np.uint8)
    label[0:4, 0:4] = 1          # 16 px in chip (0, 0): 1.6 % of a 32 x 32 chip
    label[40:64, 40:64] = 2      # 24 x 24 px in chip (32, 32): 56 %
    pair = (write_raster(tmp_path / "i.tif", position_image(H, W)), write_raster(tmp_path / "l.tif", label))
    assert [tuple(o) for o in extract_chips([pair], size=32).origins] == [(0, 0, 0), (0, 32, 32)]
    assert [tuple(o) for o in extract_chips([pair], size=32, min_labelled=0.5).origins] == [(0, 32, 32)]


def test_nodata_is_nan_unlabelled_and_bounded_by_max_nodata(tmp_path: Path) -> None:
    data = np.full((3, H, W), 50, np.uint8)
    data[1, 0:8, 0:32] = 255                        # one band's nodata makes the pixel invalid: 25 % of chip 0
    data[0, 32:64, 64:96] = 255                     # chip (64, 32) entirely nodata
    pair = (write_raster(tmp_path / "i.tif", data, nodata=255),
            write_raster(tmp_path / "l.tif", np.ones((H, W), np.uint8)))
    strict = extract_chips([pair], size=32)
    assert (0, 0, 0) not in [tuple(o) for o in strict.origins] and len(strict) == 4
    loose = extract_chips([pair], size=32, max_nodata=0.3)
    first = loose.subset(np.flatnonzero((loose.origins[:, 1] == 0) & (loose.origins[:, 2] == 0)))
    assert np.isnan(first.images[0, :, 0:8]).all() and not np.isnan(first.images[0, :, 8:]).any()
    assert (first.labels[0, 0:8] == 0).all() and (first.labels[0, 8:] == 1).all()
    assert first.valid()[0].sum() == 32 * 24
    assert (64, 32) not in [tuple(o[1:]) for o in extract_chips([pair], size=32, max_nodata=1.0).origins]


def test_several_rasters_share_one_class_mapping(tmp_path: Path) -> None:
    image = write_raster(tmp_path / "i.tif", position_image(32, 32))
    a = write_geojson(tmp_path / "a.geojson", [pixel_square_lonlat(0, 0, 32, 32)], ["water"])
    b = write_geojson(tmp_path / "b.geojson", [pixel_square_lonlat(0, 0, 32, 32)], ["forest"])
    chips = extract_chips([(image, a), (image, b), (image, None)], size=32, class_field="class")
    assert chips.classes == {"forest": 1, "water": 2}
    assert chips.origins[:, 0].tolist() == [0, 1, 2]       # an unlabelled image gives all its chips
    assert [np.unique(label).tolist() for label in chips.labels] == [[2], [1], [0]]
    unlabelled = extract_chips([(image, None)], size=16)
    assert len(unlabelled) == 4 and not unlabelled.labels.any()


def test_chips_are_laid_per_block_and_never_cross_one(halves: tuple[Path, Path]) -> None:
    chips = extract_chips([halves], size=16, stride=12, block=40)
    x, y = chips.origins[:, 1], chips.origins[:, 2]
    assert np.all(x // 40 == (x + 15) // 40) and np.all(y // 40 == (y + 15) // 40)
    assert sorted(set(x.tolist())) == [0, 12, 24, 40, 52, 64, 80]   # 36 would cross x = 40


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 300), size=st.integers(1, 40), stride=st.integers(1, 40),
       blocks=st.integers(1, 6))
def test_grid_positions_stay_inside_the_image_and_their_block(length: int, size: int, stride: int,
                                                              blocks: int) -> None:
    block = size * blocks
    positions = grid_positions(length, size, stride, block)
    assert positions == sorted(set(positions))
    assert all(0 <= p and p + size <= length and p // block == (p + size - 1) // block for p in positions)
    if block % stride == 0:    # then it is the plain regular grid minus the chips that cross a block edge
        plain = [p for p in grid_positions(length, size, stride) if p // block == (p + size - 1) // block]
        assert positions == plain
    assert grid_positions(length, size, stride) == list(range(0, length - size + 1, stride))


def test_bad_chip_parameters_are_refused(halves: tuple[Path, Path]) -> None:
    with pytest.raises(DataError, match="blocks of 8 px cannot hold chips of 16"):
        extract_chips([halves], size=16, block=8)
    with pytest.raises(DataError, match="fractions"):
        extract_chips([halves], size=16, min_labelled=2.0)
