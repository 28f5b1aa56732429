"""Products and their radiometry: per band, reflectance = value * mult + add, and what that reflectance is
(sun-corrected or not). The conversion to a model's unit lives in units.py.

- Landsat Level-1 DN with an MTL: REFLECTANCE_MULT/ADD_BAND_n (Collection 1 and 2; TOA reflectance without the
  sun-angle correction), else the radiance rescaling (RADIANCE_MULT/ADD, or LMAX/LMIN/QCALMAX/QCALMIN of the old
  TM/ETM+ MTLs) to TOA reflectance with ESUN, sun elevation and Earth-Sun distance (calibration.py).
- Landsat TM/ETM+ 8-bit DN without an MTL: typical gains (calibration.py), an approximation.
- Landsat Collection 2 Level-2 surface reflectance: 2.75e-5, -0.2; Collection 1 surface reflectance: 1e-4, 0.
- Reflectance x 10000 (TOA or surface, e.g. ESPA products): 1e-4, 0; reflectance 0..1 floats: 1, 0.
- Sentinel-2 L1C / L2A: (DN + offset) / quantification, offset -1000 from processing baseline 04.00.
"""
from __future__ import annotations

from dataclasses import dataclass

OLI_MULT, OLI_ADD = 2.0e-5, -0.1
L2_MULT, L2_ADD = 2.75e-5, -0.2
S2_QUANTIFICATION, S2_OFFSET = 10000.0, -1000.0

LABELS = {
    "l1": "Level-1 DN", "l2": "Collection 2 Level-2 surface reflectance",
    "sr": "surface reflectance x 10000 (Collection 1)", "toa": "TOA reflectance x 10000",
    "x10000": "reflectance x 10000", "reflectance": "reflectance 0..1",
    "l1c": "L1C", "l2a": "L2A", "relative": "scene-relative", "custom": "values as they are",
}


@dataclass(frozen=True)
class Radiometry:
    """Per band, reflectance = value * mult + add."""

    mult: list[float]
    add: list[float]
    text: str  # how: "rescaled with LC08_..._MTL.txt", "standard rescaling ... assumed"
    sun_corrected: bool = True  # False: TOA reflectance without the sun-angle correction (Landsat REFLECTANCE_MULT)
    sun_elevation: float | None = None  # degrees, for the correction when a model takes reflectance
    assumed: bool = False  # a standard or typical value stood in for what the product did not say


def uniform(m: float, a: float, text: str, n: int = 6, **kwargs: object) -> Radiometry:
    return Radiometry([m] * n, [a] * n, text, **kwargs)  # type: ignore[arg-type]
