"""The index layers geologists read from the six common bands (blue, green, red, NIR, SWIR1, SWIR2), in reflectance.

- ferric iron = red / blue (Segal 1983): ferric iron oxides (hematite, goethite, jarosite), whose Fe3+
  charge-transfer absorption darkens blue against red.
- ferrous iron = SWIR1 / NIR + green / red: ferrous iron (Fe2+ in mafic silicates and carbonates), whose broad
  0.9-1.2 um absorption lowers NIR against SWIR1, while the lack of a ferric red slope keeps green / red high. The
  ASTER ferrous iron index b5/b3 + b1/b2 (Rowan & Mars 2003; Kalinowski & Oliver 2004, ASTER Mineral Index
  Processing Manual) on the bands of the same spectral regions.
- hydroxyl / clay = SWIR1 / SWIR2 (Sabins 1999): clays, micas, alunite; their Al-OH and Mg-OH absorptions near
  2.2-2.3 um darken SWIR2.
- NDVI = (NIR - red) / (NIR + red) (Rouse et al. 1974): green vegetation, which hides the rock.
- MNDWI = (green - SWIR1) / (green + SWIR1) (Xu 2006): open water.

The same formulas on each sensor's bands: Landsat 4/5 TM and 7 ETM+ B1, B2, B3, B4, B5, B7; Landsat 8/9 OLI
B2-B7; Sentinel-2 MSI B02, B03, B04, B8A, B11, B12 (`SENSORS`).

Reflectance. The band preset maps raw values to the model's unit (``u = v * scale + offset``, presets.py); the card's
unit says what that is: OLI Level-1 DN (``rho = u * 2e-5 - 0.1``, geology_oli.onnx) or reflectance itself.
`reflectance_rescaling` composes the two into ``rho = v * m + a`` per band, so the indices are the same whichever
model runs. Reflectance below ``FLOOR`` (0.005: dark water and shadow, surface reflectance pushed below 0 by the
atmospheric correction) is raised to it before the indices, so that every ratio is finite and positive.

Scene stretch. Band ratios are taken on a log scale (``ln(red / blue)``: a ratio of 2 and of 1/2 lie equally far
from 1); the normalised differences as they are. Each layer is then stretched per scene: its 2nd and 98th
percentiles on a decimated read of the scene (at most 512 px a side) become 0 and 1, and values beyond are
clipped to 0..1. The percentiles are stored in each band's metadata (STRETCH_LOW / STRETCH_HIGH, on the log scale
for ratios), so the unstretched value of an unclipped pixel is ``low + value * (high - low)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine.card import ModelCard
from ..engine.errors import InputError
from .presets import OLI_ADD, OLI_MULT  # the "DN" model unit: rho = DN * OLI_MULT + OLI_ADD

FLOOR = 0.005
PERCENTILES = (2.0, 98.0)
COMMON = ("blue", "green", "red", "NIR", "SWIR1", "SWIR2")
BLUE, GREEN, RED, NIR, SWIR1, SWIR2 = range(6)
SENSORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tm": ("Landsat 4/5 TM, 7 ETM+", ("B1", "B2", "B3", "B4", "B5", "B7")),
    "oli": ("Landsat 8/9 OLI", ("B2", "B3", "B4", "B5", "B6", "B7")),
    "msi": ("Sentinel-2 MSI", ("B02", "B03", "B04", "B8A", "B11", "B12")),
    "common": ("any sensor", COMMON),
}


@dataclass(frozen=True)
class Index:
    key: str
    name: str
    terms: tuple[tuple[int, int], ...]  # ratios (numerator, denominator), summed; or one pair for a normalised diff.
    normalised: bool  # (a - b) / (a + b) rather than a ratio
    reference: str

    def formula(self, sensor: str = "common") -> str:
        """'red / blue' or, for a sensor, 'B4 / B2'; '(NIR - red) / (NIR + red)'."""
        names = SENSORS.get(sensor, SENSORS["common"])[1]
        if self.normalised:
            a, b = (names[i] for i in self.terms[0])
            return f"({a} - {b}) / ({a} + {b})"
        return " + ".join(f"{names[a]} / {names[b]}" for a, b in self.terms)

    @property
    def log_scale(self) -> bool:
        return not self.normalised


INDICES: tuple[Index, ...] = (
    Index("ferric", "ferric iron", ((RED, BLUE),), False, "Segal 1983"),
    Index("ferrous", "ferrous iron", ((SWIR1, NIR), (GREEN, RED)), False,
          "Rowan & Mars 2003; Kalinowski & Oliver 2004 (ASTER b5/b3 + b1/b2)"),
    Index("hydroxyl", "hydroxyl / clay", ((SWIR1, SWIR2),), False, "Sabins 1999"),
    Index("ndvi", "NDVI", ((NIR, RED),), True, "Rouse et al. 1974"),
    Index("mndwi", "MNDWI", ((GREEN, SWIR1),), True, "Xu 2006"),
)


def sensor_of(preset: str) -> str:
    """The sensor whose band names the descriptions use, from a band preset's name ('common' when unknown)."""
    name = preset.lower()
    if "sentinel" in name or name.startswith("s2"):
        return "msi"
    if any(mark in name for mark in ("tm", "etm", "landsat4", "landsat5", "landsat7", "l4", "l5", "l7")):
        return "tm"
    if "landsat" in name or "oli" in name:
        return "oli"
    return "common"


def reflectance_rescaling(card: ModelCard, scale: Sequence[float], offset: Sequence[float]
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per band (m, a) with ``reflectance = raw * m + a``, from the preset's raw -> model-unit ``scale``/``offset``
    and the card's band units ("DN": OLI Level-1 DN; "reflectance", or none: reflectance)."""
    bands = card.input.bands
    if len(bands) != 6 or len(scale) != 6 or len(offset) != 6:
        raise InputError(f"The index layers need the six bands {', '.join(COMMON)}; the model '{card.name}' takes "
                         f"{len(bands)}. Use a six-band multispectral model such as the bundled geology model.")
    m, a = np.asarray(scale, dtype=np.float64), np.asarray(offset, dtype=np.float64)
    mult, add = np.ones(6), np.zeros(6)
    for i, band in enumerate(bands):
        unit = band.unit.strip().lower()
        if unit == "dn":
            mult[i], add[i] = OLI_MULT, OLI_ADD
        elif unit and "reflect" not in unit and unit not in ("1", "rho"):
            raise InputError(f"The model '{card.name}' takes band {band.name} in '{band.unit}', which the index "
                             "layers cannot turn into reflectance (they know OLI Level-1 DN and reflectance).")
    return m * mult, a * mult + add


def compute_indices(rho: np.ndarray) -> np.ndarray:
    """(5, ...) float32 index values (ratios as natural logs) of (6, ...) reflectance in the common band order."""
    r = np.maximum(np.asarray(rho, dtype=np.float32), np.float32(FLOOR))
    out = np.empty((len(INDICES),) + r.shape[1:], dtype=np.float32)
    for i, index in enumerate(INDICES):
        if index.normalised:
            a, b = (r[j] for j in index.terms[0])
            out[i] = (a - b) / (a + b)
        else:
            total = sum(r[a] / r[b] for a, b in index.terms)
            out[i] = np.log(total)
    return out


@dataclass(frozen=True)
class Stretch:
    """Per layer, the scene values that become 0 and 1."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def from_sample(cls, values: np.ndarray, valid: np.ndarray) -> "Stretch":
        """The 2nd and 98th percentiles of each layer over the valid pixels of a (layers, ...) sample."""
        picked = values[:, valid] if valid.any() else np.zeros((values.shape[0], 1), np.float32)
        low, high = np.percentile(picked.astype(np.float64), PERCENTILES, axis=1)
        high = np.where(high > low, high, low + 1e-6)
        return cls(low, high)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Values stretched to 0..1 (clipped), float32."""
        shape = (-1,) + (1,) * (values.ndim - 1)
        low, span = self.low.reshape(shape), (self.high - self.low).reshape(shape)
        return np.clip((values - low) / span, 0.0, 1.0).astype(np.float32)


def descriptions(sensor: str) -> list[str]:
    """Band descriptions: the layer's name and formula on the sensor's bands, e.g.
    'ferric iron = red / blue (B4 / B2), ln, scene-stretched 0..1'."""
    texts = []
    for index in INDICES:
        on_bands = f" ({index.formula(sensor)})" if sensor != "common" else ""
        scale = "ln, " if index.log_scale else ""
        texts.append(f"{index.name} = {index.formula()}{on_bands}, {scale}scene-stretched 0..1")
    return texts
