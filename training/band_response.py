"""The six common reflective bands of Landsat TM, ETM+, OLI and Sentinel-2 MSI, and spectra convolved with them.

Each band's relative spectral response is modelled as a smooth top hat (a super-Gaussian of order 8) between
the band's published lower and upper wavelengths at half maximum:

- TM (Landsat 4/5) B1-B5, B7 and ETM+ (Landsat 7) B1-B5, B7: USGS, "What are the band designations for the
  Landsat satellites?" and Markham & Barker (1986); Chander, Markham & Helder (2009), Remote Sens. Environ. 113.
- OLI / OLI-2 (Landsat 8/9) B2-B7: Barsi et al. (2014), "The spectral response of the Landsat-8 Operational
  Land Imager", Remote Sens. 6(10), 10232-10251 (full widths at half maximum).
- MSI (Sentinel-2A/B/C) B02, B03, B04, B8A, B11, B12: ESA Sentinel-2 User Handbook (2015), Table 3 (central
  wavelength and bandwidth).
"""
from __future__ import annotations

import numpy as np

from .spectral_library import GRID

COMMON = ("blue", "green", "red", "nir", "swir1", "swir2")
EDGES: dict[str, tuple[tuple[float, float], ...]] = {
    "tm": ((0.45, 0.52), (0.52, 0.60), (0.63, 0.69), (0.76, 0.90), (1.55, 1.75), (2.08, 2.35)),
    "etm": ((0.45, 0.515), (0.525, 0.605), (0.63, 0.69), (0.775, 0.90), (1.55, 1.75), (2.09, 2.35)),
    "oli": ((0.452, 0.512), (0.533, 0.590), (0.636, 0.673), (0.851, 0.879), (1.566, 1.651), (2.107, 2.294)),
    "msi": ((0.4575, 0.5225), (0.5425, 0.5775), (0.650, 0.680), (0.8545, 0.8745), (1.5652, 1.6552),
            (2.1000, 2.2800)),
}
SENSORS = tuple(EDGES)
SENSOR_NAMES = {"tm": "Landsat 4/5 TM", "etm": "Landsat 7 ETM+", "oli": "Landsat 8/9 OLI",
                "msi": "Sentinel-2 MSI"}


def responses(sensor: str) -> np.ndarray:
    """(6, len(GRID)) relative spectral responses, each summing to 1."""
    rows = []
    for low, high in EDGES[sensor]:
        centre, half = (low + high) / 2, (high - low) / 2
        curve = np.exp(-np.log(2) * np.abs((GRID - centre) / half) ** 8)
        rows.append(curve / curve.sum())
    return np.stack(rows)


def convolve(spectra: np.ndarray, sensor: str) -> np.ndarray:
    """(N, len(GRID)) reflectance spectra -> (N, 6) band reflectances of `sensor`."""
    return spectra @ responses(sensor).T
