"""The plugin's life cycle (classFactory, initProcessing, initGui, unload), its log handler and its toolbar."""
from __future__ import annotations

import logging

import pytest
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtWidgets import QDialog



@pytest.fixture
def no_provider(qgis_processing):
    """Start without a registered DeepStrata provider (the other tests' fixture re-adds it when needed)."""
    registry = QgsApplication.processingRegistry()
    if registry.providerById("deepstrata") is not None:
        registry.removeProvider("deepstrata")
    return registry


def test_load_and_unload_leave_nothing_behind(qgis_iface, no_provider):
    import deepstrata

    logger = logging.getLogger("deepstrata")
    handlers, level = list(logger.handlers), logger.level
    plugin = deepstrata.classFactory(qgis_iface)
    assert no_provider.providerById("deepstrata") is None  # classFactory alone registers nothing

    plugin.initProcessing()
    plugin.initProcessing()  # qgis_process, then initGui: still one provider, one handler
    assert no_provider.providerById("deepstrata") is plugin.provider
    assert [p.id() for p in no_provider.providers()].count("deepstrata") == 1
    assert no_provider.algorithmById("deepstrata:runmodel") is not None
    assert len(logger.handlers) == len(handlers) + 1

    plugin.initGui()
    assert plugin.toolbar is not None and plugin.toolbar.run_action in plugin.toolbar.toolbar.actions()
    assert len(logger.handlers) == len(handlers) + 1

    plugin.unload()
    assert no_provider.providerById("deepstrata") is None
    assert no_provider.algorithmById("deepstrata:runmodel") is None
    assert logger.handlers == handlers and logger.level == level
    assert plugin.toolbar is None


def test_engine_log_reaches_the_qgis_message_log(qgis_iface, no_provider):
    import deepstrata

    received = []
    QgsApplication.messageLog().messageReceived.connect(lambda *args: received.append(args))
    plugin = deepstrata.classFactory(qgis_iface)
    plugin.initProcessing()
    try:
        logging.getLogger("deepstrata.inference").warning("tile %d is odd", 7)
        logging.getLogger("deepstrata.inference").info("ran on CPU")
    finally:
        plugin.unload()
    logging.getLogger("deepstrata.inference").warning("after unload")
    messages = [(m, tag) for m, tag, _level in received if tag == "DeepStrata"]
    assert ("deepstrata.inference: tile 7 is odd", "DeepStrata") in messages
    assert ("deepstrata.inference: ran on CPU", "DeepStrata") in messages
    assert not any("after unload" in m for m, _ in messages)


@pytest.fixture
def toolbar(qgis_iface, qgis_new_project):
    from deepstrata.ui.toolbar import DeepStrataToolbar

    bar = DeepStrataToolbar(qgis_iface)
    yield bar
    bar.unload()


def activate(iface, layer) -> None:
    if layer is not None:
        QgsProject.instance().addMapLayer(layer)
        iface.setActiveLayer(layer)
    iface.currentLayerChanged.emit(iface.mapCanvas())


def test_run_action_needs_a_raster_layer(qgis_iface, toolbar, dem):
    run = toolbar.run_action
    assert not run.isEnabled()
    assert run.toolTip() == "Select a raster layer in the Layers panel to run a model on it."

    activate(qgis_iface, QgsVectorLayer("Point?crs=EPSG:4326", "wells", "memory"))
    assert not run.isEnabled()
    assert run.toolTip().startswith("'wells' is not a raster layer. Select a raster layer in the Layers panel")

    activate(qgis_iface, QgsRasterLayer(str(dem), "dem"))
    assert run.isEnabled()
    assert run.toolTip() == "Run an ONNX model on 'dem'"


def test_run_action_opens_the_processing_dialog(qgis_iface, toolbar, dem, monkeypatch):
    import processing

    calls = []
    monkeypatch.setattr(processing, "execAlgorithmDialog", lambda alg_id, params: calls.append((alg_id, params)))
    layer = QgsRasterLayer(str(dem), "dem")
    activate(qgis_iface, layer)
    toolbar.run_action.trigger()
    toolbar.info_action.trigger()  # its own dialog (test_model_card.py), not a Processing one
    assert toolbar.fit_action.isEnabled() and "no PyTorch" in toolbar.fit_action.toolTip()
    toolbar.fit_action.trigger()
    assert calls == [("deepstrata:runmodel", {"INPUT": layer}), ("deepstrata:fitanomaly", {"INPUT": layer})]
    for dialog in qgis_iface.mainWindow().findChildren(QDialog, "DeepStrataModelCard"):
        dialog.close()


def test_device_label_says_where_models_run(toolbar):
    summary = toolbar.update_device()
    assert summary.provider == "CPUExecutionProvider"  # this machine has no GPU provider
    assert toolbar.device_label.text() == "Device: CPU"
    assert "CPUExecutionProvider" in toolbar.device_label.toolTip()
    assert "onnxruntime-gpu" in toolbar.device_label.toolTip()  # and what to install for a GPU
    assert "CPUExecutionProvider" in toolbar.toolbar.toolTip()


def test_metadata():
    from configparser import ConfigParser

    from qgis_support import DATA

    meta = ConfigParser()
    meta.read(DATA.parents[1] / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    assert general["name"] == "DeepStrata" and general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes" and general["supportsQt6"] == "True"
    assert "Check and install dependencies" in general["about"] and "pip install onnxruntime" in general["about"]
    assert (DATA.parents[1] / general["icon"]).is_file()
