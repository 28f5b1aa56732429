"""training/recalibrate_anomaly.py: the fixed calibration of the bundled spectral anomaly model."""
from __future__ import annotations

import numpy as np

from training.recalibrate_anomaly import MODEL, calibrate, card_of


def test_alike_scenes_get_a_threshold_that_flags_about_a_thousandth():
    rng = np.random.default_rng(0)
    errors = [rng.gamma(2.0, 0.5, 200000) for _ in range(3)]
    cal = calibrate(errors)
    z = (errors[0] - cal["median"]) / (1.4826 * cal["mad"])
    assert 0.0007 <= (z >= cal["threshold"]).mean() <= 0.0014
    assert abs(cal["median"] - np.median(np.concatenate(errors))) < 0.01


def test_the_shipped_card_carries_the_recalibration():
    card = card_of(MODEL)
    anomaly = card["output"]["anomaly"]
    shares = card["training"]["recalibration"]["flagged_share_per_scene"]
    assert 3 < anomaly["threshold"] < 67 and anomaly["calibration"]["median"] > 0.2  # 67: the old default
    assert len(shares) >= 4 and max(shares.values()) < 0.02
    assert card["training"]["recalibration"]["command"].startswith("python -m training.recalibrate_anomaly")
    assert "CALIBRATION.md" in card["training"]["calibration"]
