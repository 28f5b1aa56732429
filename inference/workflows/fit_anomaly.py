"""Fit an anomaly model to one raster with numpy alone, calibrate it on that raster, and write it as a carded
.onnx file that the engine runs like any other anomaly model (no PyTorch; the `onnx` package writes the graph).

The model, for pixels x of any band count C (normalised by the card's z-score: per-band mean, one common std):

1. **Robust PCA whitening.** Mean and covariance of the pixels, re-estimated twice without the ``pca_trim``
   share farthest (whitened) from the mean; z = the ``components`` (k) leading principal components of x - mean,
   each divided by its standard deviation. The many weak, noise-dominated components are left out, as in the
   torch fitter (training/fit_anomaly.py).
2. **A trimmed Gaussian mixture in z.** ``clusters`` (J) components fitted by EM on the kept pixels; each
   iteration leaves the ``em_trim`` share of worst-explained pixels out of the update, and each component's
   covariance is shrunk by ``shrink`` towards a multiple of the identity so that a small group of anomalies
   cannot become its own component. ``restarts`` EM runs from different seeds are pooled into one mixture.
3. **The score** is the mixture's negative log-likelihood, -log sum_j pi_j N(z; m_j, S_j): a soft minimum of
   the components' Mahalanobis distances. The card calibrates it with the median and MAD over the raster's
   valid pixels and a threshold that flags ``flag_fraction`` of them.

The graph (:mod:`.anomaly_graph`) outputs that score directly (card ``output.anomaly.error = "score"``).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from osgeo import gdal

from ..engine.errors import CancelledError, InputError
from ..engine.georef import mean_pixel_size
from ..engine.raster import open_raster

gdal.UseExceptions()

MAD_SCALE = 1.4826  # the engine's robust z-score: (score - median) / (1.4826 x MAD)
MAX_VALUES = 20_000_000  # pixel x band values read for fitting: about 160 MB as float64
VERSION = "1.0.0"
KINDS = ("any", "multispectral", "hyperspectral", "rgb", "dem")


class FitError(InputError):
    """The raster cannot be fitted as given (too few valid pixels, a band out of range, an option out of range)."""


@dataclass(frozen=True)
class FitConfig:
    components: int = 30
    clusters: int = 4
    shrink: float = 0.5
    pca_trim: float = 0.02
    em_trim: float = 0.05
    em_iterations: int = 25
    em_pixels: int = 20000
    restarts: int = 5
    max_pixels: int = 250000
    flag_fraction: float = 0.001
    seed: int = 0

    def check(self) -> None:
        """FitError naming the first option out of range."""
        for name in ("components", "clusters", "em_iterations", "em_pixels", "restarts", "max_pixels"):
            if getattr(self, name) < 1:
                raise FitError(f"The anomaly fit's '{name}' must be at least 1, not {getattr(self, name)}.")
        for name in ("shrink", "pca_trim", "em_trim", "flag_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0 or (name == "flag_fraction" and value == 0.0):
                raise FitError(f"The anomaly fit's '{name}' is a share in [0, 1), not {value}.")


@dataclass
class Mixture:
    """The fitted model in the normalised input's units: whitening (mean (C,), basis (C, k), scale (k,)) and
    the mixture in whitened space (weights (J,), means (J, k), Cholesky factors (J, k, k))."""

    mean: np.ndarray
    basis: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    chol: np.ndarray

    @property
    def components(self) -> int:
        return int(self.basis.shape[1])

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per component j: y_j = A_j x + b_j with score = -logsumexp_j(-||y_j||^2 / 2 + c_j); returns A (J, k, C),
        b (J, k) and c (J,)."""
        project = self.basis.T / self.scale[:, None]  # (k, C): x -> z
        a, b = [], []
        for mean_j, chol_j in zip(self.means, self.chol):
            inverse = np.linalg.inv(chol_j)
            a.append(inverse @ project)
            b.append(-inverse @ (project @ self.mean + mean_j))
        c = np.log(self.weights) - np.log(np.diagonal(self.chol, axis1=1, axis2=2)).sum(axis=1)
        return np.stack(a), np.stack(b), c

    def score(self, pixels: np.ndarray) -> np.ndarray:
        """(P,) float64 scores of (P, C) normalised pixels: the numpy reference of the graph."""
        a, b, c = self.affine()
        logs = np.stack([-0.5 * np.square(pixels @ a_j.T + b_j).sum(axis=1) + c_j for a_j, b_j, c_j in zip(a, b, c)],
                        axis=1)
        top = logs.max(axis=1)
        return -(top + np.log(np.exp(logs - top[:, None]).sum(axis=1)))


def whitening(pixels: np.ndarray, components: int, trim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                             np.ndarray]:
    """Mean, principal directions (C, k), standard deviations (k,) and the kept-pixel mask of (P, C) pixels,
    estimated twice without the ``trim`` share farthest from the mean; k drops components below 1e-8 of the
    largest variance."""
    keep = np.ones(len(pixels), dtype=bool)
    for _ in range(2):
        mean = pixels[keep].mean(axis=0)
        centred = pixels - mean
        cov = np.atleast_2d(np.cov(centred[keep], rowvar=False))
        values, vectors = np.linalg.eigh(cov)
        values, vectors = values[::-1], vectors[:, ::-1]
        top = max(float(values[0]), 1e-30)
        k = max(1, min(components, int((values > 1e-8 * top).sum())))
        values, vectors = np.maximum(values[:k], 1e-12 * top), vectors[:, :k]
        distance = np.square(centred @ vectors / np.sqrt(values)).sum(axis=1)
        keep = distance <= np.quantile(distance, 1.0 - trim)
    return mean, vectors, np.sqrt(values), keep


def _log_densities(z: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray) -> np.ndarray:
    logs = np.empty((len(z), len(weights)))
    for j in range(len(weights)):
        y = (z - means[j]) @ np.linalg.inv(chol[j]).T  # a matrix product: faster than solve() on many pixels
        logs[:, j] = -0.5 * np.square(y).sum(axis=1) - np.log(np.diag(chol[j])).sum() + np.log(weights[j])
    return logs


def mixture(z: np.ndarray, config: FitConfig, rng: np.random.Generator,
            is_cancelled: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``restarts`` EM runs (:func:`em`) from different seeds, pooled into one mixture of restarts x J components
    with each run's weights divided by ``restarts`` (the average of their densities): steadier than any one run
    (on ABU, one run's mean AUC moves by about 0.002 with the seed)."""
    runs = [em(z, config, rng, is_cancelled) for _ in range(config.restarts)]
    weights = np.concatenate([run[0] for run in runs]) / len(runs)
    return weights, np.concatenate([run[1] for run in runs]), np.concatenate([run[2] for run in runs])


def em(z: np.ndarray, config: FitConfig, rng: np.random.Generator,
       is_cancelled: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trimmed, shrunk EM of a J-component Gaussian mixture on (P, k) whitened pixels (module docstring);
    k-means++ seeding. Returns weights (J,), means (J, k) and Cholesky factors (J, k, k)."""
    n, k = z.shape
    clusters = max(1, min(config.clusters, n // max(2 * k, 2)))
    means = [z[rng.integers(n)]]
    for _ in range(clusters - 1):
        gaps = np.min([np.square(z - m).sum(axis=1) for m in means], axis=0)
        means.append(z[rng.choice(n, p=gaps / gaps.sum())] if gaps.sum() > 0 else z[rng.integers(n)])
    mu = np.array(means)
    chol = np.repeat(np.eye(k)[None], clusters, axis=0)
    weights = np.full(clusters, 1.0 / clusters)
    for _ in range(config.em_iterations):
        if is_cancelled():
            raise CancelledError()
        logs = _log_densities(z, weights, mu, chol)
        top = logs.max(axis=1, keepdims=True)
        resp = np.exp(logs - top)
        total = resp.sum(axis=1, keepdims=True)
        score = -(top[:, 0] + np.log(total[:, 0]))
        resp *= (score <= np.quantile(score, 1.0 - config.em_trim))[:, None] / total
        counts = resp.sum(axis=0) + 1e-9
        weights = counts / counts.sum()
        mu = resp.T @ z / counts[:, None]
        for j in range(clusters):
            centred = z - mu[j]
            cov = (resp[:, j, None] * centred).T @ centred / counts[j]
            cov = (1 - config.shrink) * cov + (config.shrink * np.trace(cov) / k + 1e-6) * np.eye(k)
            chol[j] = np.linalg.cholesky(cov)
    return weights, mu, chol


def fit_pixels(pixels: np.ndarray, config: FitConfig | None = None,
               is_cancelled: Callable[[], bool] = lambda: False) -> Mixture:
    """Fit on (P, C) normalised pixels (no invalid ones)."""
    config = config or FitConfig()
    config.check()
    rng = np.random.default_rng(config.seed)
    pixels = np.asarray(pixels, dtype=np.float64)
    mean, basis, scale, keep = whitening(pixels, config.components, config.pca_trim)
    kept = pixels[keep]
    if len(kept) > config.em_pixels:
        kept = kept[np.sort(rng.choice(len(kept), config.em_pixels, replace=False))]
    z = (kept - mean) @ basis / scale
    weights, means, chol = mixture(z, config, rng, is_cancelled)
    return Mixture(mean, basis, scale, weights, means, chol)


@dataclass
class Calibration:
    median: float
    mad: float
    threshold: float  # robust z-score that flags about flag_fraction of the fitted pixels

    def card(self) -> dict[str, Any]:
        return {"error": "score", "calibration": {"median": round(self.median, 8), "mad": round(self.mad, 8)},
                "threshold": round(self.threshold, 4)}


def calibrate(scores: np.ndarray, flag_fraction: float) -> Calibration:
    median = float(np.median(scores))
    mad = max(float(np.median(np.abs(scores - median))), 1e-12)
    top = float(np.quantile(scores, 1.0 - flag_fraction))
    return Calibration(median, mad, (top - median) / (MAD_SCALE * mad))


@dataclass
class Sample:
    """Valid pixels (P, C) of the raster, read on a regular grid of at most ``max_pixels`` cells, and the bands."""

    pixels: np.ndarray
    bands: list[int]
    names: list[str]
    step: float = 1.0


def read_sample(path: str, bands: Sequence[int] | None = None, max_pixels: int = 250000) -> Sample:
    """The raster's valid pixels (every band valid: nodata, mask band, finite), read whole or decimated by GDAL
    to at most ``max_pixels`` cells and ``MAX_VALUES`` values."""
    ds = open_raster(path)
    count = ds.RasterCount
    chosen = list(bands) if bands else list(range(1, count + 1))
    bad = [b for b in chosen if not 1 <= b <= count]
    if bad:
        raise FitError(f"Band {bad[0]} is not in '{Path(path).name}', which has {count} band(s).")
    width, height = ds.RasterXSize, ds.RasterYSize
    cells = min(max_pixels, max(1000, MAX_VALUES // len(chosen)))  # a hyperspectral cube: fewer pixels
    step = max(1.0, math.sqrt(width * height / cells))
    bw, bh = max(1, int(width / step)), max(1, int(height / step))
    values = np.empty((len(chosen), bh, bw), dtype=np.float64)
    valid = np.ones((bh, bw), dtype=bool)
    names = []
    for i, b in enumerate(chosen):
        band = ds.GetRasterBand(b)
        names.append(band.GetDescription().strip() or f"band {b}")
        values[i] = band.ReadAsArray(buf_xsize=bw, buf_ysize=bh, buf_type=gdal.GDT_Float64)
        flags = band.GetMaskFlags()
        if flags == gdal.GMF_NODATA:
            valid &= values[i] != band.GetNoDataValue()
        elif not flags & gdal.GMF_ALL_VALID:
            valid &= band.GetMaskBand().ReadAsArray(buf_xsize=bw, buf_ysize=bh) > 0
        valid &= np.isfinite(values[i])
    return Sample(values[:, valid].T, chosen, names, step)


def normalization(pixels: np.ndarray) -> dict[str, Any]:
    """The card's z-score: per-band mean, one common std (the RMS of the bands' stds) that keeps the bands'
    relative variance for the PCA."""
    std = float(np.sqrt(np.mean(pixels.var(axis=0))))
    return {"method": "zscore", "mean": [float(v) for v in pixels.mean(axis=0)],
            "std": std if std > 0 else 1.0}


@dataclass
class FitResult:
    path: Path
    card: dict[str, Any]
    model: Mixture
    calibration: Calibration
    pixels: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def fit_raster(path: str, out: str, bands: Sequence[int] | None = None, config: FitConfig | None = None,
               name: str = "", kind: str = "any", command: str = "",
               is_cancelled: Callable[[], bool] = lambda: False) -> FitResult:
    """Fit, calibrate and write ``out`` (.onnx with its card): see the module docstring. Needs the `onnx`
    package to write the graph (DependencyError naming the fix when it is missing)."""
    from .anomaly_graph import require_onnx, write_model

    require_onnx()
    config = config or FitConfig()
    config.check()
    if kind not in KINDS:
        raise FitError(f"The model's input kind is one of {', '.join(KINDS)}, not {kind!r}.")
    started = time.perf_counter()
    sample = read_sample(path, bands, config.max_pixels)
    minimum = max(10, 2 * len(sample.bands))
    if len(sample.pixels) < minimum:
        raise FitError(f"'{Path(path).name}' has {len(sample.pixels)} valid pixels in the bands chosen; fitting "
                       f"needs at least {minimum} (check its nodata value and the bands).")
    norm = normalization(sample.pixels)
    x = (sample.pixels - np.asarray(norm["mean"])) / norm["std"]
    model = fit_pixels(x, config, is_cancelled)
    calibration = calibrate(model.score(x), config.flag_fraction)
    card = anomaly_card(path, sample, norm, model, calibration, config, name, kind, command)
    written = write_model(model, card, out)
    notes = [f"Fitted {model.components} whitened components and {len(model.weights)} mixture components on "
             f"{len(x)} pixels of {len(sample.bands)} bands" + (f" (every {sample.step:.1f} px)"
                                                                 if sample.step > 1 else "") + "."]
    return FitResult(written, card, model, calibration, len(x), time.perf_counter() - started, notes)


def anomaly_card(path: str, sample: Sample, norm: dict[str, Any], model: Mixture, calibration: Calibration,
                 config: FitConfig, name: str, kind: str, command: str) -> dict[str, Any]:
    stem = Path(path).stem
    count = open_raster(path).RasterCount
    band_list = f"all {count} bands" if sample.bands == list(range(1, count + 1)) else \
        "bands " + ", ".join(map(str, sample.bands))
    card: dict[str, Any] = {
        "schema": "deepstrata.card/1",
        "name": name or f"Anomaly model fitted to {stem}",
        "version": VERSION,
        "task": "anomaly",
        "description": f"A Gaussian mixture of {len(model.weights)} components on the {model.components} robustly "
                       f"whitened principal components of {stem} ({band_list}), fitted to that raster without "
                       "labels. The score is the mixture's negative log-likelihood (a soft minimum of Mahalanobis "
                       "distances), calibrated on the same raster: about 0 is ordinary, the threshold flags "
                       f"{100 * config.flag_fraction:g} % of its pixels.",
        "input": {"kind": kind, "bands": [{"name": n} for n in sample.names], "dtype": "float32",
                  "normalization": norm, "tile_size": 256, "margin": 0},
        "output": {"activation": "none", "anomaly": calibration.card()},
        "training": {
            "data": f"{Path(path).name} ({band_list}), unlabelled",
            "labels": "none: fitted to the raster it scores",
            "created_by": f"inference/workflows/fit_anomaly.py {VERSION} (numpy, no PyTorch)",
            "command": command,
            "config": {**asdict(config), "components_kept": model.components,
                       "clusters_kept": int(len(model.weights)), "bands": sample.bands},
            "calibration": f"median and MAD of the score over {len(sample.pixels)} valid pixels of the raster; the "
                           f"threshold flags {100 * config.flag_fraction:g} % of them",
        },
    }
    size = mean_pixel_size(open_raster(path))
    if size:
        card["input"]["pixel_size_m"] = round(size, 6)
    return card
