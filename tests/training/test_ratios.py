"""Band-ratio labelling (training.ratios) and sensor calibration (training.sensors): synthetic spectra with known
answers per class, thresholds, nodata and division by zero."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from training import ratios, sensors
from training.ratios import BARE, CLAY, CLOUD, FERRIC, FERROUS, VEGETATION, WATER, Thresholds, label

REPO = Path(__file__).resolve().parents[2]
# Top-of-atmosphere reflectance of blue, green, red, NIR, SWIR1, SWIR2, and the class the rules must give.
SPECTRA = {
    WATER: (0.08, 0.06, 0.04, 0.02, 0.01, 0.005),        # MNDWI 0.71
    VEGETATION: (0.03, 0.06, 0.04, 0.35, 0.18, 0.08),    # NDVI 0.79
    FERRIC: (0.08, 0.12, 0.18, 0.22, 0.26, 0.20),        # bare; 4/2 = 2.25 is 1.67 x its threshold
    FERROUS: (0.10, 0.11, 0.12, 0.14, 0.24, 0.20),       # bare; 6/5 = 1.71 is 1.27 x its threshold
    CLAY: (0.10, 0.12, 0.13, 0.18, 0.30, 0.14),          # bare; 6/7 = 2.14 is 1.34 x, 6/5 = 1.67 only 1.23 x
    BARE: (0.12, 0.13, 0.14, 0.16, 0.18, 0.15),          # bare; every ratio well below its threshold
    CLOUD: (0.40, 0.40, 0.40, 0.42, 0.30, 0.20),         # bright, white, HOT > 0; MNDWI > 0 would say water
}


def image(*pixels: tuple[float, ...]) -> np.ndarray:
    """(6, 1, N) reflectance from N spectra."""
    return np.array(pixels, dtype=np.float64).T[:, None, :]


def test_each_synthetic_spectrum_gets_its_class() -> None:
    got = label(image(*SPECTRA.values()))
    assert got.dtype == np.uint8 and got.shape == (1, len(SPECTRA))
    assert got[0].tolist() == list(SPECTRA)


def test_ratio_classes_do_not_depend_on_a_common_brightness_factor() -> None:
    """Sun angle and calibration scale every band alike; only the cloud tests use absolute reflectance."""
    spectra = [s for c, s in SPECTRA.items() if c != CLOUD]
    for factor in (0.5, 0.8, 1.3):
        assert label(image(*spectra) * factor)[0].tolist() == [c for c in SPECTRA if c != CLOUD]


def test_the_indices_have_their_textbook_values() -> None:
    found = ratios.indices(image(SPECTRA[VEGETATION], SPECTRA[FERRIC]))
    assert found["ndvi"][0, 0] == pytest.approx((0.35 - 0.04) / (0.35 + 0.04))
    assert found["mndwi"][0, 0] == pytest.approx((0.06 - 0.18) / (0.06 + 0.18))
    assert found["ferric_4_2"][0, 1] == pytest.approx(0.18 / 0.08)
    assert found["ferrous_6_5"][0, 1] == pytest.approx(0.26 / 0.22)
    assert found["hydroxyl_6_7"][0, 1] == pytest.approx(0.26 / 0.20)


def test_nodata_and_zero_denominators_are_unlabelled_without_warnings() -> None:
    nan_band = np.array(SPECTRA[FERRIC])
    nan_band[4] = np.nan
    dark = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)                 # every index 0/0
    no_blue = (0.0, 0.12, 0.18, 0.22, 0.26, 0.20)         # bare, but 4/2 divides by zero
    negative = (0.08, 0.12, 0.18, 0.22, 0.26, -0.01)      # a calibration offset below zero: 6/7 undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = label(image(tuple(nan_band), dark, no_blue, negative, SPECTRA[WATER]))
        assert np.isnan(ratios.ratio(np.array([1.0, 1.0, np.nan]), np.array([0.0, ratios.EPS, 1.0]))).all()
        assert np.isnan(ratios.normalised_difference(np.array([0.0]), np.array([0.0]))).all()
    assert got[0].tolist() == [0, 0, 0, 0, WATER]


def test_thresholds_and_gaps() -> None:
    t = Thresholds()

    def vegetation_at(ndvi: float) -> tuple[float, ...]:
        red = 0.05
        return (0.05, 0.06, red, red * (1 + ndvi) / (1 - ndvi), 0.10, 0.06)

    # NDVI exactly at the vegetation threshold is vegetation; inside the sparse-cover gap it is unlabelled.
    assert label(image(vegetation_at(t.vegetation_ndvi)))[0, 0] == VEGETATION
    assert label(image(vegetation_at(0.25)))[0, 0] == 0
    # MNDWI exactly 0 is not water (the rule is strict).
    assert label(image((0.05, 0.10, 0.09, 0.10, 0.10, 0.05)))[0, 0] != WATER
    # A ratio within the margin around its threshold is unlabelled; clearly above is its class.
    blue = 0.10
    for factor, expected in ((1 + t.margin / 2, 0), (1 - t.margin / 2, 0), (1 + 2 * t.margin, FERRIC),
                             (1 - 2 * t.margin, BARE)):
        red = blue * t.ferric_4_2 * factor
        assert label(image((blue, 0.12, red, red * 1.05, red * 1.1, red)))[0, 0] == expected, factor
    # Switching the cloud test off lets the bright white pixel fall to the later rules (MNDWI > 0: water).
    assert label(image(SPECTRA[CLOUD]), Thresholds(cloud=False))[0, 0] == WATER


def test_label_refuses_other_band_counts() -> None:
    with pytest.raises(ValueError, match="6, H, W"):
        label(np.zeros((4, 2, 2)))


def test_oli_dn_round_trip_and_landsat_rescaling(tmp_path) -> None:
    rho = np.array([0.0, 0.05, 0.3])
    assert np.allclose(sensors.from_oli_dn(sensors.to_oli_dn(rho)), rho)
    assert sensors.to_oli_dn(np.array([0.1]), sun_elevation=30.0)[0] == pytest.approx((0.05 + 0.1) / 2e-5)
    mtl = tmp_path / "MTL.txt"
    lines = ["GROUP = L1_METADATA_FILE", '    SPACECRAFT_ID = "LANDSAT_8"', "    SUN_ELEVATION = 30.0"]
    lines += [f"    REFLECTANCE_MULT_BAND_{b} = 2.0E-05\n    REFLECTANCE_ADD_BAND_{b} = -0.1" for b in range(2, 8)]
    mtl.write_bytes(("\n".join(lines) + "\nEND_GROUP = L1_METADATA_FILE\nEND\n").encode() + b"\x00" * 64)
    parsed = sensors.read_mtl(mtl)
    assert parsed["SPACECRAFT_ID"] == "LANDSAT_8" and "GROUP" not in parsed
    dn = np.full((6, 1, 2), 10000.0)
    dn[:, 0, 1] = 0.0                                     # fill
    got = sensors.oli_reflectance(dn, parsed)
    assert got[:, 0, 0] == pytest.approx(np.full(6, 0.1 / 0.5)) and np.isnan(got[:, 0, 1]).all()
    with pytest.raises(sensors.SensorError, match="SUN_ELEVATION"):
        (tmp_path / "bad.txt").write_text("A = 1\n")
        sensors.read_mtl(tmp_path / "bad.txt")


def test_tm_reflectance_follows_chander_2009() -> None:
    mtl = {"SUN_ELEVATION": "90", "DATE_ACQUIRED": "2001-01-04"}
    mtl.update({f"RADIANCE_MULT_BAND_{b}": "1.0" for b in sensors.TM_BANDS})
    mtl.update({f"RADIANCE_ADD_BAND_{b}": "0.0" for b in sensors.TM_BANDS})
    got = sensors.tm_reflectance(np.full((6, 1, 1), 100.0), mtl)[:, 0, 0]
    d = sensors.earth_sun_distance(__import__("datetime").date(2001, 1, 4))
    assert d == pytest.approx(0.98328, abs=1e-4)          # perihelion
    assert got == pytest.approx([math.pi * 100 * d * d / e for e in sensors.TM5_ESUN])


def test_the_stored_scenes_calibrate_to_plausible_reflectance() -> None:
    from training.geology import OTHER_SENSOR, SCENES

    for scene in (*SCENES, OTHER_SENSOR):
        found = sensors.calibrate(scene)
        assert found.reflectance.shape[0] == 6 and np.isfinite(found.reflectance).mean() > 0.99
        assert 0.0 < np.nanmedian(found.reflectance[3]) < 0.6         # near infrared of forest and water
        # The model input is the same pixels in OLI Level-1 DN, sun angle removed as an OLI band has it.
        sun = math.sin(math.radians(found.sun_elevation)) if found.sun_elevation is not None else 1.0
        back = sensors.from_oli_dn(found.model_input) / sun
        assert np.allclose(back, found.reflectance, atol=1e-4, equal_nan=True)
    raw, _ = sensors.read_bands(SCENES[0].path)
    assert np.array_equal(sensors.calibrate(SCENES[0]).model_input, raw.astype(np.float32))  # OLI DN as stored
