"""Flips and quarter turns keep image and label aligned and cover the 8 symmetries of the square."""
from __future__ import annotations

import numpy as np
import pytest

from training.data import DataError, augment_batch, dihedral, random_dihedral

SIZE = 8


def encoded_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A label of unique ids and a 3-band image whose band c holds 1000 c + label."""
    label = rng.permutation(SIZE * SIZE).reshape(SIZE, SIZE).astype(np.int64)
    image = np.stack([1000 * c + label for c in range(3)]).astype(np.float32)
    return image, label


def test_each_transform_is_what_it_says() -> None:
    label = np.arange(4).reshape(2, 2)      # [[0, 1], [2, 3]]
    image = label[None].astype(np.float32)
    expected = [[[0, 1], [2, 3]], [[1, 3], [0, 2]], [[3, 2], [1, 0]], [[2, 0], [3, 1]],
                [[1, 0], [3, 2]], [[0, 2], [1, 3]], [[2, 3], [0, 1]], [[3, 1], [2, 0]]]
    for t, want in enumerate(expected):
        im, lab = dihedral(image, label, t)
        assert lab.tolist() == want and im[0].tolist() == want


def test_random_transforms_keep_alignment_and_cover_all_eight() -> None:
    rng = np.random.default_rng(0)
    image, label = encoded_pair(rng)
    outcomes = {dihedral(image, label, t)[1].tobytes(): t for t in range(8)}
    assert len(outcomes) == 8
    seen = set()
    for _ in range(200):
        im, lab = random_dihedral(image, label, rng)
        assert im.flags.c_contiguous and lab.flags.c_contiguous
        for c in range(3):
            assert np.array_equal(im[c], 1000 * c + lab)
        seen.add(outcomes[lab.tobytes()])
    assert seen == set(range(8))


def test_batches_transform_each_chip_independently_and_reproducibly() -> None:
    pairs = [encoded_pair(np.random.default_rng(i)) for i in range(64)]
    images, labels = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    out_images, out_labels = augment_batch(images, labels, np.random.default_rng(5))
    again = augment_batch(images, labels, np.random.default_rng(5))
    assert np.array_equal(out_images, again[0]) and np.array_equal(out_labels, again[1])
    assert np.array_equal(out_images, 1000 * np.arange(3)[None, :, None, None] + out_labels[:, None])
    applied = {next(t for t in range(8) if np.array_equal(dihedral(images[i], labels[i], t)[1], out_labels[i]))
               for i in range(64)}
    assert len(applied) >= 6
    assert np.array_equal(images, np.stack([p[0] for p in pairs]))      # inputs untouched


def test_bad_transforms_are_refused() -> None:
    with pytest.raises(DataError, match="0..7"):
        dihedral(np.zeros((1, 4, 4)), np.zeros((4, 4)), 8)
    with pytest.raises(DataError, match="square"):
        dihedral(np.zeros((1, 4, 6)), np.zeros((4, 6)), 1)
    assert dihedral(np.zeros((1, 4, 6)), np.zeros((4, 6)), 4)[1].shape == (4, 6)
