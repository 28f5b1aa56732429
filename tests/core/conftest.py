"""Fixtures for the core (QGIS-free) tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ds_testing import rasters



@pytest.fixture
def smooth3(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 3-band Float32 raster of smooth random fields, 150 x 210 px, EPSG:32633."""
    array = rasters.smooth_random(3, 150, 210, seed=1).astype(np.float32)
    return rasters.write_raster(tmp_path / "smooth3.tif", array), array
