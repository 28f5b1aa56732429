"""Terrain models at the DEM's own scale: the scale input (cell sides and search distance in metres), NaN for
nodata and beyond the raster's edge, coarser cells when the search reaches too far, and no blown-up rasters for
models trained at one pixel size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from osgeo import gdal

from deepstrata.inference import InputError, RunOptions, run_model
from deepstrata.inference.engine.card import parse_card
from deepstrata.inference.engine.errors import CardError
from deepstrata.inference.engine.georef import ground_pixel_size
from deepstrata.inference.engine.model import load_model
from deepstrata.inference.engine.progress import telling
from deepstrata.inference.workflows.resample import run_at_model_resolution
from ds_testing import models, rasters
from ds_testing.graph import make_model, tensor_info

SCALE = {"input": "scale", "default_cells": 5, "max_cells": 8, "min_cells": 2}
NAMES = ["nan_neighbours", "cell_x_m", "cell_y_m", "search_m"]


def _probe(path: Path, scale: dict | None = None, nodata: str = "nan", **card) -> Path:
    """A 'model' that shows what the engine feeds it: per pixel, how many of its 3x3 neighbours are NaN, and the
    three values of the scale input."""
    nodes = [helper.make_node("IsNaN", ["input"], ["isnan"]),
             helper.make_node("Cast", ["isnan"], ["isnan_f"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["isnan_f", "ones"], ["count"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Where", ["isnan", "zero", "input"], ["finite"]),
             helper.make_node("Mul", ["finite", "zero"], ["zeros"])]
    for k in range(3):
        nodes += [helper.make_node("Gather", ["scale", f"i{k}"], [f"s{k}"], axis=0),
                  helper.make_node("Add", ["zeros", f"s{k}"], [f"c{k}"])]
    nodes.append(helper.make_node("Concat", ["count", "c0", "c1", "c2"], ["output"], axis=1))
    inits = [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "ones"),
             numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    inits += [numpy_helper.from_array(np.array(k, np.int64), f"i{k}") for k in range(3)]
    graph = make_model(nodes, [tensor_info("input", 1), helper.make_tensor_value_info("scale", TensorProto.FLOAT, [3])],
                       [tensor_info("output", 4)], inits)
    spec = models.card("regression", ["elevation"], names=NAMES, margin=1, tile_size=16,
                       input={"kind": "dem", "nodata": nodata, **({"scale": scale} if scale else {}), **card})
    return models.save(graph, path, spec)


def _dem(path: Path, width: int = 40, height: int = 30, cell: float = 30.0, epsg: int = 32633,
         origin: tuple[float, float] = (500000.0, 4100000.0), hole: bool = True) -> Path:
    z = np.add.outer(np.arange(height), np.arange(width)).astype(np.float32) * 3.0 + 100.0
    if hole:
        z[12:15, 20:23] = -9999.0
    return rasters.write_raster(path, z, geotransform=(origin[0], cell, 0.0, origin[1], 0.0, -cell), epsg=epsg,
                                nodata=-9999.0)


def _bands(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    out = ds.ReadAsArray().astype(np.float64)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    ds = None
    return np.where(out == nodata, np.nan, out)


def test_nodata_and_the_raster_edge_reach_the_model_as_nan(tmp_path):
    dem = _dem(tmp_path / "dem.tif")
    out = tmp_path / "out.tif"
    run_model(_probe(tmp_path / "probe.onnx", SCALE), str(dem), str(out), RunOptions(device="cpu", tile_size=16))
    count = _bands(out)[0]
    assert count[0, 0] == count[-1, -1] == count[0, -1] == count[-1, 0] == 5  # corners: 5 of 9 beyond the edge
    assert (count[0, 1:-1] == 3).all() and (count[1:-1, 0] == 3).all() and (count[-1, 1:-1] == 3).all()
    assert np.isnan(count[12:15, 20:23]).all()  # the void is nodata in the output
    assert count[11, 21] == 3 and count[11, 19] == 1  # beside the void: its cells are NaN, not 0 or mirrored
    interior = np.ones(count.shape, bool)
    interior[[0, -1], :] = interior[:, [0, -1]] = False
    interior[11:16, 19:24] = False
    assert (count[interior] == 0).all()  # tile seams in between: real neighbours, never NaN


def test_models_that_take_zero_keep_mirrored_edges(tmp_path):
    dem = _dem(tmp_path / "dem.tif", hole=False)
    out = tmp_path / "out.tif"
    run_model(_probe(tmp_path / "probe.onnx", SCALE, nodata="zero"), str(dem), str(out),
              RunOptions(device="cpu", tile_size=16))
    assert (_bands(out)[0] == 0).all()


def test_the_scale_input_holds_the_cells_and_the_search_distance(tmp_path):
    dem, probe = _dem(tmp_path / "dem.tif"), _probe(tmp_path / "probe.onnx", SCALE)
    out = tmp_path / "default.tif"
    result = run_model(str(probe), str(dem), str(out), RunOptions(device="cpu"))
    bands = _bands(out)
    assert np.nanmax(np.abs(bands[1:] - np.array([30.0, 30.0, 150.0])[:, None, None])) < 1e-3
    assert result.scale == "Scale: search distance 150 m = 5 cells of 30 m."
    run_model(str(probe), str(dem), str(tmp_path / "given.tif"), RunOptions(device="cpu", search_m=200.0))
    assert np.nanmax(np.abs(_bands(tmp_path / "given.tif")[3] - 200.0)) < 1e-3


def test_geographic_dems_run_on_their_own_grid_with_ground_cell_sides(tmp_path):
    cell = 1 / 1200  # 3 arc-seconds, at 60 degrees north: east-west cells half the north-south ones
    dem = _dem(tmp_path / "geo.tif", cell=cell, epsg=4326, origin=(10.0, 60.0))
    out = tmp_path / "out.tif"
    _probe(tmp_path / "probe.onnx", SCALE)
    notes: list[str] = []
    with telling(lambda kind, text: notes.append(text) if kind == "note" else None):
        done = run_at_model_resolution(str(tmp_path / "probe.onnx"), str(dem), str(out), RunOptions(device="cpu"))
    assert done.plan is None  # no warp into UTM: the model takes the ground cell sides as they are
    ds = gdal.Open(str(dem))
    cx, cy = ground_pixel_size(ds)
    ds = None
    assert 0.45 < cx / cy < 0.55
    bands = _bands(out)
    assert np.nanmax(np.abs(bands[1] - cx)) < 0.01 and np.nanmax(np.abs(bands[2] - cy)) < 0.01
    assert notes[0] == f"Scale: search distance {5 * (cx + cy) / 2:.4g} m = 5 cells of {cx:.3g} x {cy:.3g} m."
    assert " on 'geo.tif': " in notes[1] and "tiles of" in notes[1]  # then the tile count


def test_a_search_beyond_the_models_reach_averages_the_dem_to_coarser_cells(tmp_path):
    dem, probe = _dem(tmp_path / "dem.tif", hole=False), _probe(tmp_path / "probe.onnx", SCALE)
    out = tmp_path / "out.tif"
    options = RunOptions(device="cpu", search_m=480.0)  # 16 cells of 30 m; the model reaches 8
    notes: list[str] = []
    with telling(lambda kind, text: notes.append(text) if kind == "note" else None):
        done = run_at_model_resolution(str(probe), str(dem), str(out), options)
    assert notes[0] == ("Scale: search distance 480 m = 16 cells of 30 m; the model reaches 8 cells, so the DEM "
                        "is averaged to 60 m cells for it (2x coarser) and the results brought back to its grid.")
    assert len(notes) == 2 and "tiles of" in notes[1]  # the copy's scale is not said again
    bands = _bands(out)
    assert bands.shape == (4, 30, 40)  # on the DEM's own grid
    assert np.nanmax(np.abs(bands[1:] - np.array([60.0, 60.0, 480.0])[:, None, None])) < 1e-3
    assert done.result.scale == notes[0]
    with pytest.raises(InputError, match="more than the model reaches"):
        run_model(str(probe), str(dem), str(tmp_path / "direct.tif"), options)


def test_a_search_shorter_than_two_cells_is_refused_with_the_shortest_allowed(tmp_path):
    dem, probe = _dem(tmp_path / "dem.tif"), _probe(tmp_path / "probe.onnx", SCALE)
    with pytest.raises(InputError, match=r"40 m is less than 2 cells of 'dem.tif' \(30 m cells\).*at least 60 m"):
        run_at_model_resolution(str(probe), str(dem), str(tmp_path / "out.tif"), RunOptions(search_m=40.0))
    assert not (tmp_path / "out.tif").exists()


def test_a_dem_without_a_crs_cannot_set_the_scale(tmp_path):
    dem = rasters.write_raster(tmp_path / "nocrs.tif", np.ones((20, 20), np.float32), epsg=None)
    with pytest.raises(InputError, match="no CRS.*Assign the DEM's CRS"):
        run_at_model_resolution(str(_probe(tmp_path / "probe.onnx", SCALE)), str(dem), str(tmp_path / "o.tif"))


@pytest.mark.parametrize("scale, problem", [
    ({"default_cells": 5, "max_cells": 8}, "input.scale.input: is required but missing"),
    ({"input": "scale", "default_cells": 9, "max_cells": 8}, "must lie between min_cells"),
    ({"input": "scale", "default_cells": 5, "max_cells": 8, "min_cells": -1}, "greater than 0"),
])
def test_bad_scale_sections_are_refused_by_name(scale, problem):
    spec = models.card("regression", ["elevation"], input={"scale": scale})
    with pytest.raises(CardError, match=problem):
        parse_card(spec)


def test_a_scale_input_the_graph_lacks_is_refused(tmp_path):
    path = _probe(tmp_path / "probe.onnx", {**SCALE, "input": "cells"})
    with pytest.raises(CardError, match="names the graph input 'cells', but the graph's inputs are input, scale"):
        load_model(str(path), "cpu")


def test_models_at_one_pixel_size_are_not_blown_up_past_twice_unless_asked(tmp_path):
    model = models.conv_segmenter(tmp_path / "seg30.onnx", bands=1, classes=2, pixel_size_m=30.0, tile_size=64)
    coarse = rasters.write_raster(tmp_path / "km.tif", np.random.default_rng(0).random((12, 10), np.float32),
                                  geotransform=(500000.0, 1000.0, 0.0, 4100000.0, 0.0, -1000.0))
    out = tmp_path / "out.tif"
    with pytest.raises(InputError, match=r"1e\+03 m pixels.*upsampling 33.3x \(0.1 megapixels\).*--max-upsampling 34"):
        run_at_model_resolution(str(model), str(coarse), str(out), RunOptions(device="cpu"))
    assert not out.exists()
    done = run_at_model_resolution(str(model), str(coarse), str(out), RunOptions(device="cpu", max_upsampling=34))
    assert done.plan is not None and done.result.width == 10 and out.exists()
