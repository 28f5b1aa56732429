"""What 'Fit anomaly model to this raster' and Detect anomalies' 'Fit a model to this raster' share: fitting the
numpy model (inference.workflows.fit_anomaly) to the input, with its log lines, and where the model goes."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from qgis.core import QgsProcessingUtils

from .base import FeedbackAdapter, engine_errors

if TYPE_CHECKING:
    from ..inference.workflows.fit_anomaly import FitResult

DEFAULT_COMPONENTS = 30


def fit_to_raster(path: str, out: str, bands: "list[int] | None", components: int, report: FeedbackAdapter,
                  command: str) -> "FitResult":
    """Fit, calibrate and write the model (inference.workflows.fit_anomaly), saying in the log what was fitted;
    the engine's typed errors (a missing `onnx` package among them) become QgsProcessingException."""
    from ..inference.workflows.fit_anomaly import FitConfig, fit_raster

    report.info(f"Fitting an anomaly model to '{os.path.basename(path)}' (numpy; no PyTorch needed)…")
    with engine_errors():
        result = fit_raster(path, out, bands, FitConfig(components=components), command=command,
                            is_cancelled=report.is_cancelled)
    for note in result.notes:
        report.info(note)
    cal = result.calibration
    report.info(f"Fitted in {result.seconds:.1f} s; calibrated on this raster: median {cal.median:.4g}, MAD "
                f"{cal.mad:.4g}, threshold {cal.threshold:.3g} (flags about 0.1 % of its pixels). Model: {out}")
    return result


def fitted_model_path(value: str) -> str:
    """Where the fitted model goes: the given file (.onnx added when missing) or a temporary one."""
    if not value or value == "TEMPORARY_OUTPUT":
        return QgsProcessingUtils.generateTempFilename("fitted_anomaly.onnx")
    return value if value.lower().endswith(".onnx") else value + ".onnx"
