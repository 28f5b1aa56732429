"""The DeepStrata toolbar: buttons that open the same Processing algorithms as the toolbox and qgis_process."""
from __future__ import annotations

from functools import partial

from qgis.core import (QgsAnnotationLayer, QgsApplication, QgsMapLayer, QgsMeshLayer, QgsPluginLayer,
                       QgsPointCloudLayer, QgsProject, QgsRasterLayer, QgsVectorLayer, QgsVectorTileLayer)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QObject, Qt, QTimer
from qgis.PyQt.QtWidgets import QLabel

from ..compat import QAction
from ..support import icon, tr
from .device import DeviceSummary, device_summary
from .fit import ANOMALIES, GEOLOGY, LANDFORMS, LayerFacts, title, workflow_fit
from .model_card import ModelCardDialog

RUN_MODEL = "deepstrata:runmodel"
FIT_ANOMALY = "deepstrata:fitanomaly"
# workflow -> (Processing algorithm, icon, action object name), in toolbar order
WORKFLOWS = {
    LANDFORMS: ("deepstrata:classifylandforms", "landforms.svg", "DeepStrataLandforms"),
    GEOLOGY: ("deepstrata:mapgeology", "geology.svg", "DeepStrataGeology"),
    ANOMALIES: ("deepstrata:detectanomalies", "anomalies.svg", "DeepStrataAnomalies"),
}
MENU = "&DeepStrata"
# Probing onnxruntime takes a moment: do it after QGIS has finished starting, not while the plugin loads.
DEVICE_PROBE_DELAY_MS = 1500
_KINDS = ((QgsVectorLayer, "vector"), (QgsMeshLayer, "mesh"), (QgsPointCloudLayer, "point cloud"),
          (QgsVectorTileLayer, "vector tile"), (QgsAnnotationLayer, "annotation"), (QgsPluginLayer, "plugin"))


def algorithm_loaded(alg_id: str) -> bool:
    return QgsApplication.processingRegistry().algorithmById(alg_id) is not None


def layer_facts(layer: QgsMapLayer | None) -> LayerFacts | None:
    """The plain facts `workflow_fit` decides on: kind, data provider, band count, first band's data type."""
    if layer is None:
        return None
    if not isinstance(layer, QgsRasterLayer):
        kind = next((name for cls, name in _KINDS if isinstance(layer, cls)), "non-raster")
        return LayerFacts(layer.name(), kind=kind, provider=layer.providerType(), bands=0)
    provider = layer.dataProvider()
    valid = layer.isValid() and provider is not None
    bands = layer.bandCount() if valid else 0
    data_type = ""
    if bands:
        value = provider.dataType(1)
        data_type = str(getattr(value, "name", value))
    return LayerFacts(layer.name(), "raster", layer.providerType(), bands, data_type, valid)


class DeepStrataToolbar(QObject):
    def __init__(self, iface) -> None:
        super().__init__(iface.mainWindow())
        self.iface = iface
        parent = iface.mainWindow()
        self.toolbar = iface.addToolBar(tr("DeepStrata"))
        self.toolbar.setObjectName("DeepStrataToolbar")
        self.toolbar.setToolTip(tr("DeepStrata: run ONNX deep-learning models on raster layers"))

        self.workflow_actions: dict[str, QAction] = {}
        for workflow, (_alg_id, icon_name, object_name) in WORKFLOWS.items():
            action = QAction(icon(icon_name), title(workflow) + "…", parent)
            action.setObjectName(object_name)
            action.triggered.connect(partial(self.run_workflow, workflow))
            self.workflow_actions[workflow] = action
            self.toolbar.addAction(action)
        self.fit_action = QAction(icon("anomalies.svg"), tr("Fit anomaly model to this raster…"), parent)
        self.fit_action.setObjectName("DeepStrataFitAnomaly")
        self.fit_action.triggered.connect(self.fit_anomaly)
        self.toolbar.addAction(self.fit_action)
        self.separator = self.toolbar.addSeparator()

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
        self._watched: QgsMapLayer | None = None  # the active layer, whose source or name changes refresh

        for action in self.actions():
            iface.addPluginToRasterMenu(MENU, action)
        self._signals = [(iface.currentLayerChanged, self.refresh)]
        project, registry = QgsProject.instance(), QgsApplication.processingRegistry()
        for signal in (project.layersAdded, project.layersRemoved, registry.providerAdded, registry.providerRemoved):
            self._signals.append((signal, self.refresh))
        for signal, slot in self._signals:
            signal.connect(slot)
        self.refresh()
        QTimer.singleShot(DEVICE_PROBE_DELAY_MS, self.update_device)

    def actions(self) -> list[QAction]:
        """Every action this toolbar adds, in toolbar order (the Raster > DeepStrata menu has the same)."""
        return [*self.workflow_actions.values(), self.fit_action, self.run_action, self.info_action]

    # ------------------------------------------------------------------ state
    def refresh(self, *_args) -> None:
        """Enable each action only for a layer it can run on, and say why (not) in its tooltip."""
        if self._unloaded:
            return
        layer = self.iface.activeLayer()
        self._watch(layer)
        if layer is None:
            enabled, tip = False, tr("Select a raster layer in the Layers panel to run a model on it.")
        elif not isinstance(layer, QgsRasterLayer):
            enabled, tip = False, tr("'{0}' is not a raster layer. Select a raster layer in the Layers panel "
                                     "to run a model on it.").format(layer.name())
        else:
            enabled, tip = True, tr("Run an ONNX model on '{0}'").format(layer.name())
        self._show(self.run_action, enabled, tip)
        fit_tip = tr("Fit an anomaly model to '{0}' (any sensor and band count; no PyTorch), save it as a reusable "
                     ".onnx and map its anomalies").format(layer.name()) if enabled else tip
        self._show(self.fit_action, enabled, fit_tip)
        facts = layer_facts(layer)
        for workflow, action in self.workflow_actions.items():
            self._show(action, *self.fit(workflow, facts))

    def fit(self, workflow: str, facts: LayerFacts | None) -> tuple[bool, str]:
        return workflow_fit(workflow, facts, algorithm_loaded=algorithm_loaded(WORKFLOWS[workflow][0]))

    @staticmethod
    def _show(action: QAction, enabled: bool, tip: str) -> None:
        action.setEnabled(enabled)
        action.setToolTip(tip)
        action.setStatusTip(tip)

    def _watch(self, layer: QgsMapLayer | None) -> None:
        """Follow the active layer's data source and name, which the tooltips depend on."""
        if layer is self._watched:
            return
        self._unwatch()
        if layer is not None:
            layer.dataSourceChanged.connect(self.refresh)
            layer.nameChanged.connect(self.refresh)
            self._watched = layer

    def _unwatch(self) -> None:
        layer, self._watched = self._watched, None
        if layer is None or sip.isdeleted(layer):
            return
        for signal in (layer.dataSourceChanged, layer.nameChanged):
            try:
                signal.disconnect(self.refresh)
            except (TypeError, RuntimeError):  # already disconnected
                pass

    def update_device(self) -> DeviceSummary:
        """Probe onnxruntime (once) and show which device 'auto' uses; safe without onnxruntime."""
        if self.device is None and not self._unloaded:
            self.device = device_summary()
            self.device_label.setText(self.device.label)
            self.device_label.setToolTip(self.device.tooltip)
            self.toolbar.setToolTip(tr("DeepStrata: {0}").format(self.device.tooltip))
        return self.device or device_summary()

    # ------------------------------------------------------------------ actions
    def run_workflow(self, workflow: str, *_args) -> None:
        """Open the workflow's Processing dialog on the active layer (the same algorithm as the toolbox)."""
        layer = self.iface.activeLayer()
        if not self.fit(workflow, layer_facts(layer))[0]:
            self.refresh()
            return
        import processing

        processing.execAlgorithmDialog(WORKFLOWS[workflow][0], {"INPUT": layer})

    def run_model(self) -> None:
        layer = self.iface.activeLayer()
        if not isinstance(layer, QgsRasterLayer):
            self.refresh()
            return
        import processing

        processing.execAlgorithmDialog(RUN_MODEL, {"INPUT": layer})

    def fit_anomaly(self) -> None:
        """Open 'Fit anomaly model to this raster' on the active raster layer."""
        layer = self.iface.activeLayer()
        if not isinstance(layer, QgsRasterLayer):
            self.refresh()
            return
        import processing

        processing.execAlgorithmDialog(FIT_ANOMALY, {"INPUT": layer})

    def model_info(self) -> ModelCardDialog:
        """Show the card of the bundled model (or of a model file picked there) at once, in a dialog of its own."""
        dialog = ModelCardDialog(self.iface.mainWindow())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def unload(self) -> None:
        if self._unloaded:
            return
        self._unloaded = True
        for signal, slot in self._signals:
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):  # already disconnected
                pass
        self._unwatch()
        for action in self.actions():
            self.iface.removePluginRasterMenu(MENU, action)
            self.toolbar.removeAction(action)
            action.deleteLater()
        self.iface.mainWindow().removeToolBar(self.toolbar)
        self.toolbar.deleteLater()
        self.deleteLater()
