"""The geology model trained on library spectra: the libraries, band responses, feature labels, the shipped
model on pure library spectra of every sensor, and a tiny end-to-end run of ``python -m training geology``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from osgeo import gdal

from deepstrata.inference.engine.card import parse_card
from training import geology_spectral
from training.band_response import SENSORS, convolve, responses
from training.geology_mixtures import features, label, split
from training.geology_scenes import ratio_rule, scores
from training.spectral_library import (CLAY, CLOUD, FERRIC, FERROUS, GRID, NPV, OTHER, VEGETATION, WATER,
                                       earthlib, modelled, splib07)
from training.workflow import engine_output

REPO = Path(__file__).resolve().parents[2]


def read_card_text(path: str) -> str:
    return next(p.value for p in onnx.load(path).metadata_props if p.key == "deepstrata")
SHIPPED = REPO / "resources" / "models" / "geology.onnx"


@pytest.fixture(scope="module")
def library():
    return {s.name: s for s in splib07() + modelled(np.random.default_rng(3), 2)}


def test_libraries_load_with_every_class_in_both_pools() -> None:
    spectra = splib07() + earthlib() + modelled(np.random.default_rng(0), 8)
    assert len(spectra) > 7000
    assert all(s.reflectance.shape == GRID.shape and np.isfinite(s.reflectance).all() for s in spectra)
    train, held, names = split(spectra)
    for material in (NPV, WATER, VEGETATION, FERRIC, FERROUS, CLAY, OTHER, CLOUD):
        assert len(train.spectra[material]) and len(held.spectra[material]), material
    assert names["splib07"] and names["earthlib"]
    # the split is a fixed rule: the same spectra land in the same pool every time
    assert split(spectra)[2] == names


def test_band_responses_sum_to_one_and_keep_a_flat_spectrum_flat() -> None:
    for sensor in SENSORS:
        rows = responses(sensor)
        assert rows.shape == (6, len(GRID)) and np.allclose(rows.sum(axis=1), 1)
        assert np.allclose(convolve(np.full((1, len(GRID)), 0.3), sensor), 0.3)
    # OLI's narrow NIR band sees a 0.86 um absorption more than TM's wide one
    dip = 1 - 0.5 * np.exp(-0.5 * ((GRID - 0.865) / 0.01) ** 2)
    assert convolve(dip[None], "oli")[0, 3] < convolve(dip[None], "tm")[0, 3] - 0.05


def test_labels_read_the_full_spectrum(library) -> None:
    names = ["kaolinite_wxl", "alunite_K_250C", "hematite_model_0", "olivine_model_0", "jarosite_Na"]
    spectra = [library[name].reflectance for name in names]
    fractions = np.zeros((len(spectra), 8))
    got = label(np.array(spectra), fractions).tolist()
    assert got == [CLAY, CLAY, FERRIC, FERROUS, FERRIC]
    # dry grass absorbs near 2.1 and 2.3 um (cellulose, lignin) but is not clay
    grass = library["dry_veg_grass"]
    assert grass.material == NPV and features_clay(grass.reflectance) > 0.03
    npv = np.zeros((1, 8))
    npv[0, NPV] = 1.0
    assert label(grass.reflectance[None], npv).tolist() == [OTHER]
    # a flat grey spectrum has no absorption: other; the same pixel under 60 % vegetation is vegetation
    grey = np.full((2, len(GRID)), 0.25)
    fractions = np.zeros((2, 8))
    fractions[1, VEGETATION] = 0.6
    assert label(grey, fractions).tolist() == [OTHER, VEGETATION]


def test_ratio_rule_and_scores_count_clay_ferric_other() -> None:
    bands = np.ones((6, 10, 10)) * 0.2
    bands[4, :3] = 0.4  # high SWIR1 / SWIR2 in the top 30 %: above the scene's 60th percentile
    rule = ratio_rule(bands)
    assert (rule[:3] == CLAY).all() and (rule[3:] == OTHER).all()
    truth = np.where(np.arange(100).reshape(10, 10) < 30, CLAY, VEGETATION)
    s = scores(truth, rule)
    assert s["agreement"] == 1.0 and s["clay_found"] == 1.0 and s["clay_share"] == 0.3
    truth[0, :5] = FERRIC  # five ferric pixels called clay: 95 % agreement, all the clay found
    assert scores(truth, rule)["agreement"] == 0.95 and scores(truth, rule)["clay_found"] == 1.0


def features_clay(reflectance: np.ndarray) -> float:
    return float(features(reflectance[None])["clay"][0])


def _raster(path: Path, pixels: np.ndarray) -> Path:
    ds = gdal.GetDriverByName("GTiff").Create(os.fspath(path), pixels.shape[0], 1, 6, gdal.GDT_Float32)
    ds.SetGeoTransform((0, 30, 0, 0, 0, -30))
    for i in range(6):
        ds.GetRasterBand(i + 1).WriteArray(pixels[:, i][None, :].astype(np.float32))
    ds = None
    return path


def test_shipped_model_maps_pure_library_spectra_of_every_sensor(tmp_path, library) -> None:
    card = parse_card(json.loads(read_card_text(os.fspath(SHIPPED))))
    assert [b.name for b in card.input.bands] == ["blue", "green", "red", "nir", "swir1", "swir2"]
    assert {b.unit for b in card.input.bands} == {"reflectance"}
    assert [c.name for c in card.output.classes] == ["water", "vegetation", "ferric iron oxides", "ferrous iron",
                                                     "clay / hydroxyl", "other bare rock and soil", "cloud"]
    wanted = {"kaolinite_wxl": CLAY, "muscovite_medhighAl": CLAY, "alunite_K_250C": CLAY,
              "hematite_model_1": FERRIC, "goethite_model_1": FERRIC, "jarosite_K": FERRIC,
              "vegetation_green": VEGETATION, "water": WATER}
    spectra = np.array([library[name].reflectance for name in wanted])
    for sensor in SENSORS:
        path = _raster(tmp_path / f"{sensor}.tif", convolve(spectra, sensor))
        got, _ = engine_output(SHIPPED, path)
        assert got.ravel().tolist() == list(wanted.values()), sensor


def test_tiny_training_run_writes_model_and_report(tmp_path) -> None:
    out, reports = tmp_path / "geology.onnx", tmp_path / "reports"
    assert geology_spectral.main(["--pixels", "6000", "--epochs", "1", "--districts", "1", "--output",
                                  os.fspath(out), "--reports", os.fspath(reports)]) == 0
    card = json.loads(read_card_text(os.fspath(out)))
    assert card["training"]["metrics"]["district_agreement_model"] > 0
    assert "python -m training geology" in card["training"]["command"]
    text = (reports / "README.md").read_text()
    assert "Synthetic alteration districts" in text and "Landsat 7 ETM+" in text
    assert {"district_oli_truth.png", "geology.json"} <= {p.name for p in reports.iterdir()}
