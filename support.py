"""What the Processing provider and the toolbar share: translation, icons, the onnxruntime check.

Its own module, so that neither ui/ nor processing_provider/ imports the other for these.
"""
from __future__ import annotations

import platform
import sys
from functools import lru_cache
from pathlib import Path

from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from .dependencies import ONNXRUNTIME, add_to_path, manual_plan, target_folder
from .dependencies.pip import manual_command
from .dependencies.requirements import check

PLUGIN_DIR = Path(__file__).resolve().parent
ICONS_DIR = PLUGIN_DIR / "resources" / "icons"

INSTALL_HINT = (
    "onnxruntime is not installed in the Python that QGIS uses, and DeepStrata needs it to run models. "
    "Install it with DeepStrata's installer: the 'Install...' button in the message bar, or Processing Toolbox > "
    "DeepStrata > Check and install dependencies (headless: 'qgis_process run deepstrata:dependencies -- "
    "INSTALL=true')."
)


def tr(text: str) -> str:
    return QCoreApplication.translate("DeepStrata", text)


def icon(name: str) -> QIcon:
    """An icon from resources/icons by file name (plain SVG, no Qt resource file)."""
    return QIcon(str(ICONS_DIR / name))


def profile_dir() -> str:
    """The active QGIS profile's folder (qgis_process uses the default profile's)."""
    from qgis.core import QgsApplication

    return QgsApplication.qgisSettingsDirPath().rstrip("/\\")


def dependencies_target() -> str:
    """The private folder DeepStrata installs its packages into: <profile>/python/deepstrata-deps/py3.X."""
    return target_folder(profile_dir(), (sys.version_info[0], sys.version_info[1]), platform.system())


def add_dependencies_to_path() -> bool:
    """Append the private folder to sys.path (after QGIS's own paths); True when added now."""
    return add_to_path(dependencies_target())


@lru_cache(maxsize=1)
def manual_install_command() -> str:
    """This platform's command to install onnxruntime by hand into the private folder (numpy kept as loaded)."""
    return manual_command(manual_plan(profile_dir()))


def onnxruntime_problem() -> str | None:
    """None when a recent enough onnxruntime imports; otherwise what is wrong and how to install it."""
    status = check(ONNXRUNTIME)
    if status.ok:
        return None
    manual = f"Or by hand: {manual_install_command()}\nthen restart QGIS."
    if status.state == "too old":
        return (f"onnxruntime {status.version} is too old: DeepStrata needs {ONNXRUNTIME.minimum} or later. "
                + INSTALL_HINT.split(". ", 1)[1] + f" {manual}")
    return f"{INSTALL_HINT} {manual} ({status.detail})"
