"""Random flips and 90-degree rotations (the 8 symmetries of the square), applied alike to image and label."""
from __future__ import annotations

import numpy as np

from .errors import DataError

TRANSFORMS = 8


def dihedral(image: np.ndarray, label: np.ndarray, transform: int) -> tuple[np.ndarray, np.ndarray]:
    """Transform ``transform`` (0..7) of a (C, H, W) image and its (H, W) label: a left-right flip when
    ``transform >= 4``, then ``transform % 4`` quarter turns counter-clockwise. 0 is the identity."""
    if not 0 <= transform < TRANSFORMS:
        raise DataError(f"dihedral transforms are numbered 0..7, not {transform}.")
    if image.shape[-2:] != label.shape[-2:]:
        raise DataError(f"image {image.shape} and label {label.shape} differ in size.")
    if transform % 4 and image.shape[-1] != image.shape[-2]:
        raise DataError("rotating a chip needs a square chip.")
    if transform >= 4:
        image, label = image[..., ::-1], label[..., ::-1]
    turns = transform % 4
    image = np.rot90(image, turns, axes=(-2, -1))
    label = np.rot90(label, turns, axes=(-2, -1))
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def random_dihedral(image: np.ndarray, label: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 transforms, drawn uniformly from ``rng``."""
    return dihedral(image, label, int(rng.integers(TRANSFORMS)))


def augment_batch(images: np.ndarray, labels: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An independent random transform per chip of (N, C, H, W) images and (N, H, W) labels (new arrays)."""
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images.shape[0]} images but {labels.shape[0]} labels.")
    out_images, out_labels = np.empty_like(images), np.empty_like(labels)
    for i, transform in enumerate(rng.integers(TRANSFORMS, size=images.shape[0])):
        out_images[i], out_labels[i] = dihedral(images[i], labels[i], int(transform))
    return out_images, out_labels
