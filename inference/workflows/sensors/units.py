"""The units DeepStrata's multispectral models take, and the one conversion from a product's reflectance to them.

- Six bands named B2..B7 with unit "DN" (the bundled geology_oli.onnx and anomaly_multispectral.onnx): Landsat
  8/9 OLI Level-1 digital numbers, ``DN = (rho - ADD) / MULT`` with the fixed OLI rescaling ``MULT = 2e-5``,
  ``ADD = -0.1``. The model input is ``value * (m / MULT) + (a - ADD) / MULT`` for ``rho = value * m + a``.
  OLI Level-1 reflectance lacks the sun-angle correction; other products' reflectance is used as it is (as in
  training).
- Six bands named blue, green, red, nir, swir1, swir2 with unit "reflectance": reflectance 0..1, sun-corrected
  (Landsat Level-1 REFLECTANCE_MULT/ADD values divided by the sine of the MTL's sun elevation).
"""
from __future__ import annotations

import math

from ...engine.card import ModelCard
from .products import OLI_ADD, OLI_MULT, Radiometry

OLI_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7")
REFLECTANCE_BANDS = ("BLUE", "GREEN", "RED", "NIR", "SWIR1", "SWIR2")


def model_unit(card: ModelCard) -> str | None:
    """"dn" for B2-B7 DN models, "reflectance" for blue..swir2 reflectance models, else None."""
    bands = card.input.bands
    names = tuple(b.name.upper() for b in bands)
    units = {b.unit.upper() for b in bands}
    if names == OLI_BANDS and units == {"DN"}:
        return "dn"
    if names == REFLECTANCE_BANDS and units == {"REFLECTANCE"}:
        return "reflectance"
    return None


def to_model(rad: Radiometry, unit: str) -> tuple[list[float], list[float], str]:
    """(scale, offset) of raw values to `unit`, 12 significant digits, and a note on the conversion."""
    mult, add, note = list(rad.mult), list(rad.add), ""
    if unit == "dn":
        mult = [m / OLI_MULT for m in mult]
        add = [(a - OLI_ADD) / OLI_MULT for a in add]
    elif not rad.sun_corrected:
        if rad.sun_elevation:
            sine = math.sin(math.radians(rad.sun_elevation))
            mult, add = [m / sine for m in mult], [a / sine for a in add]
            note = f", divided by sin({rad.sun_elevation:g}°) for the sun angle"
        else:
            note = ", without the sun-angle correction (no sun elevation known)"
    return ([float(f"{m:.12g}") for m in mult], [float(f"{a:.12g}") + 0.0 for a in add], note)


def formula(unit: str, scale: list[float], offset: list[float]) -> str:
    name = "OLI DN" if unit == "dn" else "reflectance"
    if len(set(scale)) == 1 and len(set(offset)) == 1:
        sign = "-" if offset[0] < 0 else "+"
        return f"{name} = {scale[0]:g} x value {sign} {abs(offset[0]):g}"
    return (f"{name} = scale x value + offset, scales " + ", ".join(f"{s:g}" for s in scale) + ", offsets "
            + ", ".join(f"{o:g}" for o in offset))
