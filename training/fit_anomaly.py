"""Fit an anomaly model to one raster without labels, calibrate it and export it (``python -m training
fit-anomaly RASTER --out MODEL.onnx``): how an analyst gets an anomaly model for any sensor and band count.

The model (:class:`WhitenedAutoencoder`) works on whitened spectra, so its reconstruction error is a
Mahalanobis distance, as in the RX detector, rather than an error dominated by the brightest bands:

1. ``project``: a fixed 1x1 convolution onto the raster's ``k`` leading principal components, each divided by
   its standard deviation (PCA whitening; mean and covariance from the pixels with the lowest whitened norm
   after leaving out the ``pca_trim`` share with the highest, twice, so that anomalies do not shape them);
2. ``core``: a learnt per-pixel (1x1) autoencoder of those ``k`` values with a narrow bottleneck; its last
   layer starts at zero, so the untrained model scores exactly the truncated-PCA RX distance;
3. ``back``: the whitened residual, mapped back onto ``sqrt(C)`` times the orthonormal principal directions
   and subtracted from the input. The graph returns ``input - back(z - core(z))``: the plugin's mean squared
   error over the C bands is then exactly ``||z - core(z)||^2``, the whitened reconstruction error.

Training is :func:`training.train.train` in ``rounds``: before each round the ``trim`` share of pixels the
current model reconstructs worst is marked invalid (NaN), which takes them out of the loss (a trimmed loss, so
the autoencoder does not learn the anomalies). Normalisation is per-band mean and one common standard
deviation (``--band-scale common``), which keeps the bands' relative variance for the PCA; ``band`` gives the
usual per-band z-score. The card's calibration is the median and MAD of the per-pixel error over the raster's
valid pixels; its threshold flags the ``flag_fraction`` of them that score highest.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepstrata.inference.engine.georef import mean_pixel_size

from .data import DataError, band_stats, extract_chips, normalise
from .data.grid import PathLike, open_raster
from .export import export_model
from .train import TrainConfig, TrainResult, seed_everything, torch_settings, train
from .workflow import command_line, rounded

KINDS = ("any", "multispectral", "hyperspectral", "rgb", "dem")
BAND_SCALES = ("common", "band")
MAD_SCALE = 1.4826  # the engine's robust z-score: (error - median) / (1.4826 x MAD)


@dataclass(frozen=True)
class FitConfig:
    components: int = 30
    width: int = 32
    bottleneck: int = 4
    rounds: int = 3
    epochs: int = 10
    trim: float = 0.10
    pca_trim: float = 0.02
    chip: int = 10
    max_chips: int = 2000
    validation: float = 0.1
    batch_size: int = 8
    lr: float = 3e-3
    seed: int = 0
    threads: int = 1
    band_scale: str = "common"
    flag_fraction: float = 0.01


HELP = {  # FitConfig's fields, for --help
    "components": "principal components kept, k (at most the bands and the numerical rank)",
    "width": "hidden width of the per-pixel autoencoder",
    "bottleneck": "the autoencoder's narrowest layer",
    "rounds": "trimming rounds, each a call to training.train.train",
    "epochs": "epochs per round",
    "trim": "share of pixels left out of the loss in each round: those the model reconstructs worst",
    "pca_trim": "share of pixels (the most distant) left out of the whitening statistics",
    "chip": "training chip edge in px (the model is per-pixel: chips only batch pixels)",
    "max_chips": "at most about this many chips, spread over a large raster",
    "validation": "share of chips held out to pick the best epoch",
    "batch_size": "chips per batch",
    "lr": "learning rate (AdamW)",
    "seed": "seed of the chip sample, the split, the initial weights and the batch order",
    "threads": "torch threads",
    "band_scale": "'common': per-band mean and one std for all bands (keeps their relative variance); "
                  "'band': per-band z-score",
    "flag_fraction": "the card's default threshold flags this share of the raster's pixels",
}


@dataclass
class FitResult:
    path: Path
    card: dict[str, Any]
    model: "WhitenedAutoencoder"
    rounds: list[TrainResult]
    seconds: float


class WhitenedAutoencoder(nn.Module):
    """input - back(z - core(z)) with z = project(input): see the module docstring. ``mean`` (C,), ``basis``
    (C, k) orthonormal principal directions, ``scale`` (k,) their standard deviations, in model input units."""

    project_weight: torch.Tensor
    project_bias: torch.Tensor
    back_weight: torch.Tensor

    def __init__(self, mean: np.ndarray, basis: np.ndarray, scale: np.ndarray, width: int = 32,
                 bottleneck: int = 4, compress: bool = False) -> None:
        super().__init__()
        self.compress = compress
        bands, k = basis.shape
        project = torch.tensor(basis.T / scale[:, None], dtype=torch.float32)
        self.register_buffer("project_weight", project[:, :, None, None])
        self.register_buffer("project_bias", -project @ torch.tensor(mean, dtype=torch.float32))
        back = torch.tensor(basis * np.sqrt(bands), dtype=torch.float32)
        self.register_buffer("back_weight", back[:, :, None, None])
        last = nn.Conv2d(width, k, 1)
        for parameter in last.parameters():
            nn.init.zeros_(parameter)
        self.core = nn.Sequential(nn.Conv2d(k, width, 1), nn.ReLU(), nn.Conv2d(width, bottleneck, 1), nn.ReLU(),
                                  nn.Conv2d(bottleneck, width, 1), nn.ReLU(), last)
        self.size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.conv2d(x, self.project_weight, self.project_bias)
        residual = z - self.core(z)
        if self.compress:  # rescale the residual so that the plugin's MSE is log(1 + ||r||^2), not ||r||^2
            energy = torch.square(residual).sum(dim=1, keepdim=True)
            residual = residual * torch.sqrt(torch.log1p(energy) / (energy + 1e-12))
        return x - F.conv2d(residual, self.back_weight)


def check(config: FitConfig) -> None:
    """ValueError naming the first option out of range."""
    shares = {"trim": config.trim, "pca_trim": config.pca_trim, "validation": config.validation,
              "flag_fraction": config.flag_fraction}
    for option, value in shares.items():
        if not 0.0 <= value < 1.0 or (option in ("validation", "flag_fraction") and value == 0.0):
            raise ValueError(f"--{option.replace('_', '-')} is a share in [0, 1) (above 0 for validation and "
                             f"flag-fraction), not {value}.")
    counts = {k: v for k, v in asdict(config).items() if isinstance(v, int) and k != "seed"}
    for option, value in counts.items():
        if value < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be at least 1, not {value}.")
    if config.band_scale not in BAND_SCALES:
        raise ValueError(f"--band-scale is 'common' or 'band', not {config.band_scale!r}.")


def normalization(images: np.ndarray, band_scale: str) -> dict[str, Any]:
    """The card's zscore normalisation from (N, C, H, W) chips (band_stats): per-band std, or their RMS for all."""
    card = band_stats(images).card()
    if band_scale == "common":
        card["std"] = float(np.sqrt(np.mean(np.square(card["std"]))))
    elif band_scale != "band":
        raise ValueError(f"band_scale is 'common' or 'band', not {band_scale!r}.")
    return card


def whitening(pixels: np.ndarray, components: int, trim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (C,), principal directions (C, k) and standard deviations (k,) of (P, C) pixels, re-estimated twice
    without the ``trim`` share of pixels farthest (whitened) from the mean; k drops components below 1e-8 of
    the largest variance."""
    keep = np.ones(len(pixels), dtype=bool)
    for _ in range(2):
        mean = pixels[keep].mean(axis=0)
        centred = pixels - mean
        values, vectors = np.linalg.eigh(np.cov(centred[keep], rowvar=False).reshape(pixels.shape[1], -1))
        values, vectors = values[::-1], vectors[:, ::-1]
        k = max(1, min(components, int((values > 1e-8 * max(values[0], 1e-30)).sum())))
        values, vectors = values[:k], vectors[:, :k]
        distance = np.square(centred @ vectors / np.sqrt(values)).sum(axis=1)
        keep = distance <= np.quantile(distance, 1.0 - trim)
    return mean, vectors, np.sqrt(values)


@torch.no_grad()
def pixel_errors(model: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N, H, W) mean squared error over bands of normalised chips, as the plugin computes it."""
    model.eval()
    parts = [torch.square(model(t) - t).mean(dim=1).numpy()
             for t in torch.from_numpy(x).split(batch)]
    return np.concatenate(parts)


@torch.no_grad()
def parity_tolerance(model: nn.Module, bands: int) -> float:
    """export_model's check draws standard-normal inputs, which whitening maps far outside the data (outputs in
    the thousands): allow 1e-6 of the largest output on such an input (a few float32 roundings), at least 1e-4."""
    probe = torch.randn(1, bands, 64, 64, generator=torch.Generator().manual_seed(0))
    return max(1e-4, 1e-6 * float(model.eval()(probe).abs().max()))


def _band_list(path: PathLike, bands: Sequence[int]) -> str:
    if list(bands) == list(range(1, open_raster(path).RasterCount + 1)):
        return f"all {len(bands)} bands"
    return "bands " + ", ".join(map(str, bands))


def _band_names(path: PathLike, bands: Sequence[int]) -> list[dict[str, str]]:
    ds = open_raster(path)
    return [{"name": ds.GetRasterBand(b).GetDescription() or f"band {b}"} for b in bands]


@dataclass
class Fitted:
    """A fitted :class:`WhitenedAutoencoder`: its normalisation, the components kept, each round's training, and
    the median / MAD of its error over the fitted pixels with the threshold that flags ``flag_fraction``."""

    model: "WhitenedAutoencoder"
    normalization: dict[str, Any]
    components: int
    rounds: list[TrainResult]
    calibration: dict[str, float]
    threshold: float


def fit_images(images: np.ndarray, config: FitConfig, rng: Optional[np.random.Generator] = None,
               compress: bool = False) -> Fitted:
    """Fit on (N, C, H, W) chips (NaN = invalid): whitening, then the trimmed training rounds (module docstring).
    ``rng`` (default: seeded with ``config.seed``) draws the validation chips; ``compress`` makes the score
    log(1 + error) (see :class:`WhitenedAutoencoder`), a monotone change that tames its heavy tail."""
    rng = rng if rng is not None else np.random.default_rng(config.seed)
    norm = normalization(images, config.band_scale)
    x = normalise(images, norm)
    valid = np.isfinite(images).all(axis=1)
    mean, basis, scale = whitening(x.transpose(0, 2, 3, 1)[valid].astype(np.float64),
                                   config.components, config.pca_trim)
    with torch_settings(config.threads, True):
        seed_everything(config.seed)
        model = WhitenedAutoencoder(mean, basis, scale, config.width, min(config.bottleneck, basis.shape[1]),
                                    compress)
    order = rng.permutation(len(images))
    n_val = max(1, int(round(config.validation * len(images))))
    val_index, train_index = order[:n_val], order[n_val:]
    history = []
    for round_ in range(config.rounds):
        with torch_settings(config.threads, True):
            errors = pixel_errors(model, x)
        masked = images.copy()
        worst = valid & (errors > np.quantile(errors[valid], 1.0 - config.trim))
        masked.transpose(0, 2, 3, 1)[worst] = np.nan
        train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                                   seed=config.seed + round_, patience=None, augment=False,
                                   normalization=norm, threads=config.threads)
        history.append(train(model, (masked[train_index], None), (masked[val_index], None), train_config,
                             "anomaly"))
    with torch_settings(config.threads, True):
        errors = pixel_errors(model, x)[valid]
    median = float(np.median(errors))
    mad = max(float(np.median(np.abs(errors - median))), 1e-12)
    threshold = (float(np.quantile(errors, 1.0 - config.flag_fraction)) - median) / (MAD_SCALE * mad)
    return Fitted(model, norm, basis.shape[1], history, {"median": median, "mad": mad}, threshold)


def fit(raster: PathLike, out: PathLike, config: Optional[FitConfig] = None, bands: Optional[Sequence[int]] = None,
        name: str = "", kind: str = "any", command: str = "") -> FitResult:
    """Fit, calibrate and export (see the module docstring); return the written model and its card."""
    config = config or FitConfig()
    check(config)
    started = time.perf_counter()
    ds = open_raster(raster)
    # chips on a grid spread over the whole raster, about max_chips of them: a large raster is never read whole
    stride = max(config.chip, int(np.ceil(np.sqrt(ds.RasterXSize * ds.RasterYSize / config.max_chips))))
    chips = extract_chips([(raster, None)], config.chip, stride=stride, bands=bands, max_nodata=0.9)
    if len(chips) < 2:
        raise DataError(f"{raster} gives {len(chips)} chip(s) of {config.chip} px with valid pixels; "
                         "fitting needs at least 2 (lower --chip).")
    rng = np.random.default_rng(config.seed)
    images = chips.images[np.sort(rng.permutation(len(chips))[:config.max_chips])]
    fitted = fit_images(images, config, rng)
    card = anomaly_card(raster, chips.bands, fitted.normalization, config, fitted.components, name, kind, command,
                 fitted.calibration, fitted.threshold, fitted.rounds)
    path = export_model(fitted.model, card, out, tolerance=parity_tolerance(fitted.model, len(chips.bands)))
    return FitResult(path, card, fitted.model, fitted.rounds, time.perf_counter() - started)


def anomaly_card(raster: PathLike, bands: Sequence[int], norm: dict[str, Any], config: FitConfig, k: int, name: str,
          kind: str, command: str, calibration: dict[str, float], threshold: float,
          history: Sequence[TrainResult]) -> dict[str, Any]:
    stem = Path(raster).stem
    size = mean_pixel_size(open_raster(raster))
    card: dict[str, Any] = {
        "schema": "deepstrata.card/1",
        "name": name or f"Anomaly autoencoder fitted to {stem}",
        "version": "1.0.0",
        "task": "anomaly",
        "description": f"Per-pixel autoencoder of the {k} whitened principal components of {stem}, fitted to that "
                       "raster without labels; the score is its whitened (Mahalanobis) reconstruction error. The "
                       "graph returns the input minus that residual, so the plugin's MSE equals it.",
        "input": {"kind": kind, "bands": _band_names(raster, bands), "dtype": "float32", "normalization": norm,
                  "tile_size": 256, "margin": 0},
        "output": {"activation": "none", "anomaly": {
            "error": "mse", "calibration": {k_: round(v, 8) for k_, v in calibration.items()},
            "threshold": round(threshold, 4)}},
        "training": {
            "data": f"{Path(raster).name} ({_band_list(raster, bands)}), unlabelled",
            "labels": "none: fitted to the raster it scores",
            "created_by": "training/fit_anomaly.py 1.0.0",
            "command": command,
            "config": {**asdict(config), "components_kept": k},
            "metrics": rounded({"reconstruction_error": history[-1].best_metric}, 6),
        },
    }
    if size:
        card["input"]["pixel_size_m"] = round(size, 6)
    return card


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training fit-anomaly",
                                description="Fit an anomaly autoencoder to one raster without labels, calibrate it "
                                            "and export it as one .onnx model with its card.")
    p.add_argument("raster", help="any GDAL raster (all bands, or --bands)")
    p.add_argument("--out", required=True, help="the .onnx model to write")
    p.add_argument("--bands", help="1-based band list, e.g. 1,2,3 (default: all)")
    p.add_argument("--name", default="", help="the model's name in the card")
    p.add_argument("--kind", choices=KINDS, default="any", help="the card's input kind (default %(default)s)")
    defaults = FitConfig()
    for field, value in asdict(defaults).items():
        p.add_argument("--" + field.replace("_", "-"), type=type(value), default=value,
                       choices=BAND_SCALES if field == "band_scale" else None, help=f"{HELP[field]} (default {value})")
    return p


def fit_from_argv(argv: Sequence[str]) -> FitResult:
    """:func:`fit` with the command line's arguments; the card records ``python -m training fit-anomaly <argv>``."""
    args = parser().parse_args(list(argv))
    config = FitConfig(**{f: getattr(args, f) for f in asdict(FitConfig())})
    bands = [int(b) for b in args.bands.split(",")] if args.bands else None
    return fit(args.raster, args.out, config, bands, args.name, args.kind, command_line(["fit-anomaly", *argv]))


def main(argv: Sequence[str]) -> int:
    result = fit_from_argv(argv)
    anomaly = result.card["output"]["anomaly"]
    print(json.dumps({"model": str(result.path), "seconds": round(result.seconds, 1), **anomaly}, indent=2))
    return 0
