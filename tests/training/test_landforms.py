"""Pieces the training tools rely on: the measured
margin (training/receptive.py), the multi-scale relief stem and the report previews (training/render.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from training.geomorphons import CLASSES
from training.nets import RelativeRelief
from training.receptive import effective_margin, margin_checks
from training.render import class_rgb, edges, write_class_png
from training.workflow import block_mask, command_line

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "bigtujunga" / "bigtujunga_320x240.tif"


def _stacked_convs(layers: int) -> nn.Module:
    """``layers`` 5x5 convolutions (receptive radius 2 x layers) with fixed random weights, 3 output channels."""
    torch.manual_seed(0)
    convs: list[nn.Module] = []
    for i in range(layers):
        convs += [nn.Conv2d(1 if i == 0 else 3, 3, 5, padding=2), nn.Tanh()]
    return nn.Sequential(*convs[:-1]).eval()


@pytest.mark.parametrize("layers", [1, 3])
def test_measured_margin_is_the_receptive_radius_of_a_plain_conv_stack(layers):
    sample = np.random.default_rng(1).standard_normal((1, 96, 96)).astype(np.float32)
    check = effective_margin(_stacked_convs(layers), sample, multiple=1, tolerance=0.0, max_shift=1e-6, tile=32)
    assert check.margin == 2 * layers
    assert check.changed == 0.0


def test_margin_checks_shrink_with_the_margin_and_refuse_a_small_sample():
    sample = np.random.default_rng(2).standard_normal((1, 96, 96)).astype(np.float32)
    checks = margin_checks(_stacked_convs(3), sample, multiple=1, tile=32, limit=8)
    assert [c.margin for c in checks] == [0, 2, 4, 6, 8]
    assert checks[0].max_shift > 0.01 and checks[-1].max_shift < 1e-6
    with pytest.raises(ValueError, match="at least 64 px"):
        margin_checks(_stacked_convs(1), sample[:, :40, :40], multiple=1, tile=32)


def test_relative_relief_stacks_radii_and_ignores_absolute_elevation():
    stem = RelativeRelief((1, 3), scale=10.0)
    z = torch.from_numpy(np.random.default_rng(3).normal(500, 50, (1, 1, 20, 20)).astype(np.float32))
    out = stem(z)
    assert out.shape == (1, 2, 20, 20) and stem.channels == 2 and stem.radius == 3
    torch.testing.assert_close(stem(z + 1000.0), out, atol=2e-4, rtol=0)
    centre = z[0, 0, 5:8, 5:8]
    assert float(out[0, 0, 6, 6]) == pytest.approx(float((z[0, 0, 6, 6] - centre.mean()) / 10.0), abs=1e-4)
    with pytest.raises(ValueError, match="positive"):
        RelativeRelief((0, 2), 1.0)


def test_class_previews_use_the_card_colours_and_outline_a_mask(tmp_path):
    classes = np.array([[1, 9, 0], [10, 99, 3]])
    rgb = class_rgb(classes, CLASSES)
    assert rgb[0, 0].tolist() == [220, 220, 220] and rgb[0, 1].tolist() == [0, 0, 255]
    assert rgb[0, 2].tolist() == [255, 255, 255] and rgb[1, 1].tolist() == [255, 255, 255]  # nodata, unknown
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    ring = edges(mask)
    assert ring.sum() == 8 and not ring[2, 2]
    path = write_class_png(np.ones((5, 5), int), tmp_path / "a.png", CLASSES, outline=mask)
    image = np.asarray(Image.open(path))
    assert image[1, 1].tolist() == [0, 0, 0] and image[2, 2].tolist() == [220, 220, 220]


def test_block_mask_and_command_line():
    blocks = {(0, 0, 0): "train", (0, 1, 0): "test", (0, 0, 1): "test", (1, 0, 0): "test"}
    mask = block_mask((6, 7), blocks, 4, "test")
    assert mask[0:4, 4:7].all() and mask[4:6, 0:4].all() and mask.sum() == 12 + 8
    assert command_line(["landforms", "--dem", "a b.tif"]) == "python -m training landforms --dem 'a b.tif'"


def test_line_of_sight_features_are_the_steepest_slopes_per_direction():
    from training.nets import DIRECTIONS, LineOfSight

    stem = LineOfSight(cell_m=30.0, radius_m=90.0)  # 3 axial steps, 2 diagonal ones
    cols = np.arange(20, dtype=np.float32)
    plane = torch.from_numpy(np.tile(cols * 3.0, (20, 1))[None, None])  # rises 3 m per 30 m cell eastwards
    features = stem(plane + 1234.0)[0, :, 10, 10].numpy()
    unit = np.tan(np.radians(1.0))
    expected = {(0, 1): 0.1, (0, -1): -0.1, (-1, 0): 0.0, (1, 0): 0.0,
                (-1, 1): 0.1 / np.sqrt(2), (1, -1): -0.1 / np.sqrt(2)}
    for i, direction in enumerate(DIRECTIONS):
        if direction in expected:
            t = expected[direction] / unit
            assert features[2 * i] == pytest.approx(np.sign(t) * np.log1p(abs(t)), abs=1e-4)      # steepest up
            assert features[2 * i + 1] == pytest.approx(np.sign(t) * np.log1p(abs(t)), abs=1e-4)  # and down
    pit = torch.zeros(1, 1, 15, 15)
    pit[0, 0, 7, 7] = -30.0
    around = stem(pit)[0, :, 7, 7].numpy()
    assert (around[0::2] > 0).all() and stem.pad == 3 and stem.channels == 16  # a pit looks up everywhere
