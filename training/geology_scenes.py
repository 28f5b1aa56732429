"""Synthetic alteration districts from held-out spectra, the scene-relative ratio rule, and the scores both get.

A district (:func:`district`) is a ``size`` x ``size`` scene cut into Voronoi zones: argillic (clay / hydroxyl
minerals dominant), ferric (hematite, goethite, jarosite), ferrous (olivine, pyroxene, Fe-chlorite, siderite),
unaltered ground (soils, rock, sand, dry vegetation, traces of minerals) and a few patches of vegetation and water,
in shares drawn per scene. Inside a zone the target's fraction varies smoothly with noise, mixtures are areal or
intimate as in training (:mod:`training.geology_mixtures`), and the truth of every pixel is the label of its full
spectrum. The whole scene is seen by one sensor with one set of radiometric errors (shade varies per pixel; gains,
path radiance and noise level per scene), as a real scene is.

The baseline (:func:`ratio_rule`) is what a geologist would otherwise use, a scene-relative stretch of the
classic ratios: SWIR1 / SWIR2 above its scene's 60th percentile = clay / hydroxyl, else red / blue above its
80th = ferric iron, else other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .band_response import convolve
from .geology_mixtures import CENTRES, Pools, label
from .spectral_library import CLAY, FERRIC, FERROUS, GRID, OTHER, VEGETATION, WATER

ZONES = (CLAY, FERRIC, FERROUS, OTHER, VEGETATION, WATER)
THREE = ("clay / hydroxyl", "ferric iron", "other")


@dataclass(frozen=True)
class Scene:
    reflectance: np.ndarray  # (6, size, size) band reflectance as observed
    truth: np.ndarray  # (size, size) class values
    sensor: str
    shares: dict[int, float]  # zone shares of the scene


def _smooth_field(rng: np.random.Generator, size: int, cells: int = 8) -> np.ndarray:
    coarse = rng.random((cells + 1, cells + 1))
    axis = np.linspace(0, cells, size)
    i0 = np.minimum(axis.astype(int), cells - 1)
    t = axis - i0
    rows = coarse[i0] * (1 - t)[:, None] + coarse[i0 + 1] * t[:, None]
    return rows[:, i0] * (1 - t)[None, :] + rows[:, i0 + 1] * t[None, :]


def district(pools: Pools, sensor: str, rng: np.random.Generator, size: int = 128, zones: int = 30,
             errors: bool = True) -> Scene:
    """A district (module docstring); `errors` False: exact band reflectance with 0.2 % noise, as from a
    well-calibrated surface-reflectance product, instead of the per-scene gain, path-radiance and noise errors."""
    weights = rng.dirichlet([3.0, 1.5, 0.7, 3.0, 0.5, 0.2])
    seeds = rng.random((zones, 2)) * size
    kinds = rng.choice(ZONES, zones, p=weights)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    zone = np.argmin((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2, axis=2)
    kind = kinds[zone].ravel()
    n = size * size
    strength = np.clip(0.25 + 0.9 * _smooth_field(rng, size).ravel() + rng.normal(0, 0.1, n), 0, 1)
    spectra = np.zeros((n, len(GRID)))
    fractions = np.zeros((n, 8))
    backgrounds = pools.draw(OTHER, 6, rng)  # a district has a few background materials, not thousands
    background = backgrounds[rng.integers(0, 6, n)]
    for k in np.unique(kind):
        rows = np.flatnonzero(kind == k)
        local = pools.draw(int(k), 3, rng)
        target = local[rng.integers(0, 3, len(rows))]
        if k == OTHER:  # unaltered ground with traces of any mineral
            trace_kind = rng.choice([CLAY, FERRIC, FERROUS])
            trace = pools.draw(int(trace_kind), 1, rng)[0]
            t = rng.uniform(0, 0.25, len(rows))
            spectra[rows] = (1 - t)[:, None] * background[rows] + t[:, None] * trace
            fractions[rows, OTHER] = 1 - t
            fractions[rows, trace_kind] += t
            continue
        f = strength[rows]
        spectra[rows] = f[:, None] * target + (1 - f)[:, None] * background[rows]
        fractions[rows, k] = f
        fractions[rows, OTHER] += 1 - f
    truth = label(spectra, fractions).reshape(size, size)
    bands = convolve(spectra, sensor)
    shade = rng.uniform(0.6, 1.1, (n, 1))
    gains = np.exp(rng.normal(0, 0.04, (1, 6))) if errors else np.ones((1, 6))
    path = rng.uniform(0.0, 0.07) * (CENTRES / 0.485) ** -rng.uniform(2.0, 4.0) if errors else 0.0
    noise = rng.normal(0, rng.uniform(0.001, 0.006) if errors else 0.002, (n, 6))
    observed = (bands * shade * gains + path + noise).astype(np.float32)
    shares = {int(k): float((kind == k).mean()) for k in ZONES}
    return Scene(observed.T.reshape(6, size, size), truth, sensor, shares)


def ratio_rule(reflectance: np.ndarray) -> np.ndarray:
    """The scene-relative ratio rule (module docstring) on (6, H, W) reflectance: class values CLAY/FERRIC/OTHER."""
    blue, red, swir1, swir2 = (np.maximum(reflectance[i], 1e-4) for i in (0, 2, 4, 5))
    hydroxyl, ferric = swir1 / swir2, red / blue
    out = np.full(hydroxyl.shape, OTHER)
    out[ferric > np.percentile(ferric, 80)] = FERRIC
    out[hydroxyl > np.percentile(hydroxyl, 60)] = CLAY
    return out


def three_way(values: np.ndarray) -> np.ndarray:
    """0 clay / hydroxyl, 1 ferric iron, 2 anything else."""
    return np.where(values == CLAY, 0, np.where(values == FERRIC, 1, 2))


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Agreement on clay vs ferric vs other, and the share of the clay found, over every pixel of the scene."""
    t, p = three_way(truth).ravel(), three_way(predicted).ravel()
    clay = t == 0
    return {"agreement": float((t == p).mean()), "clay_found": float((p[clay] == 0).mean()) if clay.any() else
            float("nan"), "clay_share": float(clay.mean()), "ferric_share": float((t == 1).mean())}
