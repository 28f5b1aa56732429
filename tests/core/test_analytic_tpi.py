"""The bundled analytic landform model (training/analytic_tpi.py) on the Big Tujunga DEM and on synthetic terrain."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from osgeo import gdal

from deepstrata.training import analytic_tpi as tpi

ort = pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "samples" / "bigtujunga_dem.tif"
BUNDLED = REPO / "resources" / "models" / "landforms_tpi.onnx"
VALLEY, LOWER, FLAT, MIDDLE, UPPER, RIDGE = range(6)


@pytest.fixture(scope="module")
def session() -> "ort.InferenceSession":
    return ort.InferenceSession(str(BUNDLED), providers=["CPUExecutionProvider"])


def _run(session: "ort.InferenceSession", elevation: np.ndarray, pad: bool = True) -> np.ndarray:
    z = np.pad(elevation, tpi.RADIUS, mode="reflect") if pad else elevation
    return session.run(None, {"elevation": z[None, None].astype(np.float32)})[0][0]


@pytest.fixture(scope="module")
def sample(session: "ort.InferenceSession") -> tuple[np.ndarray, np.ndarray]:
    elevation = gdal.Open(str(SAMPLE)).ReadAsArray().astype(np.float32)
    return elevation, _run(session, elevation)


def test_bundled_model_is_what_the_builder_writes(tmp_path: Path) -> None:
    rebuilt = tpi.write(tmp_path / "tpi.onnx")
    assert rebuilt.read_bytes() == BUNDLED.read_bytes(), "rerun: " + tpi.COMMAND
    assert BUNDLED.stat().st_size < 20_000


def test_card_is_honest_and_valid() -> None:
    card_module = pytest.importorskip("deepstrata.inference.engine.card")
    meta = {p.key: p.value for p in onnx.load(str(BUNDLED)).metadata_props}
    card = card_module.parse_card(meta["deepstrata"])
    assert card.task == "segmentation" and card.input.kind == "dem"
    assert [c.name for c in card.output.classes] == ["valley", "lower slope", "flat", "middle slope",
                                                     "upper slope", "ridge"]
    assert card.output.crop == tpi.RADIUS and card.input.margin == 0 and card.input.pixel_size_m == 30
    assert "NOT a trained CNN" in card.description and "Weiss (2001)" in card.description
    raw = json.loads(meta["deepstrata"])["training"]
    assert raw["metrics"] == {} and raw["command"] == tpi.COMMAND


def test_output_is_cropped_by_the_radius(session: "ort.InferenceSession") -> None:
    out = _run(session, np.zeros((40, 50), dtype=np.float32), pad=False)
    assert out.shape == (6, 40 - 2 * tpi.RADIUS, 50 - 2 * tpi.RADIUS)


def test_probabilities_sum_to_one(sample: tuple[np.ndarray, np.ndarray]) -> None:
    probs = sample[1]
    assert probs.shape == (6,) + sample[0].shape
    assert probs.min() >= 0.0
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)


def test_class_mix_is_plausible_for_steep_mountains(sample: tuple[np.ndarray, np.ndarray]) -> None:
    share = np.bincount(sample[1].argmax(axis=0).ravel(), minlength=6) / sample[1][0].size
    assert 0.1 < share[VALLEY] < 0.35 and 0.1 < share[RIDGE] < 0.35
    assert share[MIDDLE] > 0.2 and share[FLAT] < 0.05  # under 2 % of the sample is below 5 degrees
    assert share[LOWER] > 0.05 and share[UPPER] > 0.05


def test_valleys_lie_below_nearby_ridges(sample: tuple[np.ndarray, np.ndarray]) -> None:
    elevation, probs = sample
    classes = probs.argmax(axis=0)
    differences = []
    for r in range(0, elevation.shape[0] - 31, 32):
        for c in range(0, elevation.shape[1] - 31, 32):
            z, k = elevation[r:r + 32, c:c + 32], classes[r:r + 32, c:c + 32]
            if (k == VALLEY).sum() >= 10 and (k == RIDGE).sum() >= 10:
                differences.append(z[k == RIDGE].mean() - z[k == VALLEY].mean())
    assert len(differences) > 100
    assert min(differences) > 0 and np.median(differences) > 50


def test_synthetic_terrain(session: "ort.InferenceSession") -> None:
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float32)
    gentle = 1000 + cols * 30 * np.tan(np.radians(1.0))   # planes: TPI 0, unpadded so no fold at the edges
    steep = 1000 + cols * 30 * np.tan(np.radians(20.0))
    assert (_run(session, gentle, pad=False).argmax(axis=0) == FLAT).all()
    assert (_run(session, steep, pad=False).argmax(axis=0) == MIDDLE).all()
    valley = 1000 + np.abs(cols - 32) * 30 * np.tan(np.radians(25.0))
    assert (_run(session, valley).argmax(axis=0)[:, 32] == VALLEY).all()
    assert (_run(session, -valley).argmax(axis=0)[:, 32] == RIDGE).all()


def test_absolute_elevation_cancels(session: "ort.InferenceSession",
                                    sample: tuple[np.ndarray, np.ndarray]) -> None:
    window = sample[0][:100, :100]
    np.testing.assert_allclose(_run(session, window + 1500.0), _run(session, window), atol=1e-3)
