"""Shared by the QGIS tests: test rasters, fixture model helpers, a feedback that records what it is told."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from qgis.core import QgsProcessingFeedback

from ds_testing import models, rasters

DATA = Path(__file__).resolve().parents[1] / "data"
DEM = DATA / "bigtujunga" / "bigtujunga_320x240.tif"  # Int16, 320 x 240, nodata 32767, EPSG:32611
LANDSAT = DATA / "landsat8_florida" / "l8_B4B3B2_256.tif"  # UInt16, 3 bands, 256 x 256, EPSG:32616
DEM_NODATA = 32767
DEM_MODEL_NAME = "DEM landforms (test)"
DEM_CLASSES = ("flat", "slope", "ridge", "valley")
RGB_MEAN, RGB_STD = (9380.0, 9855.0, 10355.0), (1358.0, 1234.0, 1202.0)  # Landsat sample, bands 1..3


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps what an algorithm reports so tests can assert on it."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.progress: list[float] = []
        self.progressChanged.connect(self.progress.append)

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.infos.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802
        self.warnings.append(warning)
        super().pushWarning(warning)


def named_classes(names) -> list[dict]:
    return [{"value": i + 1, "name": n, "color": c} for i, (n, c) in enumerate(zip(names, models.colors(len(names))))]


def expected_classes(model_path: Path, array_chw: np.ndarray, normalize) -> np.ndarray:
    """Whole-image reference: argmax of the model's logits + 1 (class values are 1..n in the fixtures)."""
    logits = models.reference_run(model_path, normalize(np.asarray(array_chw, dtype=np.float32)))
    return logits.argmax(axis=0) + 1


def zscore(mean, std):
    mean, std = np.asarray(mean, np.float32)[:, None, None], np.asarray(std, np.float32)[:, None, None]
    return lambda x: (x - mean) / std


def read(path) -> tuple[np.ndarray, tuple, str, list]:
    return rasters.read_raster(path)
