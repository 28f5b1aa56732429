"""The toolbar's workflow actions (Landforms, Geology, Anomalies): which layer each fits, what the tooltips say,
which Processing dialog each opens, the Raster menu, the device label and a clean unload."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (QgsApplication, QgsMeshLayer, QgsPointCloudLayer, QgsProject, QgsRasterLayer,
                       QgsVectorLayer)
from qgis.PyQt.QtCore import QCoreApplication, QEvent
from qgis.PyQt.QtWidgets import QMenu, QToolBar

try:  # Qt6: QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction

from ds_testing import rasters

LANDFORMS_ID, GEOLOGY_ID, ANOMALIES_ID = "deepstrata:classifylandforms", "deepstrata:mapgeology", \
    "deepstrata:detectanomalies"
GEOLOGY_NEEDS = ("Geology needs a multispectral scene with at least the six bands blue, green, red, NIR, SWIR1, "
                 "SWIR2 (Landsat 8/9 OLI B2-B7 or Sentinel-2 B02, B03, B04, B8A, B11, B12)")
FIT_ANOMALY = ("no bundled anomaly model for a 3-band raster: pick your own model in the dialog, or tick 'Fit a "
               "model to this raster' there")
FILES_ONLY = "DeepStrata reads rasters from files: save 'osm' as a GeoTIFF first"


@pytest.fixture(autouse=True)
def no_aux_xml():
    """Opening a layer must not write .aux.xml statistics anywhere (least of all into tests/data)."""
    old = gdal.GetConfigOption("GDAL_PAM_ENABLED")
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")
    yield
    gdal.SetConfigOption("GDAL_PAM_ENABLED", old)


# ---------------------------------------------------------------------------------------------- the pure rule
def facts(name="x", bands=1, data_type="Int16", **kw):
    from deepstrata.ui.fit import LayerFacts

    return LayerFacts(name, bands=bands, data_type=data_type, **kw)


def fit(workflow, layer, **kw):
    from deepstrata.ui.fit import workflow_fit

    return workflow_fit(workflow, layer, **kw)


WORKFLOWS = ("landforms", "geology", "anomalies")


@pytest.mark.parametrize("workflow, text", [
    ("landforms", "Select a DEM (a single-band raster layer) in the Layers panel to classify its landforms."),
    ("geology", "Select a multispectral raster layer (at least six bands: blue, green, red, NIR, SWIR1, SWIR2) in "
                "the Layers panel to map its geology."),
    ("anomalies", "Select a raster layer (a DEM or a multispectral scene) in the Layers panel to detect anomalies "
                  "in it."),
])
def test_no_layer_fits_nothing(workflow, text):
    assert fit(workflow, None) == (False, text)


@pytest.mark.parametrize("kind", ["vector", "mesh", "point cloud", "vector tile"])
@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_only_raster_layers_fit(workflow, kind):
    enabled, tip = fit(workflow, facts("wells", bands=0, data_type="", kind=kind, provider="ogr"))
    assert not enabled
    assert tip.startswith(f"'wells' is a {kind} layer, not a raster; ")
    assert tip.endswith(". Select one in the Layers panel.")


def test_what_would_fit_is_named():
    assert fit("landforms", facts("wells", kind="vector", bands=0))[1] == (
        "'wells' is a vector layer, not a raster; Landforms needs a single-band DEM. Select one in the Layers panel.")
    assert fit("geology", facts("wells", kind="vector", bands=0))[1] == (
        f"'wells' is a vector layer, not a raster; {GEOLOGY_NEEDS}. Select one in the Layers panel.")
    assert fit("anomalies", facts("x", kind="something new", bands=0))[1] == (
        "'x' is not a raster layer; Anomalies needs a raster layer: a single-band DEM or a multispectral scene. "
        "Select one in the Layers panel.")


@pytest.mark.parametrize("provider", ["wms", "wcs", "arcgismapserver", "postgresraster"])
@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_only_rasters_from_files_fit(workflow, provider):
    for bands in (1, 3, 6):
        enabled, tip = fit(workflow, facts("osm", bands=bands, data_type="ARGB32", provider=provider))
        assert not enabled and tip.startswith(FILES_ONLY)


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_an_unreadable_layer_fits_nothing(workflow):
    assert fit(workflow, facts("gone", bands=0, data_type="", valid=False)) == (False, (
        "'gone' cannot be read: fix its data source (Layer Properties > Source), or select another raster layer"))


def test_landforms_needs_one_band():
    assert fit("landforms", facts("bigtujunga", 1, "Int16")) == (
        True, "Classify the landforms of 'bigtujunga' (DEM, 1 band) with the bundled landform model")
    assert fit("landforms", facts("dem", 1, "Float32"))[0]
    assert fit("landforms", facts("photo", 3, "Byte")) == (
        False, "'photo' looks like an RGB image (3 bands, Byte); Landforms needs a single-band DEM")
    assert fit("landforms", facts("photo", 4, "Byte")) == (
        False, "'photo' looks like an RGB image (4 bands, Byte); Landforms needs a single-band DEM")
    assert fit("landforms", facts("l8", 3, "UInt16")) == (
        False, "'l8' has 3 bands; Landforms needs a single-band DEM")
    assert fit("landforms", facts("pair", 2, "Byte")) == (
        False, "'pair' has 2 bands; Landforms needs a single-band DEM")
    assert fit("landforms", facts("scene", 7, "UInt16")) == (
        False, "'scene' has 7 bands; Landforms needs a single-band DEM")


def test_geology_needs_six_bands():
    assert fit("geology", facts("l8", 3, "UInt16")) == (False, f"'l8' has 3 bands; {GEOLOGY_NEEDS}")
    assert fit("geology", facts("dem", 1, "Int16")) == (False, f"'dem' has 1 band; {GEOLOGY_NEEDS}")
    assert fit("geology", facts("five", 5, "UInt16")) == (False, f"'five' has 5 bands; {GEOLOGY_NEEDS}")
    assert fit("geology", facts("photo", 3, "Byte")) == (
        False, f"'photo' looks like an RGB image (3 bands, Byte); {GEOLOGY_NEEDS}")
    for bands in (6, 7, 13):
        enabled, tip = fit("geology", facts("scene", bands, "UInt16"))
        assert enabled
        assert tip.startswith(f"Map the geology of 'scene' (multispectral, {bands} bands) with the bundled geology "
                              "model")


def test_anomalies_fit_any_raster_and_say_which_model():
    assert fit("anomalies", facts("dem", 1, "Int16")) == (
        True, "Detect anomalies in 'dem' (DEM, 1 band) with the bundled terrain anomaly model")
    assert fit("anomalies", facts("scene", 6, "UInt16")) == (
        True, "Detect anomalies in 'scene' (multispectral, 6 bands) with the bundled multispectral anomaly model")
    enabled, tip = fit("anomalies", facts("l8", 3, "UInt16"))
    assert enabled and tip == f"Detect anomalies in 'l8' (3 bands, UInt16). There is {FIT_ANOMALY}"
    enabled, tip = fit("anomalies", facts("photo", 4, "Byte"))
    assert enabled and "(4 bands, Byte)" in tip and "no bundled anomaly model for a 4-band raster" in tip
    assert fit("anomalies", facts("empty", 0, ""))[0] is False


@pytest.mark.parametrize("workflow, title", [("landforms", "Landforms"), ("geology", "Geology"),
                                             ("anomalies", "Anomalies")])
def test_a_missing_algorithm_disables_its_workflow(workflow, title):
    for layer in (None, facts("dem", 1), facts("scene", 6, "UInt16")):
        enabled, tip = fit(workflow, layer, algorithm_loaded=False)
        assert not enabled
        assert tip.startswith(f"The DeepStrata Processing provider failed to load the {title} algorithm")


def test_an_unknown_workflow_is_an_error():
    with pytest.raises(ValueError, match="unknown workflow 'hydrology'"):
        fit("hydrology", None)


# ------------------------------------------------------------------------------------- layers and the toolbar
@pytest.fixture
def rgb_photo(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (3, 24, 32), dtype=np.uint8)
    return rasters.write_raster(tmp_path / "photo.tif", data)


@pytest.fixture
def scene6(tmp_path):
    data = np.random.default_rng(1).integers(5000, 20000, (6, 24, 32), dtype=np.uint16)
    return rasters.write_raster(tmp_path / "scene.tif", data)


def osm() -> QgsRasterLayer:
    return QgsRasterLayer("type=xyz&url=https://tile.openstreetmap.org/{z}/{x}/{y}.png&zmax=19&zmin=0", "osm", "wms")


def test_layer_facts(dem, landsat, rgb_photo, scene6):
    from deepstrata.ui.fit import LayerFacts
    from deepstrata.ui.toolbar import layer_facts

    assert layer_facts(None) is None
    assert layer_facts(QgsRasterLayer(str(dem), "bigtujunga")) == LayerFacts("bigtujunga", "raster", "gdal", 1, "Int16")
    assert layer_facts(QgsRasterLayer(str(landsat), "l8")) == LayerFacts("l8", "raster", "gdal", 3, "UInt16")
    assert layer_facts(QgsRasterLayer(str(rgb_photo), "photo")) == LayerFacts("photo", "raster", "gdal", 3, "Byte")
    assert layer_facts(QgsRasterLayer(str(scene6), "scene")) == LayerFacts("scene", "raster", "gdal", 6, "UInt16")
    assert layer_facts(osm()).provider == "wms"
    assert layer_facts(QgsRasterLayer(str(dem.parent / "missing.tif"), "gone")) == LayerFacts(
        "gone", "raster", "gdal", 0, "", valid=False)
    assert layer_facts(QgsVectorLayer("Point?crs=EPSG:4326", "wells", "memory")).kind == "vector"
    assert layer_facts(QgsMeshLayer(str(dem.parent / "missing.2dm"), "mesh", "mdal")).kind == "mesh"
    assert layer_facts(QgsPointCloudLayer(str(dem.parent / "missing.las"), "lidar", "pdal")).kind == "point cloud"


@pytest.fixture
def raster_menu(qgis_iface, monkeypatch):
    """Raster > <plugin menu> as QGIS builds it: the submenu appears with its first action, goes with its last."""
    bar = qgis_iface.mainWindow().menuBar()
    raster = bar.addMenu("&Raster")

    def submenu(name, create) -> QMenu | None:
        found = [a.menu() for a in raster.actions() if a.menu() is not None and a.text() == name]
        return found[0] if found else (raster.addMenu(name) if create else None)

    def add(name, action):
        submenu(name, True).addAction(action)

    def remove(name, action):
        menu = submenu(name, False)
        if menu is not None:
            menu.removeAction(action)
            if not menu.actions():
                raster.removeAction(menu.menuAction())

    monkeypatch.setattr(qgis_iface, "addPluginToRasterMenu", add, raising=False)
    monkeypatch.setattr(qgis_iface, "removePluginRasterMenu", remove, raising=False)
    yield raster
    bar.removeAction(raster.menuAction())


@pytest.fixture
def loaded(monkeypatch):
    """The three workflow algorithms in the registry (whatever state the provider is in while it is written)."""
    import deepstrata.ui.toolbar as toolbar_module

    present = {LANDFORMS_ID, GEOLOGY_ID, ANOMALIES_ID, "deepstrata:runmodel", "deepstrata:modelinfo"}
    monkeypatch.setattr(toolbar_module, "algorithm_loaded", present.__contains__)
    return present


@pytest.fixture
def toolbar(qgis_iface, qgis_new_project, raster_menu, loaded):
    from deepstrata.ui.toolbar import DeepStrataToolbar

    bar = DeepStrataToolbar(qgis_iface)
    yield bar
    bar.unload()


@pytest.fixture
def dialogs(monkeypatch):
    import processing

    calls = []
    monkeypatch.setattr(processing, "execAlgorithmDialog", lambda alg_id, params: calls.append((alg_id, params)))
    return calls


def activate(iface, layer):
    if layer is not None:
        QgsProject.instance().addMapLayer(layer)
        iface.setActiveLayer(layer)
    iface.currentLayerChanged.emit(iface.mapCanvas())
    return layer


def state(bar) -> dict:
    for action in bar.workflow_actions.values():
        assert action.statusTip() == action.toolTip()
    return {w: (a.isEnabled(), a.toolTip()) for w, a in bar.workflow_actions.items()}


def test_actions_come_before_run_model_with_names_icons_and_menu(toolbar, raster_menu):
    names = [a.objectName() for a in toolbar.toolbar.actions() if a.objectName()]
    assert names[:6] == ["DeepStrataLandforms", "DeepStrataGeology", "DeepStrataAnomalies", "DeepStrataFitAnomaly",
                         "DeepStrataRunModel", "DeepStrataModelInfo"]
    assert [toolbar.workflow_actions[w].text() for w in WORKFLOWS] == ["Landforms…", "Geology…", "Anomalies…"]
    assert all(not a.icon().isNull() for a in toolbar.actions())
    (submenu,) = [a.menu() for a in raster_menu.actions() if a.text() == "&DeepStrata"]
    assert submenu.actions() == toolbar.actions()


def test_no_layer_and_vector_layer(qgis_iface, toolbar):
    now = state(toolbar)
    assert not any(enabled for enabled, _ in now.values())
    assert now["landforms"][1].startswith("Select a DEM")

    activate(qgis_iface, QgsVectorLayer("Point?crs=EPSG:4326", "wells", "memory"))
    now = state(toolbar)
    assert not any(enabled for enabled, _ in now.values())
    assert all(tip.startswith("'wells' is a vector layer, not a raster; ") for _, tip in now.values())


def test_dem(qgis_iface, toolbar, dem):
    activate(qgis_iface, QgsRasterLayer(str(dem), "bigtujunga"))
    assert state(toolbar) == {
        "landforms": (True, "Classify the landforms of 'bigtujunga' (DEM, 1 band) with the bundled landform model"),
        "geology": (False, f"'bigtujunga' has 1 band; {GEOLOGY_NEEDS}"),
        "anomalies": (True, "Detect anomalies in 'bigtujunga' (DEM, 1 band) with the bundled terrain anomaly model"),
    }
    assert toolbar.run_action.isEnabled()


def test_rgb_photo_and_landsat_rgb(qgis_iface, toolbar, rgb_photo, landsat):
    activate(qgis_iface, QgsRasterLayer(str(rgb_photo), "photo"))
    now = state(toolbar)
    assert now["landforms"] == (False, "'photo' looks like an RGB image (3 bands, Byte); Landforms needs a "
                                       "single-band DEM")
    assert now["geology"] == (False, f"'photo' looks like an RGB image (3 bands, Byte); {GEOLOGY_NEEDS}")
    assert now["anomalies"] == (True, f"Detect anomalies in 'photo' (3 bands, Byte). There is {FIT_ANOMALY}")

    activate(qgis_iface, QgsRasterLayer(str(landsat), "l8"))  # UInt16: three bands, not a photo
    now = state(toolbar)
    assert now["landforms"] == (False, "'l8' has 3 bands; Landforms needs a single-band DEM")
    assert now["geology"] == (False, f"'l8' has 3 bands; {GEOLOGY_NEEDS}")
    assert now["anomalies"][0] and FIT_ANOMALY in now["anomalies"][1]


def test_multispectral(qgis_iface, toolbar, scene6):
    activate(qgis_iface, QgsRasterLayer(str(scene6), "scene"))
    now = state(toolbar)
    assert now["landforms"] == (False, "'scene' has 6 bands; Landforms needs a single-band DEM")
    assert now["geology"][0] and now["geology"][1].startswith("Map the geology of 'scene' (multispectral, 6 bands)")
    assert now["anomalies"] == (True, "Detect anomalies in 'scene' (multispectral, 6 bands) with the bundled "
                                      "multispectral anomaly model")


def test_web_raster(qgis_iface, toolbar):
    activate(qgis_iface, osm())
    assert all(not enabled and tip.startswith(FILES_ONLY) for enabled, tip in state(toolbar).values())


def test_actions_open_their_processing_dialog(qgis_iface, toolbar, dialogs, dem, scene6):
    layer = activate(qgis_iface, QgsRasterLayer(str(dem), "bigtujunga"))
    for action in toolbar.workflow_actions.values():
        action.trigger()  # Geology is disabled: triggering it does nothing
    toolbar.run_workflow("geology")  # nor does calling it while the layer does not fit
    assert dialogs == [(LANDFORMS_ID, {"INPUT": layer}), (ANOMALIES_ID, {"INPUT": layer})]

    dialogs.clear()
    scene = activate(qgis_iface, QgsRasterLayer(str(scene6), "scene"))
    toolbar.workflow_actions["geology"].trigger()
    toolbar.workflow_actions["anomalies"].trigger()
    assert dialogs == [(GEOLOGY_ID, {"INPUT": scene}), (ANOMALIES_ID, {"INPUT": scene})]


def test_a_missing_algorithm_disables_only_its_action(qgis_iface, toolbar, loaded, dialogs, dem):
    loaded.discard(LANDFORMS_ID)
    layer = activate(qgis_iface, QgsRasterLayer(str(dem), "bigtujunga"))
    landforms = toolbar.workflow_actions["landforms"]
    assert not landforms.isEnabled()
    assert landforms.toolTip().startswith("The DeepStrata Processing provider failed to load the Landforms algorithm")
    assert toolbar.workflow_actions["anomalies"].isEnabled()
    toolbar.run_workflow("landforms")
    toolbar.workflow_actions["anomalies"].trigger()
    assert dialogs == [(ANOMALIES_ID, {"INPUT": layer})]


def test_the_real_registry_decides_what_is_loaded(qgis_iface, qgis_new_project, raster_menu, ds_provider, dem):
    from deepstrata.ui.toolbar import WORKFLOWS as ALGORITHMS
    from deepstrata.ui.toolbar import DeepStrataToolbar

    bar = DeepStrataToolbar(qgis_iface)
    try:
        activate(qgis_iface, QgsRasterLayer(str(dem), "bigtujunga"))
        registry = QgsApplication.processingRegistry()
        for workflow in ("landforms", "anomalies"):  # both fit a DEM: only a missing algorithm disables them
            present = registry.algorithmById(ALGORITHMS[workflow][0]) is not None
            assert bar.workflow_actions[workflow].isEnabled() is present
            assert ("failed to load" in bar.workflow_actions[workflow].toolTip()) is not present
    finally:
        bar.unload()


def test_enablement_follows_the_project_and_the_layer_source(qgis_iface, toolbar, dem, scene6):
    layer = QgsRasterLayer(str(dem), "bigtujunga")
    qgis_iface.setActiveLayer(layer)  # not yet in the project: no active layer for QGIS
    geology, landforms = toolbar.workflow_actions["geology"], toolbar.workflow_actions["landforms"]
    QgsProject.instance().addMapLayer(layer)  # layersAdded refreshes, without a currentLayerChanged
    assert landforms.isEnabled() and not geology.isEnabled()

    layer.setName("tujunga")
    assert "'tujunga' (DEM, 1 band)" in landforms.toolTip()
    layer.setDataSource(str(scene6), "tujunga", "gdal")  # dataSourceChanged: now a 6-band scene
    assert geology.isEnabled() and not landforms.isEnabled()

    QgsProject.instance().removeMapLayer(layer.id())  # layersRemoved
    assert not geology.isEnabled() and geology.toolTip().startswith("Select a multispectral raster layer")


def deleted_later():
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_unload_removes_every_action_and_toolbar(qgis_iface, qgis_new_project, raster_menu, loaded, dem):
    from deepstrata.ui.toolbar import DeepStrataToolbar

    window = qgis_iface.mainWindow()
    bar = DeepStrataToolbar(qgis_iface)
    assert window.findChild(QToolBar, "DeepStrataToolbar") is bar.toolbar
    assert len(raster_menu.actions()) == 1
    bar.unload()
    bar.unload()  # twice is harmless
    deleted_later()
    assert window.findChild(QToolBar, "DeepStrataToolbar") is None
    assert [a for a in window.findChildren(QAction) if a.objectName().startswith("DeepStrata")] == []
    assert raster_menu.actions() == []
    for toolbar in window.findChildren(QToolBar):
        assert not [a for a in toolbar.actions() if a.objectName().startswith("DeepStrata")]
    activate(qgis_iface, QgsRasterLayer(str(dem), "bigtujunga"))  # no slot of the deleted toolbar runs


def test_plugin_unload_leaves_no_menu_or_toolbar(qgis_iface, qgis_new_project, raster_menu):
    import deepstrata

    window = qgis_iface.mainWindow()
    plugin = deepstrata.classFactory(qgis_iface)
    plugin.initGui()
    (submenu,) = [a.menu() for a in raster_menu.actions() if a.text() == "&DeepStrata"]
    assert [a.objectName() for a in submenu.actions()] == ["DeepStrataLandforms", "DeepStrataGeology",
                                                           "DeepStrataAnomalies", "DeepStrataFitAnomaly",
                                                           "DeepStrataRunModel",
                                                           "DeepStrataModelInfo"]
    plugin.unload()
    deleted_later()
    assert raster_menu.actions() == []
    assert window.findChild(QToolBar, "DeepStrataToolbar") is None
    assert [a for a in window.findChildren(QAction) if a.objectName().startswith("DeepStrata")] == []


# ------------------------------------------------------------------------------------------ the device label
@pytest.mark.parametrize("available, label, provider", [
    (["CUDAExecutionProvider", "CPUExecutionProvider"], "Device: GPU", "CUDAExecutionProvider"),
    (["CoreMLExecutionProvider", "CPUExecutionProvider"], "Device: accelerator", "CoreMLExecutionProvider"),
    (["CPUExecutionProvider"], "Device: CPU", "CPUExecutionProvider"),
])
def test_device_tooltip_names_the_provider_and_why(monkeypatch, available, label, provider):
    import deepstrata.inference
    from deepstrata.ui.device import device_summary

    monkeypatch.setattr(deepstrata.inference, "available_providers", lambda: list(available))
    summary = device_summary()
    assert (summary.label, summary.provider) == (label, provider)
    assert len(summary.label) <= len("Device: accelerator")  # short enough for a toolbar
    assert f"picks {provider}" in summary.tooltip or f"the CPU ({provider})" in summary.tooltip
    assert ", ".join(available) in summary.tooltip  # and what else onnxruntime offers here


def test_toolbar_device_label_is_short_and_its_tooltip_names_the_provider(monkeypatch, toolbar):
    import deepstrata.inference

    monkeypatch.setattr(deepstrata.inference, "available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    toolbar.update_device()
    assert toolbar.device_label.text() == "Device: GPU"
    assert "CUDAExecutionProvider" in toolbar.device_label.toolTip()
    assert "NVIDIA GPU (CUDA)" in toolbar.device_label.toolTip()
