"""Radiance to top-of-atmosphere reflectance for Landsat 4/5 TM and 7 ETM+ Level-1 DN.

``rho = pi * L * d² / (ESUN * sin(sun elevation))`` with ``L = gain * DN + bias``, the exo-atmospheric solar
irradiance ESUN per band and the Earth-Sun distance d in astronomical units: Chander, G., Markham, B. L. and
Helder, D. L. (2009), "Summary of current radiometric calibration coefficients for Landsat MSS, TM, ETM+, and EO-1
ALI sensors", Remote Sensing of Environment 113, 893-903 (eq. 1 and 3, Table 2 for the rescaling ranges, Table 3
for ESUN). d follows the usual approximation of the Earth's orbit, ``1 - 0.01672 cos(0.9856° (doy - 4))``.

Without an MTL, 8-bit TM/ETM+ DN are converted with the post-calibration LMIN/LMAX of Chander et al. (2009),
Table 2 (TM: the ranges of LPGS products, Landsat 5 by acquisition date, before or from May 2003, when the
file name tells it, else before; ETM+: high gain, the setting of most land acquisitions), a sun
elevation of 45° and d = 1: an approximation that the mapping's description says it is.
"""
from __future__ import annotations

import datetime
import math

# ESUN, W/(m² µm), for the six reflective bands 1, 2, 3, 4, 5, 7 (Chander et al. 2009, Table 3)
ESUN: dict[str, tuple[float, ...]] = {
    "TM4": (1983.0, 1795.0, 1539.0, 1028.0, 219.8, 83.49),
    "TM5": (1983.0, 1796.0, 1536.0, 1031.0, 220.0, 83.44),
    "ETM+": (1997.0, 1812.0, 1533.0, 1039.0, 230.8, 84.90),
}
# (LMIN, LMAX) for bands 1, 2, 3, 4, 5, 7 with QCALMIN 1, QCALMAX 255 (Chander et al. 2009, Table 2)
TYPICAL_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "TM4": ((-1.52, 171.0), (-2.84, 336.0), (-1.17, 254.0), (-1.51, 221.0), (-0.37, 31.4), (-0.15, 16.6)),
    "TM5": ((-1.52, 169.0), (-2.84, 333.0), (-1.17, 264.0), (-1.51, 221.0), (-0.37, 30.2), (-0.15, 16.5)),
    "TM5 2003": ((-1.52, 193.0), (-2.84, 365.0), (-1.17, 264.0), (-1.51, 221.0), (-0.37, 30.2), (-0.15, 16.5)),
    "ETM+": ((-6.2, 191.6), (-6.4, 196.5), (-5.0, 152.9), (-5.1, 157.4), (-1.0, 31.06), (-0.35, 10.80)),
}
TYPICAL_SUN_ELEVATION = 45.0


def esun_key(satellite: int | None, sensor: str) -> str:
    return "ETM+" if sensor == "ETM+" else "TM4" if satellite == 4 else "TM5"


def earth_sun_distance(date: datetime.date | None) -> float:
    """Earth-Sun distance in astronomical units on `date` (1 when unknown)."""
    if date is None:
        return 1.0
    doy = date.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def typical_radiance(key: str, index: int, date: datetime.date | None = None) -> tuple[float, float]:
    """(gain, bias) of the typical range of reflective band `index` (0..5 for bands 1, 2, 3, 4, 5, 7); Landsat 5
    TM scenes acquired from 5 May 2003 have the wider ranges of bands 1 and 2 (Chander et al. 2009, Table 2)."""
    if key == "TM5" and date is not None and date >= datetime.date(2003, 5, 5):
        key = "TM5 2003"
    lmin, lmax = TYPICAL_RANGES[key][index]
    gain = (lmax - lmin) / 254.0
    return gain, lmin - gain


def radiance_to_reflectance(gain: float, bias: float, esun: float, distance: float,
                            sun_elevation: float) -> tuple[float, float]:
    """(mult, add) such that TOA reflectance = DN * mult + add (Chander et al. 2009, eq. 3)."""
    factor = math.pi * distance ** 2 / (esun * math.sin(math.radians(sun_elevation)))
    return gain * factor, bias * factor
