"""The planting generator (training/terrain_anomalies.py): sizes in cells and metres at any cell size, sign,
footprint, determinism, nodata; and the detector stem's NaN-aware statistics (training/terrain_anomaly_net.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.terrain_anomalies import FOOTPRINT_FRACTION, KINDS, SPECS, plant, plant_scene, sites_in
from training.terrain_anomaly_net import TerrainAnomalyNet, TerrainFeatures


def slope(shape=(160, 160), cell=10.0) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    return 300.0 + 0.2 * cell * rows + 0.1 * cell * cols  # a plane: nothing anomalous


@pytest.mark.parametrize("cell", [1.0, 30.0, (600.0, 900.0)])
def test_every_kind_has_its_documented_size_relief_and_sign_at_any_cell_size(cell):
    dem = slope()
    sites = np.array([[40 + 40 * (i // 3), 40 + 40 * (i % 3)] for i in range(len(KINDS))])
    scene = plant(dem, sites, cell, seed=3)
    cx = cell if np.isscalar(cell) else cell[0]
    assert [p.kind for p in scene.planted] == list(KINDS)
    for i, p in enumerate(scene.planted):
        spec = SPECS[p.kind]
        assert spec.size_cells[0] <= p.size_cells <= spec.size_cells[1]
        assert p.size_m == pytest.approx(p.size_cells * cx)
        unit = cx if spec.per_cell else p.size_m
        assert spec.relief[0] * unit <= p.relief_m <= spec.relief[1] * unit
        if spec.length_cells[1]:
            assert spec.length_cells[0] <= p.length_cells <= spec.length_cells[1]
        cells = scene.labels == i + 1
        assert cells.sum() == p.cells >= 1
        change = (scene.elevation - dem)[cells]
        assert np.all(np.sign(change) == p.sign), p.kind  # pits, quarries, voids down; mounds, embankments up
        assert np.abs(change).max() >= 0.99 * p.relief_m or p.kind in ("quarry", "void")
        assert np.all(np.abs(change) >= FOOTPRINT_FRACTION * p.relief_m)
    # nothing changes outside the touched cells, and the footprint lies inside them
    changed = scene.elevation != dem
    assert not (changed & ~scene.touched).any() and not (scene.footprint & ~scene.touched).any()


def test_a_quarry_has_a_flat_floor_below_its_rim_and_a_spike_is_one_or_four_cells():
    dem = slope()
    scene = plant(dem, np.array([[80, 80], [30, 30]]), 25.0, seed=5, kinds=("quarry", "spike"))
    quarry, spike = scene.planted
    floor = scene.elevation[scene.labels == 1]
    assert np.ptp(floor) == 0 and floor[0] < dem[scene.labels == 1].min()
    assert quarry.size_cells >= 4 and spike.cells in (1, 4)


def test_the_generator_is_deterministic_and_leaves_nodata_alone():
    dem = slope((200, 200))
    dem[90:110, 90:110] = np.nan
    a = plant_scene(dem, (8.3, 10.3), seed=11, per_kind=2)
    b = plant_scene(dem, (8.3, 10.3), seed=11, per_kind=2)
    c = plant_scene(dem, (8.3, 10.3), seed=12, per_kind=2)
    np.testing.assert_array_equal(a.elevation, b.elevation)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.planted == b.planted and a.planted != c.planted
    assert np.isnan(a.elevation[90:110, 90:110]).all() and not a.touched[90:110, 90:110].any()
    assert not np.isnan(dem[0, 0]) and np.isnan(dem[100, 100])  # the input is not modified


def test_sites_keep_their_distance_and_stay_inside_the_mask():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:90] = True
    sites = sites_in(mask, 50, spacing=12, rng=np.random.default_rng(1), edge=5)
    assert 5 <= len(sites) <= 50
    assert (sites[:, 0] >= 25).all() and (sites[:, 0] < 75).all() and (sites[:, 1] >= 35).all()
    gaps = np.abs(sites[:, None] - sites[None]).max(axis=2) + np.eye(len(sites), dtype=int) * 99
    assert gaps.min() >= 12


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="cell size must be positive"):
        plant(slope(), np.array([[50, 50]]), 0.0, seed=0)
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        plant(slope(), np.array([[50, 50]]), 1.0, seed=0, kinds=("crater",))


def _stem(z: np.ndarray, cell=(10.0, 10.0), search=160.0) -> np.ndarray:
    with torch.no_grad():
        f, _ = TerrainFeatures()(torch.from_numpy(z.astype(np.float32))[None, None],
                                 torch.tensor([cell[0], cell[1], search]))
    return f[0].numpy()


def test_the_stem_invents_no_relief_on_a_plane_at_borders_and_beside_holes():
    z = slope((120, 120))
    z[50:60, 50:70] = np.nan
    f = _stem(z)
    t = f[0:12:3]  # the four signed residuals / roughness (whose floor is 0.12 m at 10 m cells)
    # a plane rising 240 m across the DEM stays a plane (to float32 rounding) at the edges and beside the hole
    assert np.abs(t[:, ~np.isnan(z)]).max() < 0.25
    assert np.abs(t[:, 20:40, 20:40]).max() < 0.05


def test_the_detector_outputs_nan_only_where_the_input_is_nan_and_the_sign_of_a_pit():
    torch.manual_seed(0)
    net = TerrainAnomalyNet(hidden=4).eval()
    z = slope((96, 96))
    z[40:47, 40:47] -= 30.0
    z[0:5, 0:5] = np.nan
    with torch.no_grad():
        out = net(torch.from_numpy(z.astype(np.float32))[None, None], torch.tensor([10.0, 10.0, 160.0]))[0].numpy()
    assert out.shape == (2, 96, 96)
    assert np.isnan(out[:, 0:5, 0:5]).all() and np.isfinite(out[:, ~np.isnan(z)]).all()
    assert out[1, 43, 43] < -15.0 and abs(out[1, 80, 80]) < 1e-2  # a depression; the plane around stays 0
