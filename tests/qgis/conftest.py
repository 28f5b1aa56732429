"""Fixtures for the QGIS tests: the provider registered, fixture models built once per session."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from qgis.core import QgsApplication

sys.path.insert(0, str(Path(__file__).resolve().parent))  # qgis_support, importable from the test modules

from ds_testing import models  # noqa: E402
from qgis_support import (DEM, DEM_CLASSES, DEM_MODEL_NAME, LANDSAT, RGB_MEAN, RGB_STD,  # noqa: E402
                          named_classes)


_KEEP = []  # as a plugin does, hold the Python provider object: QGIS calls back into it


@pytest.fixture
def ds_provider(qgis_processing):
    """The DeepStrata provider in the processing registry (added once, re-added if a test removed it)."""
    from deepstrata.processing_provider.provider import DeepStrataProvider

    registry = QgsApplication.processingRegistry()
    if registry.providerById("deepstrata") is None:
        provider = DeepStrataProvider()
        assert registry.addProvider(provider)
        _KEEP[:] = [provider]
    return registry.providerById("deepstrata")


@pytest.fixture(scope="session")
def data_copy(tmp_path_factory) -> Path:
    """Copies of the sample rasters: QGIS writes .aux.xml statistics beside layers it opens."""
    folder = tmp_path_factory.mktemp("data")
    for source in (DEM, LANDSAT):
        shutil.copy(source, folder / source.name)
    return folder


@pytest.fixture
def dem(data_copy) -> Path:
    return data_copy / DEM.name


@pytest.fixture
def landsat(data_copy) -> Path:
    return data_copy / LANDSAT.name


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def dem_segmenter(model_dir) -> Path:
    """1 band -> 4 classes, margin 2, tile 64; z-scored so the logits are not saturated everywhere."""
    return models.conv_segmenter(model_dir / "dem_segmenter.onnx", bands=1, classes=4,
                                 input={"bands": [{"name": "elevation", "unit": "m"}]},
                                 normalization={"method": "zscore", "mean": [1000.0], "std": [250.0]},
                                 output={"classes": named_classes(DEM_CLASSES)}, name=DEM_MODEL_NAME)


@pytest.fixture(scope="session")
def rgb_segmenter(model_dir) -> Path:
    """3 bands -> 3 classes, z-scored with the Landsat sample's band statistics (seed 1: band order matters)."""
    return models.conv_segmenter(model_dir / "rgb_segmenter.onnx", bands=3, classes=3, seed=1,
                                 normalization={"method": "zscore", "mean": list(RGB_MEAN), "std": list(RGB_STD)})


@pytest.fixture(scope="session")
def dem_regressor(model_dir) -> Path:
    return models.identity_regressor(model_dir / "identity.onnx", bands=1)
