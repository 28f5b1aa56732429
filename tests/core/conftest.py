"""Fixtures for the core (QGIS-free) tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepstrata.inference import ModelCard, parse_card
from ds_testing import models, rasters
from ds_testing.faults import Bench
from ds_testing.paths import DEM
from ds_testing.scenes import REFLECTANCE

@pytest.fixture
def smooth3(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 3-band Float32 raster of smooth random fields, 150 x 210 px, EPSG:32633."""
    array = rasters.smooth_random(3, 150, 210, seed=1).astype(np.float32)
    return rasters.write_raster(tmp_path / "smooth3.tif", array), array


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """The models most catalogue cases use, built once and copied into each bench."""
    folder = tmp_path_factory.mktemp("catalogue_models")
    models.conv_segmenter(folder / "seg.onnx", bands=1, classes=3,
                          normalization={"method": "zscore", "mean": [1000.0], "std": [250.0]})
    models.conv_segmenter(folder / "seg3.onnx", bands=3, classes=3)
    models.identity_regressor(folder / "reg.onnx", bands=1)
    return folder


@pytest.fixture
def bench(tmp_path, store):
    """A catalogue workspace (ds_testing.faults.Bench) with a copy of the DEM and the models."""
    b = Bench(tmp_path / "bench")
    b.name("dem", b.copy(DEM, "dem.tif"))
    for name in ("seg", "seg3", "reg"):
        target = b.models / f"{name}.onnx"
        target.write_bytes((store / f"{name}.onnx").read_bytes())
        b.name(name, target)
    with b.stack:
        yield b


@pytest.fixture(scope="module")
def dn() -> ModelCard:
    """A card taking the six OLI bands B2-B7 in Level-1 DN (as anomaly_multispectral.onnx)."""
    return parse_card(models.card("regression", models.oli_bands(), kind="multispectral"))


@pytest.fixture(scope="module")
def refl() -> ModelCard:
    """A card taking blue, green, red, nir, swir1, swir2 in reflectance (as geology.onnx)."""
    return parse_card(models.card("regression", REFLECTANCE, kind="multispectral"))
