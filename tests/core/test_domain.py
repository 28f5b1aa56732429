"""Inputs outside the model's training domain are said at the start of a run (engine/domain.py): a DEM in feet, a
DSM where a DEM is expected, values far from the card's normalisation; never for the bundled samples or the
bare-earth DEMs of ../shared/data/dem. Notes and stages reach the run's listener (engine/progress.py)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from deepstrata.inference import RunOptions, load_model, run_model
from deepstrata.inference.engine.domain import DSM_SHARE, dsm_share, input_domain, read_sample
from deepstrata.inference.engine.progress import telling
from deepstrata.inference.engine.raster import RasterSource, open_raster
from deepstrata.inference.workflows.resample import run_at_model_resolution
from ds_testing import models, rasters

gdal.UseExceptions()

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "resources" / "models"
SAMPLES = REPO / "resources" / "samples"
SHARED_DEMS = REPO.parent / "shared" / "data" / "dem"
DEM_MODELS = ("landforms_geomorphon", "landforms_tpi", "anomaly_dem")


def _model(name: str):
    return load_model(str(MODELS / f"{name}.onnx"), "cpu")


def _warnings(path: Path, model_name: str, options: RunOptions | None = None) -> list[str]:
    ds = open_raster(str(path))
    return input_domain(ds, str(path), _model(model_name).card, options or RunOptions(), f"'{path.name}'")


def _terrain(size: int = 300, pixel: float = 2.0, seed: int = 3) -> np.ndarray:
    """A smooth bare-earth surface: hills of about 60 m relief, in metres above 400 m."""
    return 400.0 + 60.0 * rasters.smooth_random(1, size, size, seed=seed, sigma=25.0)[0]


def _with_buildings(z: np.ndarray, seed: int = 4) -> np.ndarray:
    """Blocks of 'houses' (4 to 8 cells a side, 6 to 15 m high) every 12 cells: what a city DSM holds."""
    rng, out = np.random.default_rng(seed), z.copy()
    for y in range(4, z.shape[0] - 10, 12):
        for x in range(4, z.shape[1] - 10, 12):
            h, w = rng.integers(4, 9, size=2)
            out[y:y + h, x:x + w] += rng.uniform(6.0, 15.0)
    return out


def _dem(path: Path, z: np.ndarray, pixel: float = 2.0, unit: str = "", epsg: int = 32611,
         wkt: str | None = None) -> Path:
    rasters.write_raster(path, z.astype(np.float32), geotransform=(400000.0, pixel, 0.0, 3800000.0, 0.0, -pixel),
                         epsg=epsg)
    ds = gdal.Open(str(path), gdal.GA_Update)
    if unit:
        ds.GetRasterBand(1).SetUnitType(unit)
    if wkt:
        ds.SetProjection(wkt)
    ds = None
    return path


def test_the_bundled_samples_are_inside_the_domain_of_their_models():
    for name in DEM_MODELS:
        assert _warnings(SAMPLES / "bigtujunga_dem.tif", name) == []
    scene = SAMPLES / "LC80200392015216LGN00_B2-B7_sample.tif"
    assert _warnings(scene, "geology_oli") == []
    assert _warnings(scene, "anomaly_multispectral", RunOptions(bands=[1, 2, 3, 4, 5, 6])) == []
    # geology.onnx takes reflectance: the Map geology presets scale the digital numbers to it first
    scaled = RunOptions(input_scale=[2e-5] * 6, input_offset=[-0.1] * 6)
    assert _warnings(scene, "geology", scaled) == []


def test_digital_numbers_given_to_a_reflectance_model_are_said_in_one_message():
    scene = SAMPLES / "LC80200392015216LGN00_B2-B7_sample.tif"
    [message] = _warnings(scene, "geology")
    assert message.startswith(f"'{scene.name}' holds values outside those the model was trained on (medians of a "
                              "sample): band 1 about ")
    assert "where the model's 'blue' was trained on values of reflectance (0 to about 1)" in message
    assert "band 6 about" in message and "check the band order and the input scaling" in message


def test_values_far_from_the_cards_normalisation_are_said(tmp_path):
    reflectance = rasters.write_raster(tmp_path / "reflectance.tif",
                                       0.05 + 0.3 * rasters.smooth_random(6, 64, 64).astype(np.float32))
    [message] = _warnings(reflectance, "geology_oli")  # a DN model (mean about 9858 +- 1555) fed reflectance
    assert "band 1 about 0.2" in message and "'B2' was trained on values around 9858 ± 1.56e+03" in message
    model = tmp_path / "minmax.onnx"
    models.identity_regressor(model, bands=1, normalization={"method": "minmax", "min": [0.0], "max": [255.0]})
    ds = open_raster(str(reflectance))
    card = load_model(str(model), "cpu").card
    assert input_domain(ds, str(reflectance), card, RunOptions(bands=[1]), "'r'") == []  # 0.2 is in 0..255
    far = rasters.write_raster(tmp_path / "far.tif", np.full((1, 40, 40), 2000.0, np.float32))
    [message] = input_domain(open_raster(str(far)), str(far), card, RunOptions(), "'far.tif'")
    assert "band 1 about 2000 where the model's 'b1' was trained on values between 0 and 255" in message


def test_a_dem_in_feet_is_said_from_its_band_unit_or_its_vertical_crs(tmp_path):
    feet = _dem(tmp_path / "feet.tif", _terrain(64, 30.0) * 3.2808, pixel=30.0, unit="ft")
    [message] = _warnings(feet, "landforms_geomorphon")
    assert message.startswith("'feet.tif' says its elevations are in ft, but the model was trained on metres")
    assert "gdal_calc.py --calc=\"A*0.3048\"" in message
    compound = osr.SpatialReference()
    compound.SetFromUserInput("EPSG:2264+6360")  # NC State Plane (US survey feet) + NAVD88 height (ftUS)
    vertical = _dem(tmp_path / "navd88_ft.tif", _terrain(64, 30.0) * 3.2808, pixel=100.0,
                    wkt=compound.ExportToWkt())
    [message] = _warnings(vertical, "landforms_geomorphon")
    assert "says its elevations are in US survey foot" in message
    plane = osr.SpatialReference()
    plane.ImportFromEPSG(2264)
    horizontal = _dem(tmp_path / "stateplane.tif", _terrain(64), pixel=100.0, wkt=plane.ExportToWkt())
    [message] = _warnings(horizontal, "landforms_geomorphon")
    assert message.startswith("'stateplane.tif' is in a CRS measured in US survey foot; DEMs in such CRSs often")
    metres = _dem(tmp_path / "metres.tif", _terrain(64, 30.0), pixel=30.0, unit="m")
    assert _warnings(metres, "landforms_geomorphon") == []


def test_elevations_no_metre_dem_holds_are_said(tmp_path):
    centimetres = _dem(tmp_path / "cm.tif", 100.0 * (2000.0 + 500 * rasters.smooth_random(1, 64, 64)[0]),
                       pixel=30.0)
    [message] = _warnings(centimetres, "landforms_tpi")
    assert "holds elevations up to 2" in message and "probably in feet or centimetres" in message


def test_a_dsm_with_buildings_is_said_and_a_bare_earth_dem_is_not(tmp_path):
    ground = _terrain()
    bare = _dem(tmp_path / "bare.tif", ground)
    city = _dem(tmp_path / "city.tif", _with_buildings(ground))
    assert _warnings(bare, "landforms_geomorphon") == []
    [message] = _warnings(city, "landforms_geomorphon")
    assert message.startswith("'city.tif' looks like a surface model (DSM) with buildings or trees, not bare earth: ")
    assert "a heuristic" in message and "RemoveOffTerrainObjects" in message
    coarse = _dem(tmp_path / "city_30m.tif", _with_buildings(ground), pixel=30.0)
    assert _warnings(coarse, "landforms_geomorphon") == []  # at 30 m a step is relief, not a house


def test_the_sample_reads_a_few_windows_never_the_whole_raster(tmp_path):
    big = _dem(tmp_path / "big.tif", np.zeros((3000, 2000), np.float32))
    ds = open_raster(str(big))
    sample = read_sample(RasterSource(str(big), ds, [1]))
    assert len(sample) == 9 and sum(valid.size for _, valid in sample) == 9 * 128 * 128


@pytest.mark.skipif(not SHARED_DEMS.is_dir(), reason="../shared/data/dem is not here")
@pytest.mark.parametrize("folder", sorted(p.name for p in SHARED_DEMS.iterdir()) if SHARED_DEMS.is_dir() else [])
def test_only_the_dsm_of_the_held_out_dems_is_said(folder, monkeypatch):
    monkeypatch.setenv("GDAL_PAM_ENABLED", "NO")  # no .aux.xml beside the shared files
    [path] = sorted((SHARED_DEMS / folder).glob("*.tif"))
    said = _warnings(path, "landforms_geomorphon")
    share = dsm_share(read_sample(RasterSource(str(path), open_raster(str(path)), [1])))
    if folder == "holyrood_lidar_dsm_2p5m":
        assert share > 5 * DSM_SHARE and len(said) == 1 and "surface model (DSM)" in said[0]
    else:
        assert said == []


def test_warnings_and_notes_come_before_the_tiles_and_once(tmp_path, caplog):
    city = _dem(tmp_path / "city.tif", _with_buildings(_terrain(200)))
    told: list[tuple[str, str]] = []
    with caplog.at_level(logging.WARNING), telling(lambda kind, text: told.append((kind, text))):
        result = run_model(str(MODELS / "landforms_geomorphon.onnx"), str(city), str(tmp_path / "out.tif"),
                           RunOptions(device="cpu"), on_progress=lambda f: told.append(("progress", f"{f:.2f}")))
    dsm = [w for w in result.warnings if "surface model (DSM)" in w]
    assert len(dsm) == 1 and [r.getMessage() for r in caplog.records].count(dsm[0]) == 1
    kinds = [kind for kind, _ in told]
    first_tile = told.index(next(t for t in told if t[1].startswith("Tile ")))
    assert told[0] == ("doing", "Reading 'city.tif'")
    assert told[1][0] == "note" and told[1][1].startswith("Scale: search distance 20 m = 10 cells of 2 m")
    assert told[2][0] == "note" and " on 'city.tif': " in told[2][1] and "tiles of" in told[2][1]
    assert kinds.index("progress") > 2 and first_tile > 2
    assert told[-1] == ("progress", "1.00")


def test_a_resampled_run_says_why_and_warns_with_the_users_raster_once(tmp_path, caplog):
    feet = _dem(tmp_path / "feet_10m.tif", _terrain(90, 10.0) * 3.2808, pixel=15.0, unit="ft")
    told: list[tuple[str, str]] = []
    with caplog.at_level(logging.WARNING), telling(lambda kind, text: told.append((kind, text))):
        done = run_at_model_resolution(str(MODELS / "landforms_tpi.onnx"), str(feet), str(tmp_path / "o.tif"),
                                       RunOptions(device="cpu"))
    assert done.plan is not None
    notes = [text for kind, text in told if kind == "note"]
    assert notes[0] == done.plan.reason and " on 'feet_10m.tif': " in notes[1]  # not the scratch copy's name
    stages = [text for kind, text in told if kind == "doing"]
    assert stages[0] == "Resampling 'feet_10m.tif' to 30 m" and stages[1] == "Reading 'feet_10m.tif'"
    assert stages[-2:] == ["Bringing the results back to the grid of 'feet_10m.tif'",
                           "Writing 'o.tif' as a Cloud-Optimized GeoTIFF with overviews"]  # not silent at 100 %
    feet_warnings = [w for w in done.result.warnings if "says its elevations are in ft" in w]
    assert len(feet_warnings) == 1 and feet_warnings[0].startswith("'feet_10m.tif' says")
    assert [r.getMessage() for r in caplog.records].count(feet_warnings[0]) == 1
    assert not any("input.tif" in r.getMessage() for r in caplog.records)


def test_the_command_line_prints_the_notes_and_warnings_before_the_progress(tmp_path):
    city = _dem(tmp_path / "city.tif", _with_buildings(_terrain(200)))
    env = dict(os.environ, PYTHONPATH=":".join(sys.path))
    done = subprocess.run([sys.executable, "-m", "deepstrata.inference", "run", "--model",
                           str(MODELS / "landforms_geomorphon.onnx"), "--input", str(city), "--output",
                           str(tmp_path / "o.tif")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    warning = next(i for i, line in enumerate(lines) if line.startswith("warning: 'city.tif' looks like a surface"))
    scale = lines.index("Scale: search distance 20 m = 10 cells of 2 m.")
    tiles = next(i for i, line in enumerate(lines) if " on 'city.tif': " in line and "tiles of" in line)
    first_bar = next(i for i, line in enumerate(lines) if line.startswith("["))
    assert warning < scale < tiles < first_bar  # said before the wait, once
    assert sum("looks like a surface" in line for line in lines) == 1
