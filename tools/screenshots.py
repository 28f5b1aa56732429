"""Screenshots of QGIS desktop running DeepStrata, for the docs (docs/images/*.png).

From the repository root, after `make setup`:

    timeout 300 python3 tools/screenshots.py            # writes docs/images/*.png; the log is printed at the end

Run by plain Python, this file prepares a throwaway QGIS profile with the plugin enabled and starts QGIS under
Xvfb with itself as the startup code; that is, it runs

    xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path /tmp/ds-shots-XXXX/profiles --profile shots \
        --nologo --noversioncheck --code tools/screenshots.py

with QGIS_PLUGINPATH=.build/plugins, PYTHONPATH=.build/plugins:.venv/lib/python3.*/site-packages (onnxruntime
for QGIS's Python), GDAL_PAM_ENABLED=NO (no .aux.xml beside the samples), QT_QPA_PLATFORM=xcb, and qgis's own
folder first on PATH (QGIS's embedded Python takes its home from the first `python3` there: not a pyenv shim).
Run inside QGIS (`--code`), it loads the bundled samples (copies in the scratch folder), a hillshade of the DEM
and the Landsat scene as a natural-colour composite, runs Classify landforms, Map geology and Detect anomalies
with processing.runAndLoadResults (so the algorithms' post-processors name and style the layers), grabs the
toolbar, the Classify landforms dialog, the Model info dialog, each result with its legend, and the class statistics
table, then quits.
A watchdog ends QGIS if anything hangs. Options: --out DIR (default docs/images), --keep (keep the scratch folder,
with the log and inputs_*.png: the inputs alone, to read the results against).
"""
from __future__ import annotations

import os
import sys

SIZE = (1400, 900)  # main window
WATCHDOG_S = 200  # inside QGIS, from the script's start
STARTUP_S = 90  # for QGIS to start and run this script
DEM = "bigtujunga_dem"
SCENE = "LC80200392015216LGN00_B2-B7_sample"
MTL = "LC80200392015216LGN00_MTL.txt"


# ---------------------------------------------------------------------------------------------- launcher
def launch(argv: list[str]) -> int:
    import argparse
    import glob
    import shutil
    import signal
    import subprocess
    import tempfile
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/images", help="folder for the PNGs (default docs/images)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (profile, copies, log)")
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plugins = os.path.join(root, ".build", "plugins")
    if not os.path.isdir(os.path.join(plugins, "deepstrata")):
        print(f"{plugins}/deepstrata is missing: run `make setup` first.", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="ds-shots-")
    profile = os.path.join(work, "profiles", "profiles", "shots", "QGIS")
    os.makedirs(profile)
    with open(os.path.join(profile, "QGIS3.ini"), "w", encoding="utf-8") as ini:
        ini.write("[PythonPlugins]\ndeepstrata=true\nprocessing=true\n\n[qgis]\ncheckVersion=false\n")
    site = sorted(glob.glob(os.path.join(root, ".venv", "lib", "python3*", "site-packages")))
    qgis = shutil.which("qgis") or "/usr/bin/qgis"
    env = dict(os.environ, QGIS_PLUGINPATH=plugins, GDAL_PAM_ENABLED="NO", QT_QPA_PLATFORM="xcb",
               PYTHONPATH=os.pathsep.join([plugins, *site[:1]] + ([os.environ["PYTHONPATH"]]
                                                                  if os.environ.get("PYTHONPATH") else [])),
               DEEPSTRATA_SHOTS_ROOT=root, DEEPSTRATA_SHOTS_OUT=os.path.abspath(args.out),
               DEEPSTRATA_SHOTS_WORK=work,
               # QGIS's embedded Python finds its home from the first `python3` on PATH: make it QGIS's own
               PATH=os.pathsep.join([os.path.dirname(qgis), os.environ.get("PATH", "")]))
    env.pop("PYTHONHOME", None)
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", qgis,
               "--profiles-path", os.path.join(work, "profiles"), "--profile", "shots",
               "--nologo", "--noversioncheck", "--code", os.path.abspath(__file__)]
    log = os.path.join(work, "screenshots.log")
    process = subprocess.Popen(command, env=env, cwd=root, start_new_session=True)
    started = time.monotonic()
    while process.poll() is None:
        waited = time.monotonic() - started
        if waited > WATCHDOG_S + STARTUP_S or (waited > STARTUP_S and not os.path.isfile(log)):
            print(f"QGIS {'did not run this script' if not os.path.isfile(log) else 'hung'} after {waited:.0f} s; "
                  "ending it.", file=sys.stderr)
            os.killpg(process.pid, signal.SIGKILL)  # the session this launcher started: xvfb-run, Xvfb, QGIS
            process.wait()
            break
        time.sleep(1)
    code = process.returncode
    if os.path.isfile(log):
        with open(log, encoding="utf-8") as text:
            print(text.read())
    if args.keep:
        print(f"Scratch folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


# ---------------------------------------------------------------------------------------------- inside QGIS
def inside_qgis() -> None:
    import shutil
    import threading
    import traceback

    import processing
    import qgis.utils
    from osgeo import gdal
    from qgis.core import (Qgis, QgsApplication, QgsContrastEnhancement, QgsLayerTree, QgsMultiBandColorRenderer,
                           QgsProcessingFeedback, QgsProject, QgsRasterLayer, QgsRectangle)
    from qgis.PyQt.QtCore import QPoint, QRect, Qt, QTimer
    from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTableView, QToolTip

    iface = qgis.utils.iface
    root = os.environ.get("DEEPSTRATA_SHOTS_ROOT") or os.path.dirname(
        os.path.realpath(sys.modules["deepstrata"].__file__))
    out = os.environ.get("DEEPSTRATA_SHOTS_OUT") or os.path.join(root, "docs", "images")
    work = os.environ.get("DEEPSTRATA_SHOTS_WORK") or "/tmp/ds-shots"
    os.makedirs(out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    log_file = open(os.path.join(work, "screenshots.log"), "a", encoding="utf-8")  # noqa: SIM115 (lives to exit)
    project = QgsProject.instance()
    window = iface.mainWindow()
    canvas = iface.mapCanvas()

    def log(message: str) -> None:
        log_file.write(message.rstrip() + "\n")
        log_file.flush()

    def on_message(message: str, tag: str, level) -> None:
        log(f"[message log {tag or '-'} {int(level)}] {message}")

    QgsApplication.messageLog().messageReceived.connect(on_message)

    def watchdog() -> None:
        log(f"Watchdog: still running after {WATCHDOG_S} s; ending QGIS.")
        os._exit(3)

    timer = threading.Timer(WATCHDOG_S, watchdog)
    timer.daemon = True
    timer.start()

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802 (QGIS API)
            log(f"  {info}")

        def pushWarning(self, warning):  # noqa: N802 (QGIS API)
            log(f"  WARNING {warning}")

        def reportError(self, error, fatalError=False):  # noqa: N802,N803 (QGIS API)
            log(f"  ERROR {error}")

        def pushConsoleInfo(self, info):  # noqa: N802 (QGIS API)
            log(f"  {info}")

    def layer(name: str) -> QgsRasterLayer | None:
        found = project.mapLayersByName(name)
        if not found:
            log(f"No layer named '{name}'; the project has: {[item.name() for item in project.mapLayers().values()]}")
        return found[0] if found else None

    def save(pixmap, name: str) -> None:
        path = os.path.join(out, name)  # an absolute `name` stays as it is
        pixmap.save(path, "PNG")
        log(f"Saved {path} ({pixmap.width()} x {pixmap.height()})")

    def toolbar():
        plugin = qgis.utils.plugins.get("deepstrata")
        if plugin is None or plugin.toolbar is None:
            raise RuntimeError(f"DeepStrata is not loaded (plugins: {sorted(qgis.utils.plugins)})")
        return plugin.toolbar

    # ------------------------------------------------------------------ steps (each returns ms to wait)
    def setup_window() -> int:
        window.showNormal()
        window.setGeometry(0, 0, *SIZE)
        for dock in window.findChildren(QDockWidget):
            dock.setVisible(dock.objectName() == "Layers")
        layers_dock = window.findChild(QDockWidget, "Layers")
        window.resizeDocks([layers_dock], [480], Qt.Orientation.Horizontal)
        iface.messageBar().clearWidgets()
        return 500

    def natural_colour(scene: QgsRasterLayer) -> QgsMultiBandColorRenderer:
        """Bands 3, 2, 1 (B4, B3, B2) as red, green, blue, each stretched over its 2..80 % cumulative range: the
        sample is about a fifth cloud and haze, which saturates instead of darkening the ground."""
        provider = scene.dataProvider()
        renderer = QgsMultiBandColorRenderer(provider, 3, 2, 1)
        for band, apply in ((3, renderer.setRedContrastEnhancement), (2, renderer.setGreenContrastEnhancement),
                            (1, renderer.setBlueContrastEnhancement)):
            low, high = provider.cumulativeCut(band, 0.02, 0.80)
            stretch = QgsContrastEnhancement(provider.dataType(band))
            stretch.setContrastEnhancementAlgorithm(
                QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum)
            stretch.setMinimumValue(low)
            stretch.setMaximumValue(high)
            apply(stretch)
        return renderer

    def load_inputs() -> int:
        samples = os.path.join(root, "resources", "samples")
        for name in (DEM + ".tif", SCENE + ".tif", MTL):
            shutil.copy(os.path.join(samples, name), work)
        hillshade = os.path.join(work, DEM + "_hillshade.tif")
        gdal.DEMProcessing(hillshade, os.path.join(work, DEM + ".tif"), "hillshade", zFactor=2, computeEdges=True)
        scene = QgsRasterLayer(os.path.join(work, SCENE + ".tif"), SCENE)
        scene.setRenderer(natural_colour(scene))
        shade = QgsRasterLayer(hillshade, "Hillshade")
        dem = QgsRasterLayer(os.path.join(work, DEM + ".tif"), DEM)
        for item in (scene, shade, dem):
            if not item.isValid():
                raise RuntimeError(f"Cannot open {item.source()}")
            project.addMapLayer(item)
        root_node = project.layerTreeRoot()
        for node in root_node.findLayers():
            node.setExpanded(False)
        root_node.findLayer(dem.id()).setItemVisibilityChecked(False)  # the hillshade shows the terrain
        iface.setActiveLayer(dem)
        show_extent(dem)
        return 1000

    def show_extent(item) -> None:
        project.setCrs(item.crs())
        canvas.setDestinationCrs(item.crs())
        canvas.setExtent(item.extent())
        canvas.refresh()

    def toolbar_rect(bar) -> QRect:
        """The toolbar's buttons and device label (the toolbar itself spans its whole row), in window pixels."""
        widget = bar.toolbar
        label = widget.widgetForAction(bar.device_label_action)
        rect = widget.geometry()
        rect.setRight(widget.mapTo(window, label.geometry().bottomRight()).x() + 12)
        return rect.adjusted(-4, -4, 0, 4)

    def toolbar_shots() -> int:
        bar = toolbar()
        bar.update_device()
        bar.refresh()
        QApplication.processEvents()
        save(window.grab(toolbar_rect(bar)), "toolbar_workflows.png")
        for name, action in bar.workflow_actions.items():
            log(f"Toolbar {name}: enabled={action.isEnabled()} tooltip={action.toolTip()!r}")
        log(f"Device label: {bar.device_label.text()!r}; tooltip {bar.device_label.toolTip()!r}")
        button = bar.toolbar.widgetForAction(next(iter(bar.workflow_actions.values())))
        QToolTip.showText(button.mapToGlobal(QPoint(button.width() // 2, button.height() + 6)),
                          button.defaultAction().toolTip(), button)
        return 800

    def tooltip_shot() -> int:
        rect = toolbar_rect(toolbar())
        area = QRect(window.mapToGlobal(rect.topLeft()), rect.size())
        tips = [w for w in QApplication.topLevelWidgets() if w.inherits("QTipLabel") and w.isVisible()]
        for tip in tips:
            area = area.united(tip.geometry())
        area = area.adjusted(0, 0, 6, 6)
        if tips:
            screen = QApplication.primaryScreen()
            save(screen.grabWindow(0, area.x(), area.y(), area.width(), area.height()), "toolbar_tooltip.png")
        else:
            log("No tooltip window to grab.")
        QToolTip.hideText()
        return 200

    dialog = []

    def open_dialog() -> int:
        dlg = processing.createAlgorithmDialog("deepstrata:classifylandforms", {"INPUT": layer(DEM)})
        dlg.show()  # it sizes itself to its parameters once shown
        dialog.append(dlg)
        return 1500

    def open_model_info() -> int:
        """The toolbar's Model info… as a user clicks it: the bundled model's card."""
        dialog.append(qgis.utils.plugins["deepstrata"].toolbar.model_info())
        return 1500

    def grab_model_info() -> int:
        dlg = dialog.pop()
        save(dlg.grab(), "model_info.png")
        dlg.close()
        return 300

    def grab_dialog() -> int:
        dlg = dialog.pop()
        save(dlg.grab(), "dialog_classify_landforms.png")
        dlg.close()
        return 300

    def run(alg_id: str, parameters: dict) -> None:
        iface.setActiveLayer(parameters["INPUT"])  # as when the toolbar runs it: outputs go above the input
        log(f"Running {alg_id} {parameters}")
        try:
            results = processing.runAndLoadResults(alg_id, parameters, feedback=Feedback())
            log(f"Results of {alg_id}: {results}")
        except Exception as error:  # noqa: BLE001 (report it and go on with the other shots)
            log(f"FAILED {alg_id}: {error!r}")

    def run_landforms() -> int:
        run("deepstrata:classifylandforms", {"INPUT": layer(DEM), "OUTPUT": "TEMPORARY_OUTPUT",
                                             "STATISTICS": "TEMPORARY_OUTPUT"})
        return 300

    def run_geology() -> int:
        run("deepstrata:mapgeology", {"INPUT": layer(SCENE), "OUTPUT": "TEMPORARY_OUTPUT",
                                      "STATISTICS": "TEMPORARY_OUTPUT"})
        return 300

    def run_anomalies() -> int:
        run("deepstrata:detectanomalies", {"INPUT": layer(DEM), "OUTPUT": "TEMPORARY_OUTPUT",
                                           "OUTPUT_MASK": "TEMPORARY_OUTPUT", "OUTPUT_POLYGONS": "TEMPORARY_OUTPUT",
                                           "MIN_AREA": 1800})
        return 300

    def show(visible: list[str], expanded: list[str], extent: str, zoom: QgsRectangle | None = None) -> int:
        """Only `visible` checked, only `expanded` unfolded, the first of them current, zoomed to `extent`."""
        wanted = [layer(name) for name in visible + expanded]
        view = iface.layerTreeView()
        for node in project.layerTreeRoot().findLayers():
            node.setItemVisibilityChecked(node.name() in visible)
            node.setExpanded(node.name() in expanded)
            view.setExpanded(view.node2index(node), node.name() in expanded)  # the view can disagree
        if wanted[0] is not None:
            iface.setActiveLayer(wanted[0])
        if layer(extent) is not None:
            show_extent(layer(extent))
        if zoom is not None:
            canvas.setExtent(zoom)
            canvas.refresh()
        log("Layers: " + ", ".join(node.name() for node in project.layerTreeRoot().findLayers()))
        iface.layerTreeView().scrollToTop()
        iface.messageBar().clearWidgets()
        return 1500

    def grab_window(name: str) -> int:
        save(window.grab(), name)
        return 100

    def open_statistics() -> int:
        table = layer("Landforms statistics")
        if table is not None:
            dlg = iface.showAttributeTable(table)
            dlg.resize(720, 400)
            for view in dlg.findChildren(QTableView):
                view.resizeColumnsToContents()
            dialog.append(dlg)
        return 1000

    def remove(prefix: str) -> int:
        """Take a workflow's outputs (and the group they loaded into) out of the project, so the next shot shows
        only its own."""
        project.removeMapLayers([item.id() for item in project.mapLayers().values()
                                 if item.name().startswith(prefix)])
        root = project.layerTreeRoot()
        for group in [g for g in root.children() if QgsLayerTree.isGroup(g) and g.name().startswith(prefix)]:
            root.removeChildNode(group)
        return 100

    def anomaly_zoom() -> QgsRectangle | None:
        """A third of the DEM around the patch with the highest peak score, where patches are big enough to see."""
        patches, dem = layer("Anomalies"), layer(DEM)
        if patches is None or dem is None or not patches.featureCount():
            return None
        top = max(patches.getFeatures(), key=lambda feature: feature["peak_score"] or 0)
        centre, full = top.geometry().boundingBox().center(), dem.extent()
        width, height = full.width() / 3, full.height() / 3
        x = min(max(centre.x(), full.xMinimum() + width / 2), full.xMaximum() - width / 2)
        y = min(max(centre.y(), full.yMinimum() + height / 2), full.yMaximum() - height / 2)
        return QgsRectangle(x - width / 2, y - height / 2, x + width / 2, y + height / 2)

    def grab_statistics() -> int:
        if dialog:
            dlg = dialog.pop()
            save(dlg.grab(), "statistics_table.png")
            dlg.close()
        return 100

    def finish() -> None:
        log("Done; quitting QGIS.")
        timer.cancel()
        project.removeAllMapLayers()
        project.setDirty(False)
        QTimer.singleShot(5000, lambda: QgsApplication.exit(0))
        window.close()

    # inside each run's group ("Landforms - <DEM>") the layers' names leave the input out
    landforms, geology = "Landforms", "Geology"
    score, mask, patches = "Anomaly score", "Anomaly mask", "Anomalies"
    debug = os.path.join(work, "inputs_{}.png")  # what the results are read against; not for the docs
    steps = [setup_window, load_inputs, toolbar_shots, tooltip_shot, open_dialog, grab_dialog, open_model_info,
             grab_model_info,
             lambda: show([SCENE], [], SCENE), lambda: save(window.grab(), debug.format("scene")),
             lambda: show(["Hillshade"], [], DEM), lambda: save(window.grab(), debug.format("hillshade")),
             run_landforms, lambda: show([landforms, "Hillshade"], [landforms], DEM),
             lambda: grab_window("result_landforms.png"), open_statistics, grab_statistics, lambda: remove("Landforms"),
             run_geology, lambda: show([geology, SCENE], [geology], SCENE),
             lambda: grab_window("result_geology.png"), lambda: remove("Geology"),
             run_anomalies, lambda: show([patches, score, "Hillshade"], [score, mask], DEM, anomaly_zoom()),
             lambda: grab_window("result_anomalies.png")]

    def next_step() -> None:
        if not steps:
            finish()
            return
        step = steps.pop(0)
        try:
            wait = step() or 0
        except Exception:  # noqa: BLE001 (log it, take the other shots)
            log("Step failed:\n" + traceback.format_exc())
            wait = 0
        QTimer.singleShot(wait, when_drawn)

    def when_drawn() -> None:
        if canvas.isDrawing():
            QTimer.singleShot(200, when_drawn)
        else:
            QTimer.singleShot(200, next_step)

    log(f"QGIS {Qgis.QGIS_VERSION}; writing to {out}")
    QTimer.singleShot(3000, next_step)  # after QGIS has finished starting (plugins, device probe)


if "qgis.utils" in sys.modules:  # QGIS runs this file with --code
    inside_qgis()
elif __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
