"""A first layer for multispectral models that makes band ratios linear: log reflectance, inside the graph.

Every rule of :mod:`training.ratios` is a threshold on a band ratio (NDVI >= 0.3 is NIR / red >= 1.86, MNDWI > 0
is green / SWIR1 > 1), i.e. on a difference of log reflectances. The card's z-score (in OLI Level-1 DN, so
nodata pixels still become the training mean) is undone in the graph, reflectance floored at ``floor`` and
logged, and the logs standardised with statistics of the training chips. A common brightness factor (sun angle,
another sensor's calibration) is then only an offset shared by all bands.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .ratios import EPS, label
from .sensors import OLI_ADD, OLI_MULT, from_oli_dn


def log_reflectance(dn: np.ndarray, floor: float = EPS) -> np.ndarray:
    """log(max(reflectance, floor)) of OLI DN values, NaN kept."""
    rho = from_oli_dn(dn)
    with np.errstate(invalid="ignore"):
        return np.log(np.where(np.isnan(rho), np.nan, np.maximum(rho, floor)))


def log_stats(images: np.ndarray, floor: float = EPS) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation of the log reflectance of (N, C, H, W) DN chips, NaN ignored."""
    logs = log_reflectance(images, floor).transpose(1, 0, 2, 3).reshape(images.shape[1], -1)
    mean = [float(np.nanmean(band)) for band in logs]
    std = [max(float(np.nanstd(band)), 1e-6) for band in logs]
    return mean, std


def relabelled_jitter(images: np.ndarray, sun: Sequence[Optional[float]], sigma: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Radiometric augmentation that keeps the labels right: each (6, H, W) OLI-DN chip's bands scaled by their
    own gains exp(N(0, sigma)) (calibration, atmosphere, surface-reflectance products), and the labels recomputed
    from the scaled reflectance by the ratio rules, so pixels that cross a threshold change class.

    ``sun`` gives each chip's sun elevation in degrees (the rules' cloud tests need sun-corrected reflectance),
    or None where the DN already encode sun-corrected reflectance. Returns float32 chips and int64 labels."""
    rho = from_oli_dn(images) * np.exp(rng.normal(0.0, sigma, (images.shape[0], images.shape[1], 1, 1)))
    labels = np.stack([label(chip / (math.sin(math.radians(s)) if s is not None else 1.0))
                       for chip, s in zip(rho, sun)]).astype(np.int64)
    return ((rho - OLI_ADD) / OLI_MULT).astype(np.float32), labels


class LogReflectance(nn.Module):
    """(z-scored DN) -> standardised log reflectance, same number of channels."""

    scale: torch.Tensor
    shift: torch.Tensor
    log_mean: torch.Tensor
    log_std: torch.Tensor

    def __init__(self, normalization: dict[str, Any], log_mean: Sequence[float], log_std: Sequence[float],
                 floor: float = EPS) -> None:
        super().__init__()
        if normalization.get("method") != "zscore":
            raise ValueError("LogReflectance undoes a zscore normalisation (in OLI DN) and needs its mean and std.")
        bands = len(log_mean)

        def column(values: Any) -> torch.Tensor:
            array = np.broadcast_to(np.asarray(values, dtype=np.float64), (bands,))
            return torch.tensor(array, dtype=torch.float32).view(1, bands, 1, 1)

        self.register_buffer("scale", column(np.asarray(normalization["std"], dtype=np.float64) * OLI_MULT))
        self.register_buffer("shift", column(np.asarray(normalization["mean"], dtype=np.float64) * OLI_MULT + OLI_ADD))
        self.register_buffer("log_mean", column(log_mean))
        self.register_buffer("log_std", column(log_std))
        self.floor = float(floor)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        rho = torch.clamp(z * self.scale + self.shift, min=self.floor)
        return (torch.log(rho) - self.log_mean) / self.log_std
