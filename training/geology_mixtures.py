"""Training and evaluation pixels for the geology model: library spectra mixed, labelled from their full spectra,
convolved with a sensor's bands and put through the radiometric errors a real scene has.

1. **Pools.** Every spectrum of :mod:`training.spectral_library` goes to the training or the held-out pool by a
   fixed rule (:func:`split`): splib07 specimens by a hash of their name, earthlib spectra in blocks of 25
   consecutive records (a soil survey's neighbours stay together), modelled spectra by seed. Held-out spectra
   are never mixed into training pixels.
2. **Mixtures** (:func:`mix`): a target endmember (any class) with up to two backgrounds (soils, rocks, dry
   vegetation, built surfaces, vegetation, minerals), as areal (linear) or intimate mixtures (linear in the
   single-scattering albedo of Hapke's isotropic model, 1981, JGR 86(B4), 3039-3054), with fractions drawn from
   0 to 1.
3. **Labels** (:func:`label`) come from what the pixel is, read on its full 5 nm spectrum before the bands see
   it: water, vegetation and cloud by their fractions (>= 0.6, 0.5, 0.5), dry vegetation (fraction >= 0.4) as other
   bare (its cellulose and lignin absorptions at 2.1 and 2.3 um are not clay); otherwise the mineral class whose
   continuum-removed absorption is deepest relative to its detection depth (the way a spectral-feature mapper
   such as USGS Tetracorder calls a mineral; Clark et al. 2003, JGR 108(E12)): clay / hydroxyl = the 2.12-2.36
   um absorption (Al-OH, Mg-OH, Si-OH, NH4, SO4, CO3) at least :data:`CLAY_DEPTH` deep; ferric iron = the
   0.80-1.20 um crystal-field band centred below 0.97 um at least :data:`IRON_DEPTH` deep, with the Fe3+
   charge-transfer fall-off in the blue (blue / red reflectance below 0.7); ferrous iron = that band centred at
   0.97 um or beyond; else other bare rock and soil.
4. **Radiometry** (:func:`observe`): the pixel's band reflectances under a shade factor (0.5-1.25: slope and
   shadow), per-band gain errors (calibration and atmospheric transmission, 4 % sd), an additive path-radiance
   residual that falls with wavelength (half the pixels as surface reflectance, within -0.005..0.01; half as
   top-of-atmosphere reflectance, which keeps up to 0.08 more in the blue), and sensor noise.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .band_response import SENSORS, convolve
from .spectral_library import CLOUD, CLAY, FERRIC, FERROUS, GRID, NPV, OTHER, VEGETATION, WATER, Spectrum

CLAY_DEPTH = 0.10
CLOUD_FRACTION = 0.5
IRON_DEPTH = 0.07
CENTRES = np.array([(lo + hi) / 2 for lo, hi in ((0.45, 0.52), (0.52, 0.60), (0.63, 0.69), (0.76, 0.90),
                                                  (1.55, 1.75), (2.08, 2.35))])


@dataclass(frozen=True)
class Pools:
    """Endmember spectra by class, as (n, len(GRID)) arrays; a class may be empty."""

    spectra: dict[int, np.ndarray]

    def draw(self, material: int, count: int, rng: np.random.Generator) -> np.ndarray:
        pool = self.spectra[material]
        return pool[rng.integers(0, len(pool), count)]


def _held_out(spectrum: Spectrum, index: int) -> bool:
    if spectrum.source.startswith("earthlib"):
        return (index // 25) % 4 == 3
    digest = hashlib.sha256(spectrum.name.encode()).digest()[0]
    return digest % 4 == 3


def split(spectra: list[Spectrum]) -> tuple[Pools, Pools, dict[str, list[str]]]:
    """Training and held-out pools, and the held-out spectra's names by source (for the report)."""
    train: dict[int, list[np.ndarray]] = {m: [] for m in range(0, 8)}
    test: dict[int, list[np.ndarray]] = {m: [] for m in range(0, 8)}
    names: dict[str, list[str]] = {}
    counters: dict[str, int] = {}
    for s in spectra:
        family = s.source.split(":")[0]
        index = counters.get(family, 0)
        counters[family] = index + 1
        if _held_out(s, index):
            test[s.material].append(s.reflectance)
            names.setdefault(s.source.split(":")[0], []).append(s.name)
        else:
            train[s.material].append(s.reflectance)
    empty = np.zeros((0, len(GRID)))
    return (Pools({m: np.array(v) if v else empty for m, v in train.items()}),
            Pools({m: np.array(v) if v else empty for m, v in test.items()}), names)


def _albedo_table(mu0: float = 0.866) -> tuple[np.ndarray, np.ndarray]:
    w = np.linspace(0.0, 0.99999, 4000)
    gamma = np.sqrt(1 - w)
    return w, (1 - gamma) / (1 + 2 * mu0 * gamma)  # Hapke isotropic bidirectional reflectance (H-function approx.)


_W, _R = _albedo_table()


def _to_albedo(r: np.ndarray) -> np.ndarray:
    return np.interp(np.clip(r, 0, _R[-1]), _R, _W)


def _from_albedo(w: np.ndarray) -> np.ndarray:
    return np.interp(w, _W, _R)


def mix(pools: Pools, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` mixed spectra (count, len(GRID)) and their fractions (count, 8) by class value (column 0: NPV)."""
    backgrounds = (OTHER, OTHER, OTHER, VEGETATION, NPV, CLAY, FERRIC, FERROUS)
    targets = np.array([WATER, VEGETATION, FERRIC, FERROUS, CLAY, OTHER, CLOUD, NPV])
    weights = np.array([0.07, 0.12, 0.2, 0.12, 0.27, 0.14, 0.08, 0.06])
    spectra = np.zeros((count, len(GRID)))
    fractions = np.zeros((count, 8))
    target = rng.choice(targets, count, p=weights / weights.sum())
    parts = rng.integers(1, 4, count)  # endmembers in the pixel
    raw = rng.dirichlet([1.0, 1.0, 1.0], count)
    raw[:, 0] = np.maximum(raw[:, 0], rng.uniform(0, 1, count))  # the target often dominates, not always
    raw[parts < 3, 2] = 0
    raw[parts < 2, 1] = 0
    raw /= raw.sum(axis=1, keepdims=True)
    intimate = rng.random(count) < 0.4
    for material in np.unique(target):
        rows = np.flatnonzero(target == material)
        members: list[np.ndarray] = [pools.draw(int(material), len(rows), rng)]
        kinds: list[np.ndarray] = [np.full(len(rows), material)]
        for _ in range(2):
            kind = rng.choice(backgrounds, len(rows))
            drawn = np.zeros((len(rows), len(GRID)))
            for k in np.unique(kind):
                sel = kind == k
                drawn[sel] = pools.draw(int(k), int(sel.sum()), rng)
            members.append(drawn)
            kinds.append(kind)
        f = raw[rows]
        linear = sum(f[:, j:j + 1] * members[j] for j in range(3))
        albedo = sum(f[:, j:j + 1] * _to_albedo(members[j]) for j in range(3))
        spectra[rows] = np.where(intimate[rows, None], _from_albedo(albedo), linear)
        for j in range(3):
            np.add.at(fractions, (rows, kinds[j]), f[:, j])
    return spectra, fractions


def _continuum_removed_min(r: np.ndarray, left: float, right: float, lo: float, hi: float
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Depth (1 - min of reflectance / straight continuum from `left` to `right`) in [lo, hi] and its position."""
    il, ir = int(np.argmin(np.abs(GRID - left))), int(np.argmin(np.abs(GRID - right)))
    window = (GRID >= lo) & (GRID <= hi)
    t = (GRID[window] - GRID[il]) / (GRID[ir] - GRID[il])
    continuum = r[:, il:il + 1] * (1 - t) + r[:, ir:ir + 1] * t
    ratio = r[:, window] / np.maximum(continuum, 1e-6)
    return 1 - ratio.min(axis=1), GRID[window][ratio.argmin(axis=1)]


def features(spectra: np.ndarray) -> dict[str, np.ndarray]:
    """The absorption features :func:`label` reads, per spectrum."""
    clay, _ = _continuum_removed_min(spectra, 2.08, 2.40, 2.12, 2.36)
    iron, centre = _continuum_removed_min(spectra, 0.76, 1.40, 0.80, 1.20)
    blue = spectra[:, int(np.argmin(np.abs(GRID - 0.48)))]
    red = spectra[:, int(np.argmin(np.abs(GRID - 0.66)))]
    return {"clay": clay, "iron": iron, "iron_centre": centre, "blue_red": blue / np.maximum(red, 1e-6)}


def label(spectra: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Class values (see the module docstring) of mixed spectra with their class fractions."""
    f = features(spectra)
    ferric = np.where((f["iron_centre"] < 0.97) & (f["blue_red"] < 0.7), f["iron"] / IRON_DEPTH, 0)
    ferrous = np.where(f["iron_centre"] >= 0.97, f["iron"] / IRON_DEPTH, 0)
    clay = f["clay"] / CLAY_DEPTH
    strength = np.stack([ferric, ferrous, clay], axis=1)
    mineral = np.array([FERRIC, FERROUS, CLAY])[strength.argmax(axis=1)]
    out = np.where(strength.max(axis=1) >= 1, mineral, OTHER)
    out = np.where(fractions[:, NPV] >= 0.4, OTHER, out)  # dry vegetation's 2.1/2.3 um bands are not clay
    out = np.where(fractions[:, VEGETATION] >= 0.5, VEGETATION, out)
    out = np.where(fractions[:, CLOUD] >= CLOUD_FRACTION, CLOUD, out)
    return np.where(fractions[:, WATER] >= 0.6, WATER, out).astype(np.int64)


def observe(bands: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Band reflectances (n, 6) as a scene records them (see the module docstring); `strength` scales the errors."""
    n = len(bands)
    shade = rng.uniform(0.5, 1.25, (n, 1)) ** strength
    gains = np.exp(rng.normal(0, 0.04 * strength, (n, 6)))
    level = np.where(rng.random((n, 1)) < 0.5, rng.uniform(-0.005, 0.01, (n, 1)), rng.uniform(0.0, 0.08, (n, 1)))
    path = level * strength * (CENTRES / 0.485) ** -rng.uniform(2.0, 4.0, (n, 1))
    noise = rng.normal(0, 0.004 * strength, (n, 6))
    return (bands * shade * gains + path + noise).astype(np.float32)


def pixels(pools: Pools, count: int, rng: np.random.Generator, sensors: tuple[str, ...] = SENSORS,
           strength: float = 1.0, chunk: int = 40000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` observed pixels (count, 6), their labels and the index of the sensor each was seen by."""
    xs, ys, ss = [], [], []
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        spectra, fractions = mix(pools, n, rng)
        sensor = rng.integers(0, len(sensors), n)
        bands = np.zeros((n, 6))
        for i, name in enumerate(sensors):
            sel = sensor == i
            bands[sel] = convolve(spectra[sel], name)
        xs.append(observe(bands, rng, strength))
        ys.append(label(spectra, fractions))
        ss.append(sensor)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)
