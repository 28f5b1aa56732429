"""The `deepstrata` Processing provider."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..support import ICONS_DIR, icon, onnxruntime_problem, tr
from .check_dependencies import CheckDependenciesAlgorithm
from .classify_landforms import ClassifyLandformsAlgorithm
from .detect_anomalies import DetectAnomaliesAlgorithm
from .fit_anomaly import FitAnomalyAlgorithm
from .map_geology import MapGeologyAlgorithm
from .model_info import ModelInfoAlgorithm
from .placement import GROUP_SETTING, GROUP_SETTING_LABEL
from .run_model import RunModelAlgorithm

ALGORITHMS = (ClassifyLandformsAlgorithm, MapGeologyAlgorithm, DetectAnomaliesAlgorithm, FitAnomalyAlgorithm,
              RunModelAlgorithm, ModelInfoAlgorithm, CheckDependenciesAlgorithm)


class DeepStrataProvider(QgsProcessingProvider):
    """Loads even without onnxruntime: its algorithms then say how to install it (canExecute)."""

    def id(self) -> str:
        return "deepstrata"

    def name(self) -> str:
        return "DeepStrata"

    def longName(self) -> str:  # noqa: N802 (QGIS API)
        return tr("DeepStrata: ONNX deep-learning models on rasters")

    def icon(self) -> QIcon:
        return icon("deepstrata.svg")

    def svgIconPath(self) -> str:  # noqa: N802 (QGIS API)
        return str(ICONS_DIR / "deepstrata.svg")

    def supportedOutputRasterLayerExtensions(self) -> list:  # noqa: N802 (QGIS API)
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:  # noqa: N802 (QGIS API)
        return "tif"

    def warningMessage(self) -> str:  # noqa: N802 (QGIS API)
        return onnxruntime_problem() or ""

    def load(self) -> bool:
        """Show the provider's setting in Settings > Options > Processing > Providers (when Processing's Python
        side is there to show it: the QGIS desktop, not a bare qgis_process)."""
        config = _processing_config()
        if config is not None:
            ProcessingConfig, Setting = config
            ProcessingConfig.addSetting(Setting(self.name(), GROUP_SETTING, tr(GROUP_SETTING_LABEL), True))
            ProcessingConfig.readSettings()
        return super().load()

    def unload(self) -> None:
        config = _processing_config()
        if config is not None and GROUP_SETTING in config[0].settings:
            config[0].removeSetting(GROUP_SETTING)
        super().unload()

    def loadAlgorithms(self) -> None:  # noqa: N802 (QGIS API)
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())


def _processing_config():
    """Processing's settings registry (ProcessingConfig, Setting), or None where the processing plugin is absent."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return None
    return ProcessingConfig, Setting
