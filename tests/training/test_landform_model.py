"""The shipped landform model on DEMs it never saw, through the plugin's engine: agreement with GRASS
r.geomorphon (run once, with the model's own search distance in metres, flat 1 degree, skip 0), at the DEM's own
scale in a projected and a geographic CRS, and no class piling up at the raster's edge or beside voids: the map of
a DEM cut smaller, or with holes punched in it, against r.geomorphon of the whole DEM at the same cells."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from deepstrata.inference import RunOptions
from deepstrata.inference.workflows.resample import run_at_model_resolution
from training import grass
from training.borders import excess, inset_frame, near, punch_holes
from training.dems import write_with_holes
from training.workflow import read_output

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "resources" / "models" / "landforms_geomorphon.onnx"
LIDAR = REPO / "training" / "datasets" / "minnesota_lidar" / "dem.tif"  # unseen: 1 m, EPSG:26915
TEXAS = REPO / "training" / "datasets" / "dems" / "texas_hydrosheds_3s" / "dem.tif"  # unseen: 3", EPSG:4326
IDS = range(1, 11)


def _classify(dem: Path, out: Path, search_m: float | None = None) -> tuple[np.ndarray, object]:
    done = run_at_model_resolution(str(MODEL), str(dem), str(out), RunOptions(device="cpu", search_m=search_m))
    return read_output(out), done


def _agreement(ours: np.ndarray, reference: np.ndarray) -> float:
    judged = (reference > 0) & (ours > 0)
    assert judged.sum() > 0.8 * ours.size
    return float((ours[judged] == reference[judged]).mean())


@pytest.mark.parametrize("dem, search_m, cells", [(LIDAR, None, 10), (LIDAR, 20.0, 20), (TEXAS, None, 10)])
def test_agrees_with_r_geomorphon_on_unseen_dems_at_their_own_scale(tmp_path, dem, search_m, cells):
    ours, done = _classify(dem, tmp_path / "forms.tif", search_m)
    assert done.plan is None  # nothing resampled: the DEM's own cells, geographic ones included
    sentence = done.result.scale
    assert sentence.startswith("Scale: search distance ") and f"= {cells} cells of " in sentence
    metres = float(sentence.split("search distance ")[1].split(" m")[0])
    reference = grass.geomorphon(dem, metres, 1.0, 0)
    assert _agreement(ours, reference) >= 0.90


@pytest.mark.parametrize("dem, search_m, reach", [(LIDAR, 10.0, 10), (TEXAS, 852.9, 11)])
def test_the_raster_edge_invents_no_landforms(tmp_path, dem, search_m, reach):
    reference = grass.geomorphon(dem, search_m, 1.0, 0)
    inset = reach + 1
    rows, cols, edge = inset_frame(reference.shape, inset)
    cut = tmp_path / "cut.tif"
    gdal.Translate(str(cut), str(dem), srcWin=[inset, inset, reference.shape[1] - 2 * inset,
                                                    reference.shape[0] - 2 * inset])
    ours, done = _classify(cut, tmp_path / "forms.tif")
    assert f"search distance {search_m:g} m" in done.result.scale
    assert (ours > 0).all()  # every cell of the frame keeps a class: nothing hidden as nodata
    truth = reference[rows, cols]
    zone = edge & (truth > 0)  # the cut DEM's outer 3 cells, whose lines are whole in the whole DEM
    assert zone.sum() > 3000
    ratios = excess(ours, truth, zone, IDS)
    assert max(ratios.values()) <= 1.5, ratios


def test_voids_get_no_invented_landforms_and_every_valid_cell_a_class(tmp_path):
    reference = grass.geomorphon(LIDAR, 10.0, 1.0, 0)
    holes = punch_holes(reference > 0, 10)
    assert holes.sum() > 300
    before = LIDAR.read_bytes()
    holed = write_with_holes(LIDAR, holes, tmp_path / "holed.tif")
    ours, _ = _classify(Path(holed), tmp_path / "forms.tif")
    assert LIDAR.read_bytes() == before
    assert (ours[~holes] > 0).all() and (ours[holes] == 0).all()
    ring = near(holes, 3) & ~holes & (reference > 0)
    assert ring.sum() > 1000
    ratios = excess(ours, reference, ring, IDS)
    assert max(ratios.values()) <= 1.5, ratios
