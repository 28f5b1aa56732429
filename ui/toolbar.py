"""The DeepStrata toolbar: buttons that open the same Processing algorithms as the toolbox and qgis_process."""
from __future__ import annotations

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtCore import QObject, QTimer
from qgis.PyQt.QtWidgets import QLabel

try:  # Qt6: QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction

from ..processing_provider.base import icon, tr
from .device import DeviceSummary, device_summary

RUN_MODEL = "deepstrata:runmodel"
MODEL_INFO = "deepstrata:modelinfo"
MENU = "&DeepStrata"
# Probing onnxruntime takes a moment: do it after QGIS has finished starting, not while the plugin loads.
DEVICE_PROBE_DELAY_MS = 1500


class DeepStrataToolbar(QObject):
    def __init__(self, iface) -> None:
        super().__init__(iface.mainWindow())
        self.iface = iface
        parent = iface.mainWindow()
        self.toolbar = iface.addToolBar(tr("DeepStrata"))
        self.toolbar.setObjectName("DeepStrataToolbar")
        self.toolbar.setToolTip(tr("DeepStrata: run ONNX deep-learning models on raster layers"))

        self.run_action = QAction(icon("run_model.svg"), tr("Run model…"), parent)
        self.run_action.setObjectName("DeepStrataRunModel")
        self.run_action.triggered.connect(self.run_model)
        self.info_action = QAction(icon("model_info.svg"), tr("Model info…"), parent)
        self.info_action.setObjectName("DeepStrataModelInfo")
        self.info_action.setToolTip(tr("Show what an ONNX model expects and produces: bands, classes, metrics"))
        self.info_action.triggered.connect(self.model_info)
        self.toolbar.addAction(self.run_action)
        self.toolbar.addAction(self.info_action)

        self.device_label = QLabel(tr("Device: …"))
        self.device_label.setObjectName("DeepStrataDevice")
        self.device_label.setContentsMargins(6, 0, 6, 0)
        self.device_label.setToolTip(tr("Checking which execution provider onnxruntime offers…"))
        self.device_label_action = self.toolbar.addWidget(self.device_label)
        self.device: DeviceSummary | None = None
        self._unloaded = False

        for action in (self.run_action, self.info_action):
            iface.addPluginToRasterMenu(MENU, action)
        iface.currentLayerChanged.connect(self.refresh)
        self.refresh()
        QTimer.singleShot(DEVICE_PROBE_DELAY_MS, self.update_device)

    # ------------------------------------------------------------------ state
    def refresh(self, *_args) -> None:
        """Enable 'Run model' only for a raster layer, and say why when it is disabled."""
        layer = self.iface.activeLayer()
        if layer is None:
            enabled, tip = False, tr("Select a raster layer in the Layers panel to run a model on it.")
        elif not isinstance(layer, QgsRasterLayer):
            enabled, tip = False, tr("'{0}' is not a raster layer. Select a raster layer in the Layers panel "
                                     "to run a model on it.").format(layer.name())
        else:
            enabled, tip = True, tr("Run an ONNX model on '{0}'").format(layer.name())
        self.run_action.setEnabled(enabled)
        self.run_action.setToolTip(tip)
        self.run_action.setStatusTip(tip)

    def update_device(self) -> DeviceSummary:
        """Probe onnxruntime (once) and show which device 'auto' uses; safe without onnxruntime."""
        if self.device is None and not self._unloaded:
            self.device = device_summary()
            self.device_label.setText(self.device.label)
            self.device_label.setToolTip(self.device.tooltip)
            self.toolbar.setToolTip(tr("DeepStrata: {0}").format(self.device.tooltip))
        return self.device or device_summary()

    # ------------------------------------------------------------------ actions
    def run_model(self) -> None:
        layer = self.iface.activeLayer()
        if not isinstance(layer, QgsRasterLayer):
            self.refresh()
            return
        import processing

        processing.execAlgorithmDialog(RUN_MODEL, {"INPUT": layer})

    def model_info(self) -> None:
        import processing

        processing.execAlgorithmDialog(MODEL_INFO, {})

    def unload(self) -> None:
        try:
            self.iface.currentLayerChanged.disconnect(self.refresh)
        except (TypeError, RuntimeError):  # already disconnected
            pass
        for action in (self.run_action, self.info_action):
            self.iface.removePluginRasterMenu(MENU, action)
            self.toolbar.removeAction(action)
            action.deleteLater()
        self.iface.mainWindow().removeToolBar(self.toolbar)
        self.toolbar.deleteLater()
        self._unloaded = True
        self.deleteLater()
