"""The anomaly tools on synthetic cubes with planted anomalies: the global RX baseline, the whitened autoencoder
(fit, export, score through the plugin's engine), the fit-anomaly command and the ABU benchmark command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal

from deepstrata.inference.engine.model import model_info

from training import abu, fit_anomaly
from data_fixtures import write_raster
from training.data import DataError
from training.fit_anomaly import FitConfig, WhitenedAutoencoder, fit, pixel_errors, whitening
from training.rx import rx_scores
from training.workflow import engine_output

gdal.UseExceptions()

PLANTED = ((5, 7), (20, 31), (33, 12), (12, 25), (36, 36))
QUICK = FitConfig(epochs=4, rounds=2, chip=10, threads=1)


def synthetic_cube(size: int = 40, bands: int = 30, planted=PLANTED, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(bands, size, size) float32: smooth mixtures of three smooth spectra plus 1% noise, with the ``planted``
    (row, column) pixels moved a tenth of the way to a fourth spectrum (about 4x the noise per band: plain
    z-scored energy misses them, whitened distances do not); and the (size, size) truth (1 = planted)."""
    rng = np.random.default_rng(seed)
    w = np.linspace(0.0, 1.0, bands)
    spectra = np.stack([1.0 + 0.5 * np.sin(2 * np.pi * (f * w + p)) for f, p in ((1.0, 0.0), (1.5, 0.3), (0.7, 0.6))])
    y, x = np.mgrid[0:size, 0:size] / size
    abundance = np.stack([1.2 + np.sin(3 * x), 1.2 + np.cos(2 * y), 1.2 + np.sin(2 * (x + y))])
    abundance /= abundance.sum(axis=0)
    cube = np.einsum("kb,khw->bhw", spectra, abundance) + 0.01 * rng.standard_normal((bands, size, size))
    odd = 1.0 + 0.3 * np.cos(6 * np.pi * w)
    truth = np.zeros((size, size), dtype=np.uint8)
    for r, c in planted:
        cube[:, r, c] = 0.9 * cube[:, r, c] + 0.1 * odd
        truth[r, c] = 1
    return (1000 * cube).astype(np.float32), truth


def write_tif(path: Path, array: np.ndarray) -> Path:
    """A GeoTIFF without georeferencing (unit pixel grid, no CRS), like the ABU scenes."""
    bands = array[None] if array.ndim == 2 else array
    kind = gdal.GDT_Byte if bands.dtype == np.uint8 else gdal.GDT_Float32
    ds = gdal.GetDriverByName("GTiff").Create(str(path), bands.shape[2], bands.shape[1], bands.shape[0], kind)
    for i, band in enumerate(bands, start=1):
        ds.GetRasterBand(i).WriteArray(band)
    ds = None
    return path


def top(scores: np.ndarray, n: int) -> set[tuple[int, int]]:
    """The (row, column) of the n highest scores."""
    flat = np.argsort(-np.nan_to_num(scores, nan=-np.inf).ravel(), kind="stable")[:n]
    return {(int(i // scores.shape[1]), int(i % scores.shape[1])) for i in flat}


def test_rx_ranks_the_planted_pixels_first() -> None:
    cube, _ = synthetic_cube()
    assert top(rx_scores(cube), len(PLANTED)) == set(PLANTED)


def test_untrained_model_scores_the_whitened_distance() -> None:
    """With every component kept and no trimming, the model's error before training is the RX score."""
    cube, _ = synthetic_cube(size=20, bands=8, planted=())
    x = (cube - cube.mean(axis=(1, 2), keepdims=True)) / cube.std()
    mean, basis, scale = whitening(x.reshape(8, -1).T.astype(np.float64), components=8, trim=0.0)
    torch.manual_seed(0)
    errors = pixel_errors(WhitenedAutoencoder(mean, basis, scale), x[None])[0]
    np.testing.assert_allclose(errors, rx_scores(cube), rtol=1e-3)


def test_whitening_keeps_only_the_numerical_rank() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 6))  # rank 3 in 6 bands
    _, basis, scale = whitening(pixels, components=5, trim=0.0)
    assert basis.shape == (6, 3) and scale.shape == (3,)
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-9)


def test_autoencoder_ranks_the_planted_pixels_first_through_the_engine(tmp_path: Path) -> None:
    cube, _ = synthetic_cube()
    raster = write_tif(tmp_path / "cube.tif", cube)
    result = fit(raster, tmp_path / "cube.onnx", QUICK, kind="hyperspectral")
    assert len(result.rounds) == QUICK.rounds
    scores, run = engine_output(result.path, raster, threads=1)
    assert scores.shape == (40, 40) and np.isfinite(scores).all()
    assert any("no CRS" in w for w in run.warnings)
    assert top(scores, len(PLANTED)) == set(PLANTED)
    threshold = result.card["output"]["anomaly"]["threshold"]
    assert np.all(scores[tuple(np.array(PLANTED).T)] > threshold)
    assert 0.005 <= (scores > threshold).mean() <= 0.02  # the default threshold flags about flag_fraction (1%)


def test_fit_anomaly_command_writes_a_calibrated_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cube, _ = synthetic_cube(size=20, bands=5, planted=((4, 4),))
    raster = write_tif(tmp_path / "small.tif", cube)
    out = tmp_path / "small.onnx"
    argv = [str(raster), "--out", str(out), "--epochs", "2", "--rounds", "1", "--bands", "1,2,4",
            "--band-scale", "band"]
    assert fit_anomaly.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    card = model_info(out)["card"]
    assert card["task"] == "anomaly"
    assert [b["name"] for b in card["input"]["bands"]] == ["band 1", "band 2", "band 4"]
    assert len(card["input"]["normalization"]["std"]) == 3  # per band with --band-scale band
    calibration = card["output"]["anomaly"]["calibration"]
    assert calibration["median"] > 0 and calibration["mad"] > 0
    assert printed["calibration"] == calibration and printed["model"] == str(out)
    assert card["training"]["command"] == "python -m training fit-anomaly " + " ".join(argv)
    assert card["training"]["config"]["components_kept"] == 3


def test_nodata_pixels_are_left_out_of_the_fit_and_the_scores(tmp_path: Path) -> None:
    cube, _ = synthetic_cube(size=20, bands=4, planted=())
    cube[:, :6, :] = -9999.0
    raster = write_raster(tmp_path / "holes.tif", cube, nodata=-9999.0)
    result = fit(raster, tmp_path / "holes.onnx", QUICK)
    assert result.card["input"]["normalization"]["mean"][0] == pytest.approx(float(cube[0, 6:].mean()), rel=1e-4)
    scores, _ = engine_output(result.path, raster, threads=1)
    assert np.isnan(scores[:6]).all() and np.isfinite(scores[6:]).all()
    assert abs(float(np.median(scores[6:]))) < 0.05  # calibrated on exactly the valid pixels: median score 0


def test_fit_anomaly_refuses_bad_input_before_writing(tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "tiny.tif", np.ones((3, 6, 6), dtype=np.float32))
    with pytest.raises(DataError, match="at least 2"):
        fit(raster, tmp_path / "tiny.onnx", QUICK)
    with pytest.raises(ValueError, match="--trim"):
        fit(raster, tmp_path / "tiny.onnx", FitConfig(trim=1.0))
    with pytest.raises(ValueError, match="--bottleneck"):
        fit(raster, tmp_path / "tiny.onnx", FitConfig(bottleneck=0))
    assert not (tmp_path / "tiny.onnx").exists()


def test_abu_command_reports_every_scene(tmp_path: Path) -> None:
    folder, out, models = tmp_path / "abu", tmp_path / "report", tmp_path / "models"
    folder.mkdir()
    for name, seed in (("scene-a", 1), ("scene-b", 2)):
        cube, truth = synthetic_cube(size=30, bands=12, planted=((4, 5), (20, 22), (25, 8)), seed=seed)
        write_tif(folder / f"{name}_data.tif", cube)
        write_tif(folder / f"{name}_gt.tif", truth)
    argv = ["--abu", str(folder), "--out", str(out), "--models-dir", str(models), "--epochs", "3", "--rounds", "1"]
    assert abu.main(argv) == 0
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "python -m training abu " + " ".join(argv) in readme and "onnxruntime" in readme
    for name in ("scene-a", "scene-b"):
        document = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert document["roc_auc"] > 0.99 and document["rx_roc_auc"] > 0.99
        assert document["positives"] == 3 and document["scored_pixels"] == 900
        assert "--epochs 3" in document["card"]["command"]
        assert (out / f"{name}_roc.png").stat().st_size > 0 and (models / f"{name}.onnx").exists()
        assert f"| {name} | {document['roc_auc']:.4f} | {document['rx_roc_auc']:.4f} |" in readme
    assert "| **mean** |" in readme
