"""What the Processing provider and the toolbar share: translation, icons, the onnxruntime check.

Its own module, so that neither ui/ nor processing_provider/ imports the other for these.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = Path(__file__).resolve().parent
ICONS_DIR = PLUGIN_DIR / "resources" / "icons"

INSTALL_HINT = (
    "onnxruntime is not installed in the Python that QGIS uses, and DeepStrata needs it to run models. "
    "Install it with 'python3 -m pip install onnxruntime' (Windows: in the OSGeo4W Shell, "
    "'python -m pip install onnxruntime'; NVIDIA GPUs: 'onnxruntime-gpu'), then restart QGIS."
)


def tr(text: str) -> str:
    return QCoreApplication.translate("DeepStrata", text)


def icon(name: str) -> QIcon:
    """An icon from resources/icons by file name (plain SVG, no Qt resource file)."""
    return QIcon(str(ICONS_DIR / name))


def onnxruntime_problem() -> str | None:
    """None when onnxruntime imports; otherwise a message that says how to install it."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError as exc:
        return f"{INSTALL_HINT} ({exc})"
    return None
