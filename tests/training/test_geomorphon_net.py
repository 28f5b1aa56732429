"""The landform network's pieces: lines of sight in the graph that reproduce geomorphons (and r.geomorphon, the
independent reference), terrain continued rather than reflected at edges and voids, and the recipe end to end at
toy size through the plugin's engine."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal

from deepstrata.inference.engine.model import load_model
from training import grass
from training.dems import entries
from training.geomorphon_net import GeomorphonNet
from training.geomorphons import SLOPE, geomorphons
from training.landforms import Recipe, build, export
from training.workflow import engine_output

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "bigtujunga" / "bigtujunga_320x240.tif"


def _dem(path: Path) -> tuple[np.ndarray, float]:
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    z = band.ReadAsArray().astype(np.float32)
    z[z == band.GetNoDataValue()] = np.nan
    cell = ds.GetGeoTransform()[1]
    ds = None
    return z, cell


def _exact() -> GeomorphonNet:
    """The network at the labels' rules: flatness 1 degree, thresholds as sharp as float32 allows."""
    net = GeomorphonNet(24, flat_deg=1.0)
    with torch.no_grad():
        net.log_sharp.fill_(math.log(1e6))
    return net.eval()


def _forms(net: GeomorphonNet, z: np.ndarray, scale: list[float]) -> np.ndarray:
    with torch.no_grad():
        logits = net(torch.from_numpy(z)[None, None], torch.tensor(scale, dtype=torch.float32))
    return logits.argmax(1)[0].numpy() + 1


@pytest.mark.parametrize("cells", [3, 10, 24])
def test_lines_of_sight_in_the_graph_reproduce_the_geomorphon_rules(cells):
    z, cell = _dem(SAMPLE)
    forms = _forms(_exact(), z, [cell, cell, cells * cell])
    labels = geomorphons(z, cell, cells * cell, 1.0)
    inner = (slice(cells, -cells), slice(cells, -cells))  # where every line is whole
    assert (forms[inner] == labels[inner]).all()


def test_the_geomorphon_rules_are_r_geomorphons():
    z, cell = _dem(SAMPLE)
    reference = grass.geomorphon(SAMPLE, 300.0, 1.0, 0)
    ours = geomorphons(z, cell, 299.99, 1.0)  # r.geomorphon keeps cells strictly closer than its search
    inner = (slice(10, -10), slice(10, -10))  # r.geomorphon handles lines that leave the raster its own way
    assert (reference[inner] > 0).all()
    assert (ours[inner] == reference[inner]).all()


def test_a_plane_is_slope_everywhere_even_at_the_edges_and_beside_a_void():
    """Reflecting the DEM at its edge turns a plane into a valley or ridge there; continuing it does not."""
    rows, cols = np.mgrid[0:40, 0:50].astype(np.float32)
    z = 500.0 + 3.0 * cols + 1.5 * rows  # tilted about 6 degrees at 30 m cells
    z[18:22, 20:25] = np.nan
    forms = _forms(_exact(), z, [30.0, 30.0, 300.0])
    valid = ~np.isnan(z)
    assert (forms[valid] == SLOPE).all()


def test_anisotropic_cells_change_the_angles_as_they_should():
    """Geographic cells (east-west half the north-south side): a slope east reads twice as steep as the same
    step north."""
    net = _exact()
    rows, cols = np.mgrid[0:30, 0:30].astype(np.float32)
    east = (0.5 * cols).astype(np.float32)  # 0.5 m per cell eastwards
    high, _, _ = net.lines(torch.from_numpy(east)[None, None], torch.tensor([15.0, 30.0, 150.0]))
    assert float(high[0, 0, 15, 15]) == pytest.approx(0.5 / 15.0, rel=1e-5)  # east: 0.5 m per 15 m


def test_the_recipe_at_toy_size_trains_exports_and_runs_through_the_engine(tmp_path):
    recipe = Recipe(crops=2, epochs=1, settle_epochs=1, scales=(3, 6), train=tuple(entries("train")[:1]))
    net, history = build(recipe, tmp_path)
    assert len(history) == 2 and all(0.0 < epoch["accuracy"] <= 1.0 for epoch in history)
    out = export(net, recipe, {"toy": 1.0}, "python -m training landforms", tmp_path / "toy.onnx")
    card = load_model(str(out), "cpu").card
    assert card.input.nodata == "nan" and card.input.scale is not None and card.input.scale.max_cells == 24
    assert card.input.margin == 26 and card.input.pixel_size_m is None
    classes, result = engine_output(out, SAMPLE)
    assert classes.shape == (240, 320) and set(np.unique(classes)) <= set(range(1, 11))
    assert result.scale == "Scale: search distance 300 m = 10 cells of 30 m."
