"""deepstrata:dependencies and the installer dialog in QGIS: report, install from a folder of wheels, failure."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from qgis.core import QgsProcessingException
from qgis.PyQt.QtTest import QTest

from deepstrata.dependencies import requirements
from deepstrata.dependencies.requirements import Requirement
from ds_testing.wheels import wheel

TINY = Requirement("dstiny", "dstiny", "0.1", "test package")


@pytest.fixture
def tiny_missing(monkeypatch, tmp_path):
    """A runtime requirement that is missing here, and a folder holding its wheel."""
    monkeypatch.setattr(requirements, "REQUIREMENTS", (TINY,))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "dstiny", "0.2")
    yield wheels
    sys.path[:] = [p for p in sys.path if "deepstrata-deps" not in p and str(tmp_path) not in p]
    sys.modules.pop("dstiny", None)


def test_report_mode(ds_provider, tmp_path):
    import processing

    result = processing.run("deepstrata:dependencies", {"TARGET_FOLDER": str(tmp_path / "target")})
    import onnxruntime

    assert f"onnxruntime {onnxruntime.__version__}: ok" in result["REPORT"]
    assert "Nothing to install." in result["REPORT"]
    assert result["READY"] is True and result["COMMAND"] == "" and result["TARGET"] == str(tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_report_mode_names_what_is_missing(ds_provider, tiny_missing, tmp_path):
    import processing

    target = tmp_path / "target"
    result = processing.run("deepstrata:dependencies", {"TARGET_FOLDER": str(target), "GPU": 1,
                                                         "OFFLINE_WHEELS": str(tiny_missing)})
    assert "dstiny: missing" in result["REPORT"] and result["READY"] is False
    assert f"--target {target}" in result["COMMAND"] and f"--find-links {tiny_missing}" in result["COMMAND"]
    assert not target.exists()


def test_install_mode_from_wheels(ds_provider, tiny_missing, tmp_path):
    import processing

    target = tmp_path / "target"
    result = processing.run("deepstrata:dependencies", {"INSTALL": True, "TARGET_FOLDER": str(target),
                                                         "OFFLINE_WHEELS": str(tiny_missing)})
    assert "dstiny 0.2: ok" in result["REPORT"] and "Ready: no restart needed." in result["REPORT"]
    assert result["READY"] is True and (target / "dstiny" / "__init__.py").is_file()
    assert str(target) in sys.path and sys.path.index(str(target)) > sys.path.index(str(Path(requirements.__file__)
                                                                                          .parents[2]))


def test_install_failure_says_why_and_how(ds_provider, tiny_missing, tmp_path):
    import processing

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(QgsProcessingException, match="No ready-built package exists") as caught:
        processing.run("deepstrata:dependencies", {"INSTALL": True, "TARGET_FOLDER": str(tmp_path / "t"),
                                                   "OFFLINE_WHEELS": str(empty)})
    assert "In a terminal, run:" in str(caught.value) and "--no-index" in str(caught.value)


def test_dialog_installs_with_log_and_progress(qgis_iface, tiny_missing, tmp_path, monkeypatch):
    from deepstrata.ui import installer

    target = tmp_path / "dialog-target"
    monkeypatch.setattr(installer, "dependencies_target", lambda: str(target))
    dialog = installer.InstallerDialog()
    assert "dstiny: missing" in dialog.summary.text() and dialog.install_button.isEnabled()
    dialog.wheels.setText(str(tiny_missing))
    dialog.refresh()
    assert f"Into: {target}" in dialog.summary.text() and "--no-index" in dialog.summary.text()
    dialog.start()
    for _ in range(600):
        if dialog.worker is None:
            break
        QTest.qWait(100)
    log = dialog.log.toPlainText()
    assert "Successfully installed dstiny-0.2" in log and log.startswith("$ ")
    assert dialog.progress.value() == 100 and "Ready: no restart needed." in dialog.summary.text()
    assert dialog.cancel_button.text() == "Close"
    dialog.close()


def test_message_bar_offer_installs_then_goes(qgis_iface, tiny_missing, tmp_path, monkeypatch):
    from deepstrata.ui import installer

    monkeypatch.setattr(installer, "dependencies_target", lambda: str(tmp_path / "offer-target"))
    installed = []
    offer = installer.InstallOffer(qgis_iface, "onnxruntime is not installed", lambda: installed.append(True))
    assert offer.button.text() == "Install..."
    offer.button.click()
    dialog = offer.dialog
    assert dialog.isVisible()
    dialog.wheels.setText(str(tiny_missing))
    dialog.refresh()
    dialog.install_button.click()
    for _ in range(600):
        if dialog.worker is None:
            break
        QTest.qWait(100)
    dialog.cancel_button.click()  # "Close" once done
    assert installed == [True] and not dialog.isVisible()
    offer.remove()


def test_plugin_offers_the_installer_when_onnxruntime_is_missing(qgis_iface, monkeypatch):
    import deepstrata

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    plugin = deepstrata.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.install_offer is not None and plugin.install_offer.button.text() == "Install..."
        assert "Check and install dependencies" in plugin.install_offer.button.toolTip()
    finally:
        plugin.unload()
    assert plugin.install_offer is None


def test_dialog_cancel_stops_pip(qgis_iface, tiny_missing, tmp_path, monkeypatch):
    from deepstrata.ui import installer

    monkeypatch.setattr(installer, "dependencies_target", lambda: str(tmp_path / "cancel-target"))
    dialog = installer.InstallerDialog()
    dialog.wheels.setText(str(tiny_missing))
    dialog.refresh()
    dialog.start()
    dialog.cancel_button.click()  # while pip starts
    for _ in range(300):
        if dialog.worker is None:
            break
        QTest.qWait(100)
    assert dialog.summary.text().startswith("Installation cancelled") and dialog.install_button.isEnabled()
    assert "Cancelling..." in dialog.log.toPlainText() and dialog.outcome is None
    assert not (tmp_path / "cancel-target" / "dstiny").exists()
    dialog.close()
