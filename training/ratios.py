"""Surface-material labels from the band ratios and indices exploration geologists map (numpy only).

Input: (6, H, W) reflectance of the six common bands (:data:`training.sensors.BANDS`: blue, green, red, NIR,
SWIR1, SWIR2 = Landsat 8/9 OLI bands 2-7), NaN where invalid. Every ratio and index is unchanged by a common
scale factor; only the cloud tests use absolute top-of-atmosphere reflectance. Rules, first match wins:

- unlabelled (0): a band invalid or a denominator <= :data:`EPS`, or a pixel in a gap between two rules;
- cloud: the potential-cloud tests of Fmask without the thermal test (Zhu & Woodcock 2012): SWIR2 > 0.03,
  NDVI < 0.8, MNDWI (= NDSI) < 0.8, whiteness < 0.7, HOT = blue - 0.5 red - 0.08 > 0, NIR / SWIR1 > 0.75;
- water: MNDWI = (green - SWIR1) / (green + SWIR1) > 0 (Xu 2006);
- vegetation: NDVI = (NIR - red) / (NIR + red) >= 0.3 (Rouse et al. 1974; Tucker 1979); 0.2 <= NDVI < 0.3
  (sparse cover, mixed pixels) is left unlabelled and only NDVI < 0.2 counts as bare;
- bare pixels go to the ratio that exceeds its threshold by the largest factor: ferric iron oxides
  (OLI 4/2 = red / blue; TM 3/1, Segal 1983, Sabins 1999), ferrous iron (OLI 6/5 = SWIR1 / NIR; TM 5/4,
  Drury 1987), clay / hydroxyl (OLI 6/7 = SWIR1 / SWIR2; TM 5/7, Sabins 1999); when none reaches
  ``threshold x (1 - margin)`` the pixel is other bare rock and soil, and a best factor within ``1 +- margin``
  stays unlabelled.

The thresholds are this project's choices for top-of-atmosphere reflectance (:class:`Thresholds`); the
citations are for the indices and ratios, not for these cut-offs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

EPS = 1e-3  # the smallest reflectance a ratio may divide by
WATER, VEGETATION, FERRIC, FERROUS, CLAY, BARE, CLOUD = 1, 2, 3, 4, 5, 6, 7
CLASSES = (
    (WATER, "water", "#2b83ba", "MNDWI > 0 (Xu 2006)"),
    (VEGETATION, "vegetation", "#1a9641", "NDVI >= 0.3 (Rouse et al. 1974; Tucker 1979)"),
    (FERRIC, "ferric iron oxides", "#d7191c", "bare, OLI 4/2 (red / blue) the strongest ratio, >= 1.35 "
                                              "(Segal 1983; Sabins 1999)"),
    (FERROUS, "ferrous iron", "#7b3294", "bare, OLI 6/5 (SWIR1 / NIR) the strongest ratio, >= 1.35 (Drury 1987)"),
    (CLAY, "clay / hydroxyl", "#f4d03f", "bare, OLI 6/7 (SWIR1 / SWIR2) the strongest ratio, >= 1.6: Al-OH and "
                                         "Mg-OH absorption near 2.2 um, argillic alteration (Sabins 1999)"),
    (BARE, "other bare rock and soil", "#a6764f", "bare (NDVI < 0.2), no ratio above its threshold"),
    (CLOUD, "cloud", "#cfcfcf", "Fmask potential-cloud tests without thermal (Zhu & Woodcock 2012)"),
)
CITATIONS = (
    "Rouse, J.W., Haas, R.H., Schell, J.A., Deering, D.W. (1974) Monitoring vegetation systems in the Great Plains "
    "with ERTS. Third ERTS Symposium, NASA SP-351, vol. 1, 309-317",
    "Tucker, C.J. (1979) Red and photographic infrared linear combinations for monitoring vegetation. Remote "
    "Sensing of Environment 8(2), 127-150",
    "Xu, H. (2006) Modification of normalised difference water index (NDWI) to enhance open water features in "
    "remotely sensed imagery. International Journal of Remote Sensing 27(14), 3025-3033",
    "Segal, D.B. (1983) Use of Landsat multispectral scanner data for the definition of limonitic exposures in "
    "heavily vegetated areas. Economic Geology 78(4), 711-722",
    "Drury, S.A. (1987) Image Interpretation in Geology. Allen & Unwin, London",
    "Sabins, F.F. (1999) Remote sensing for mineral exploration. Ore Geology Reviews 14(3-4), 157-183",
    "Zhu, Z., Woodcock, C.E. (2012) Object-based cloud and cloud shadow detection in Landsat imagery. Remote "
    "Sensing of Environment 118, 83-94",
)


@dataclass(frozen=True)
class Thresholds:
    water_mndwi: float = 0.0
    vegetation_ndvi: float = 0.3
    bare_ndvi: float = 0.2
    ferric_4_2: float = 1.35
    ferrous_6_5: float = 1.35
    hydroxyl_6_7: float = 1.6
    margin: float = 0.03          # relative gap around the three ratio thresholds left unlabelled
    cloud: bool = True


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is <= :data:`EPS` or either side is invalid."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    ok = np.isfinite(num) & np.isfinite(den) & (den > EPS)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=ok)


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b), NaN where a + b <= :data:`EPS` (dark or invalid pixels)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return ratio(a - b, a + b)


def indices(reflectance: np.ndarray) -> dict[str, np.ndarray]:
    """NDVI, MNDWI and the three geological ratios of a (6, H, W) reflectance array, each (H, W) float64."""
    blue, green, red, nir, swir1, swir2 = _bands(reflectance)
    return {"ndvi": normalised_difference(nir, red), "mndwi": normalised_difference(green, swir1),
            "ferric_4_2": ratio(red, blue), "ferrous_6_5": ratio(swir1, nir), "hydroxyl_6_7": ratio(swir1, swir2)}


def cloud_mask(reflectance: np.ndarray) -> np.ndarray:
    """(H, W) bool: Fmask's potential cloud pixels (pass one) without the brightness-temperature test."""
    blue, green, red, nir, swir1, swir2 = _bands(reflectance)
    with np.errstate(invalid="ignore"):
        visible = (blue + green + red) / 3.0
        whiteness = ratio(np.abs(blue - visible) + np.abs(green - visible) + np.abs(red - visible), visible)
        ndvi, ndsi = normalised_difference(nir, red), normalised_difference(green, swir1)
        return ((swir2 > 0.03) & (ndvi < 0.8) & (ndsi < 0.8) & (whiteness < 0.7)
                & (blue - 0.5 * red - 0.08 > 0) & (ratio(nir, swir1) > 0.75))


def label(reflectance: np.ndarray, thresholds: Optional[Thresholds] = None) -> np.ndarray:
    """(H, W) uint8 class ids of :data:`CLASSES` from a (6, H, W) reflectance array; 0 = unlabelled."""
    t = thresholds or Thresholds()
    found = indices(reflectance)
    ndvi, mndwi = found["ndvi"], found["mndwi"]
    valid = np.isfinite(np.asarray(reflectance, dtype=np.float64)).all(axis=0) & np.isfinite(ndvi) & np.isfinite(mndwi)
    out = np.zeros(ndvi.shape, dtype=np.uint8)
    taken = ~valid
    if t.cloud:
        cloud = valid & cloud_mask(reflectance)
        out[cloud], taken = CLOUD, taken | cloud
    with np.errstate(invalid="ignore"):
        water = ~taken & (mndwi > t.water_mndwi)
        out[water], taken = WATER, taken | water
        vegetation = ~taken & (ndvi >= t.vegetation_ndvi)
        out[vegetation], taken = VEGETATION, taken | vegetation
        bare = ~taken & (ndvi < t.bare_ndvi)
    scores = np.stack([found["ferric_4_2"] / t.ferric_4_2, found["ferrous_6_5"] / t.ferrous_6_5,
                       found["hydroxyl_6_7"] / t.hydroxyl_6_7])
    complete = np.isfinite(scores).all(axis=0)
    best = np.argmax(np.where(np.isfinite(scores), scores, -np.inf), axis=0)
    top = np.max(np.where(np.isfinite(scores), scores, -np.inf), axis=0)
    ids = np.array([FERRIC, FERROUS, CLAY], dtype=np.uint8)
    out[bare & complete & (top >= 1 + t.margin)] = ids[best[bare & complete & (top >= 1 + t.margin)]]
    out[bare & complete & (top < 1 - t.margin)] = BARE
    return out


def _bands(reflectance: np.ndarray) -> tuple[np.ndarray, ...]:
    array = np.asarray(reflectance, dtype=np.float64)
    if array.ndim != 3 or array.shape[0] != 6:
        raise ValueError(f"band ratios need (6, H, W) reflectance (blue, green, red, NIR, SWIR1, SWIR2), "
                         f"not shape {array.shape}.")
    return tuple(array)
