"""The plugin object QGIS holds: registers the Processing provider, the toolbar and a log handler."""
from __future__ import annotations

import logging

from qgis.core import Qgis, QgsApplication, QgsMessageLog

from .support import add_dependencies_to_path, onnxruntime_problem

LOG_TAG = "DeepStrata"
_LEVELS = ((logging.ERROR, Qgis.MessageLevel.Critical), (logging.WARNING, Qgis.MessageLevel.Warning))


class MessageLogHandler(logging.Handler):
    """Forwards records of the ``deepstrata`` loggers to the QGIS message log (thread-safe on both sides)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = next((qgis for py, qgis in _LEVELS if record.levelno >= py), Qgis.MessageLevel.Info)
            QgsMessageLog.logMessage(self.format(record), LOG_TAG, level)
        except Exception:  # noqa: BLE001 (a log handler must never raise)
            self.handleError(record)


class DeepStrataPlugin:
    """Thin entry point: qgis_process calls only initProcessing(); the desktop also calls initGui()."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None
        self.toolbar = None
        self.install_offer = None
        self._log_handler: MessageLogHandler | None = None
        self._old_log_level = logging.NOTSET

    # ------------------------------------------------------------------ Processing
    def initProcessing(self) -> None:  # noqa: N802 (QGIS API)
        self._install_log_handler()
        add_dependencies_to_path()  # packages DeepStrata's installer put in this profile's private folder
        if self.provider is not None:
            return
        from .processing_provider.provider import DeepStrataProvider

        provider = DeepStrataProvider()
        if QgsApplication.processingRegistry().addProvider(provider):
            self.provider = provider

    # ------------------------------------------------------------------ GUI
    def initGui(self) -> None:  # noqa: N802 (QGIS API)
        self.initProcessing()
        if self.toolbar is None:
            from .ui.toolbar import DeepStrataToolbar

            self.toolbar = DeepStrataToolbar(self.iface)
        problem = onnxruntime_problem()
        if problem and self.install_offer is None and self.iface is not None:
            from .ui.installer import InstallOffer

            self.install_offer = InstallOffer(self.iface, problem, self._installed)

    def _installed(self) -> None:
        """After the installer succeeded without needing a restart: the toolbar probes the device again."""
        if self.toolbar is not None:
            self.toolbar.device = None
            self.toolbar.update_device()
            self.toolbar.refresh()

    def unload(self) -> None:
        if self.install_offer is not None:
            self.install_offer.remove()
            self.install_offer = None
        if self.toolbar is not None:
            self.toolbar.unload()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        self._remove_log_handler()

    # ------------------------------------------------------------------ logging
    def _install_log_handler(self) -> None:
        if self._log_handler is not None:
            return
        logger = logging.getLogger(__package__ or "deepstrata")
        self._log_handler = MessageLogHandler(logging.INFO)
        self._log_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(self._log_handler)
        self._old_log_level = logger.level
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)

    def _remove_log_handler(self) -> None:
        if self._log_handler is None:
            return
        logger = logging.getLogger(__package__ or "deepstrata")
        logger.removeHandler(self._log_handler)
        logger.setLevel(self._old_log_level)
        self._log_handler = None
