"""Run inside the real QGIS desktop (qgis --code): the installer's one-click path in a fresh profile.

Without onnxruntime, the plugin's message bar offers 'Install...'; this clicks it, screenshots the dialog, clicks
Install, waits for pip, screenshots the result, then runs Classify landforms on the bundled DEM and writes
what happened to $DS_CHECK_OUT/result.txt. Driven by tools/gui_install_check.sh under Xvfb.
"""
import os
import sys
import time
import traceback

from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface, plugins

OUT = os.environ["DS_CHECK_OUT"]
IMAGES = os.environ.get("DS_CHECK_IMAGES", OUT)
lines = []


def wait(seconds: float, until=lambda: False) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        QApplication.processEvents()
        time.sleep(0.05)


def main() -> None:
    wait(3)
    lines.append(f"onnxruntime importable at start: {'onnxruntime' in sys.modules and sys.modules['onnxruntime'] is not None}")
    plugin = plugins["deepstrata"]
    offer = plugin.install_offer
    lines.append(f"offer: {offer is not None}")
    iface.mainWindow().resize(1280, 800)
    wait(1)
    iface.mainWindow().grab().save(os.path.join(IMAGES, "installer_message_bar.png"))
    offer.button.click()
    dialog = offer.dialog
    wait(2)
    dialog.grab().save(os.path.join(IMAGES, "installer_dialog.png"))
    lines.append("plan:\n" + dialog.summary.text())
    dialog.install_button.click()
    wait(900, lambda: dialog.worker is None)
    wait(1)
    dialog.grab().save(os.path.join(IMAGES, "installer_done.png"))
    lines.append("after:\n" + dialog.summary.text())
    lines.append("log tail:\n" + "\n".join(dialog.log.toPlainText().splitlines()[-5:]))
    dialog.cancel_button.click()  # now labelled Close
    wait(1)
    lines.append(f"offer removed: {plugin.install_offer.item is None or not plugin.install_offer.item.isVisible()}")
    lines.append(f"toolbar device label: {plugin.toolbar.device_label.text()}")
    import processing

    result = processing.run("deepstrata:classifylandforms", {"INPUT": os.environ["DS_DEM"],
                                                             "OUTPUT": os.path.join(OUT, "landforms.tif")})
    lines.append(f"workflow outputs: {sorted(result)}")
    lines.append(f"landforms.tif exists: {os.path.isfile(os.path.join(OUT, 'landforms.tif'))}")
    import onnxruntime

    lines.append(f"onnxruntime from: {onnxruntime.__file__} {onnxruntime.__version__}")


try:
    main()
    lines.append("CHECK OK")
except Exception:  # noqa: BLE001 (report whatever happened, then quit)
    lines.append("CHECK FAILED\n" + traceback.format_exc())
finally:
    with open(os.path.join(OUT, "result.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    # --code runs before QGIS's event loop starts, where exit() does nothing: quit once the loop runs, and
    # leave for sure (no "save the project?" question) if QGIS is still there a few seconds later
    QTimer.singleShot(0, lambda: QApplication.instance().exit(0))
    QTimer.singleShot(5000, lambda: os._exit(0))
