"""What the analyst sees in DeepStrata's dialogs and the Layers panel (issue #16, items 4 and 7): Model info's card
shown at once and formatted, with no spurious messages; algorithm dialogs sized to their parameters within the
screen (QGIS opens them at 688 x 523) with the bundled model named in the empty model field; layer names that fit
inside their run's group, the full name kept as the layer's title and in its metadata."""
from __future__ import annotations

import pytest
from qgis.core import QgsLayerTree, QgsProject, QgsRasterLayer, QgsSettings
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QDialog, QFileDialog, QLabel, QScrollArea, QVBoxLayout

from qgis_support import DEM_MODEL_NAME

GEOMORPHONS = ["flat", "peak", "ridge", "shoulder", "spur", "slope", "hollow", "footslope", "valley", "pit"]
GEOMETRY_KEYS = ("Windows/QgsProcessingDialogBase/geometry",
                 "QgsCollapsibleGroupBox/QgsProcessingDialogBase/grpAdvanced/collapsed")


@pytest.fixture
def no_saved_geometry():
    """QGIS restores an algorithm dialog's last size: start from its default, and leave none behind."""
    settings = QgsSettings()
    for key in GEOMETRY_KEYS:
        settings.remove(key)
    yield
    for key in GEOMETRY_KEYS:
        settings.remove(key)


@pytest.fixture
def dialogs(qgis_iface, ds_provider, no_saved_geometry):
    """processing.createAlgorithmDialog as the toolbar and the toolbox call it (pytest-qgis's iface has no
    browser model, which the parameters panel asks for)."""
    from qgis.gui import QgsBrowserGuiModel

    model = QgsBrowserGuiModel()
    original = qgis_iface.browserModel
    qgis_iface.browserModel = lambda: model
    opened = []
    yield opened
    for dialog in opened:
        dialog.close()
        dialog.deleteLater()
    qgis_iface.browserModel = original


def shown(dialog: QDialog) -> QDialog:
    dialog.show()
    QTest.qWait(50)  # the fit runs once the dialog is on screen
    return dialog


def room(dialog: QDialog) -> QSize:
    return dialog.screen().availableGeometry().size() - (dialog.frameGeometry().size() - dialog.size())


def assert_fits(dialog: QDialog, area, wanted: QSize) -> None:
    """`area` shows `wanted` without scrolling, or the dialog takes all the room the screen has that way."""
    view, space = area.maximumViewportSize(), room(dialog)
    assert view.width() >= wanted.width() or dialog.width() == space.width(), (view, wanted, dialog.size())
    assert view.height() >= wanted.height() or dialog.height() == space.height(), (view, wanted, dialog.size())


# ---------------------------------------------------------------------------------------------- Model info
def card_dialog(path=None):
    from deepstrata.ui.model_card import ModelCardDialog

    return ModelCardDialog(None, path)


def test_the_card_shows_at_once_formatted(qgis_iface):
    dialog = shown(card_dialog())
    text = dialog.card.toPlainText()
    assert text.startswith("Landforms from DEM (geomorphon network, 10 classes, any scale)\nVersion 3.0.0\n")
    for line in ("Task\nsegmentation\n", "Input\n1 band (dem): elevation [m]\n", "Tile size\n512 px, margin 26 px\n",
                 "Pixel size\nany; search distance 10 cells by default", "Metrics\nunseen min agreement: 0.9327\n",
                 "Provider\nCPUExecutionProvider", "File\nlandforms_geomorphon.onnx\n"):
        assert line in text, line  # a table cell a line in the plain text
    classes = text.split("\nClasses\nValue\nColour\nName\nDescription\n")[1]
    assert [row.split("\n")[::2][:2] for row in classes.strip().split("\n\n")] == \
        [[str(value), name] for value, name in enumerate(GEOMORPHONS, start=1)]
    page = dialog.card.toHtml()
    assert 'bgcolor="#dcdcdc"' in page and 'bgcolor="#000038"' in page  # each class's colour, as a swatch
    assert "HTML output" not in text and "Results" not in text  # nothing but the card
    assert dialog.models.currentText() == "landforms_geomorphon.onnx (bundled)"
    assert not dialog.file.isVisible() and not dialog.file_label.isVisible()  # a bundled model: no file row
    assert dialog.save.isEnabled()
    assert_fits(dialog, dialog.card, QSize(dialog.card.viewport().width(), int(dialog.card.document().size().height())))
    dialog.close()


def test_another_file_and_a_missing_one(qgis_iface, dem_segmenter, tmp_path):
    dialog = shown(card_dialog(str(dem_segmenter)))
    assert dialog.file.isVisible() and dialog.card.toPlainText().startswith(DEM_MODEL_NAME)
    dialog.file.setFilePath(str(tmp_path / "gone.onnx"))
    assert dialog.card.toPlainText().startswith(f"Model file not found: '{tmp_path / 'gone.onnx'}'")
    assert not dialog.save.isEnabled()
    dialog.models.setCurrentIndex(1)  # another bundled model, by file name
    assert dialog.models.currentText().endswith(".onnx (bundled)") and not dialog.file.isVisible()
    assert "\nTask\n" in dialog.card.toPlainText()
    dialog.close()


def test_save_as_html(qgis_iface, monkeypatch, tmp_path):
    target = tmp_path / "card.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    dialog = card_dialog()
    dialog.save.click()
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Landforms from DEM (" in page
    assert "background-color:#dcdcdc" in page and "&quot;schema&quot;: &quot;deepstrata.card/1&quot;" in page


def test_the_toolbar_opens_the_card_not_a_processing_dialog(qgis_iface, qgis_new_project, monkeypatch):
    import processing
    from deepstrata.ui.toolbar import DeepStrataToolbar

    monkeypatch.setattr(processing, "execAlgorithmDialog", lambda *args: pytest.fail("a Processing dialog opened"))
    monkeypatch.setattr(qgis_iface, "addPluginToRasterMenu", lambda *args: None, raising=False)
    monkeypatch.setattr(qgis_iface, "removePluginRasterMenu", lambda *args: None, raising=False)
    bar = DeepStrataToolbar(qgis_iface)
    try:
        bar.info_action.trigger()
        QTest.qWait(50)
        opened = qgis_iface.mainWindow().findChildren(QDialog, "DeepStrataModelCard")
        assert len(opened) == 1 and opened[0].isVisible()
        assert opened[0].card.toPlainText().startswith("Landforms from DEM (")
        opened[0].close()
    finally:
        bar.unload()


# ---------------------------------------------------------------------------------------------- sizes
def test_fit_to_content_grows_to_the_content_within_the_screen(qgis_iface):
    from deepstrata.support import fit_to_content

    for content, expect_all in ((QSize(420, 330), True), (QSize(4000, 3000), False)):
        dialog = QDialog()
        area = QScrollArea()
        inner = QLabel("content")
        inner.setMinimumSize(content)
        area.setWidget(inner)
        QVBoxLayout(dialog).addWidget(area)
        dialog.resize(200, 150)
        dialog.show()
        fit_to_content(dialog)
        view = area.maximumViewportSize()
        if expect_all:
            assert view.width() >= content.width() and view.height() >= content.height()
            assert dialog.width() < 600 and dialog.height() < 500  # no larger than needed
        else:
            assert dialog.size() == room(dialog)
        dialog.close()


@pytest.mark.parametrize("alg_id", ["deepstrata:runmodel", "deepstrata:classifylandforms", "deepstrata:modelinfo"])
def test_algorithm_dialogs_are_sized_to_their_parameters(dialogs, alg_id):
    import processing

    dialog = processing.createAlgorithmDialog(alg_id, {})
    dialogs.append(dialog)
    assert type(dialog).__name__ == "FittedAlgorithmDialog"
    assert (dialog.width(), dialog.height()) == (688, 523)  # what QGIS gives every algorithm dialog
    shown(dialog)
    areas = [a for a in dialog.findChildren(QScrollArea) if a.widget() is not None and a.isVisibleTo(dialog)]
    assert areas
    for area in areas:
        assert_fits(dialog, area, area.widget().sizeHint())
    if alg_id != "deepstrata:modelinfo":  # two parameters: they may fit at QGIS's size
        assert dialog.width() > 688 or dialog.height() > 523


def test_the_empty_model_field_names_the_bundled_model(dialogs):
    import processing
    from qgis.gui import QgsFileWidget

    dialog = processing.createAlgorithmDialog("deepstrata:runmodel", {})
    dialogs.append(dialog)
    (field,) = dialog.findChildren(QgsFileWidget)
    assert field.filePath() == ""
    assert field.lineEdit().placeholderText() == "Bundled: Landforms from DEM (landforms_geomorphon.onnx)"
    assert dialog.mainWidget().wrappers["MODEL"].parameterValue() in (None, "")


# ---------------------------------------------------------------------------------------------- layer names
def test_layer_names_fit_inside_the_group_and_keep_the_full_name(ds_provider, qgis_new_project, dem_segmenter, dem,
                                                                 tmp_path):
    import processing

    project = QgsProject.instance()
    project.addMapLayer(QgsRasterLayer(str(dem), "bigtujunga"))
    processing.runAndLoadResults("deepstrata:runmodel", {
        "INPUT": "bigtujunga", "MODEL": str(dem_segmenter), "OUTPUT": str(tmp_path / "c.tif"),
        "CONFIDENCE": str(tmp_path / "p.tif")})
    group = project.layerTreeRoot().children()[0]
    name = DEM_MODEL_NAME.split(" (")[0]
    assert QgsLayerTree.isGroup(group) and group.name() == f"{name} - bigtujunga"
    assert [n.name() for n in group.children()] == [name, f"{name} confidence"]
    for node, full in zip(group.children(), [f"{name} - bigtujunga", f"{name} confidence - bigtujunga"]):
        layer = node.layer()
        assert layer.metadata().title() == full
        server = layer.serverProperties() if hasattr(layer, "serverProperties") else None
        title = server.title() if server is not None and hasattr(server, "title") else layer.title()
        assert title == full  # the Layers panel's tooltip shows it


def test_without_a_group_names_stay_whole(ds_provider, qgis_new_project, dem_segmenter, dem, tmp_path):
    import processing

    settings = QgsSettings()
    settings.setValue("Processing/Configuration/DEEPSTRATA_GROUP_OUTPUTS", False)
    try:
        QgsProject.instance().addMapLayer(QgsRasterLayer(str(dem), "bigtujunga"))
        processing.runAndLoadResults("deepstrata:runmodel", {
            "INPUT": "bigtujunga", "MODEL": str(dem_segmenter), "OUTPUT": str(tmp_path / "c.tif")})
    finally:
        settings.remove("Processing/Configuration/DEEPSTRATA_GROUP_OUTPUTS")
    top = QgsProject.instance().layerTreeRoot().children()[0]
    assert top.name() == f"{DEM_MODEL_NAME.split(' (')[0]} - bigtujunga" and not QgsLayerTree.isGroup(top)
    assert top.layer().metadata().title() == ""
