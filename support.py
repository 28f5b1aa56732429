"""What the Processing provider and the toolbar share: translation, icons, the bundled models, the onnxruntime
check, dialogs sized to their content.

Its own module, so that neither ui/ nor processing_provider/ imports the other for these.
"""
from __future__ import annotations

import platform
import sys
from functools import lru_cache
from pathlib import Path

from qgis.PyQt.QtCore import QCoreApplication, QSize
from qgis.PyQt.QtGui import QGuiApplication, QIcon
from qgis.PyQt.QtWidgets import QAbstractScrollArea, QScrollArea, QTextEdit, QWidget

from .dependencies import ONNXRUNTIME, add_to_path, manual_plan, target_folder
from .dependencies.pip import manual_command
from .dependencies.requirements import check

PLUGIN_DIR = Path(__file__).resolve().parent
ICONS_DIR = PLUGIN_DIR / "resources" / "icons"
MODELS_DIR = PLUGIN_DIR / "resources" / "models"
# The model Run model and Model info use when none is given, and the name its card begins with (a test checks
# they agree): the dialogs name it instead of showing a path.
DEFAULT_MODEL = "landforms_geomorphon.onnx"
DEFAULT_MODEL_NAME = "Landforms from DEM"
BUNDLED_DEFAULT = "deepstrata_bundled_default"  # a MODEL parameter's metadata: the bundled file its empty value runs

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


def bundled_model(name: str) -> str | None:
    """resources/models/<name> when it ships with the plugin."""
    path = MODELS_DIR / name
    return str(path) if path.is_file() else None


def default_model() -> str | None:
    """The bundled landform model; failing that the first bundled model (resources/models/*.onnx, by name)."""
    if (MODELS_DIR / DEFAULT_MODEL).is_file():
        return str(MODELS_DIR / DEFAULT_MODEL)
    models = sorted(MODELS_DIR.glob("*.onnx")) if MODELS_DIR.is_dir() else []
    return str(models[0]) if models else None


def model_or_default(value: str | None) -> str | None:
    """The model file a MODEL value means: empty, the bundled default; the path a bundled model has in another
    installation (a .model3 or script saved on another machine or profile, where dialogs once filled it in), the
    same model here; any other path as given."""
    if not value:
        return default_model()
    parts = Path(value.replace("\\", "/")).parts
    if not Path(value).exists() and parts[-4:-1] == ("deepstrata", "resources", "models"):
        return bundled_model(parts[-1]) or value
    return value


FIT_CONTENT = "deepstrata_fit_content"  # a dynamic property: a text view whose whole text `fit_to_content` shows


def _room(widget: QWidget) -> QSize:
    """The largest size `widget` may take: its screen's free area (without the task bar), less its frame."""
    screen = getattr(widget, "screen", lambda: None)() or QGuiApplication.primaryScreen()
    frame = widget.frameGeometry().size() - widget.size()
    return screen.availableGeometry().size() - frame if screen is not None else QSize(16777215, 16777215)


def _wanted(area: QAbstractScrollArea) -> QSize | None:
    """What `area` needs to show its content without scrolling: its widget's size hint, or a marked text view's
    document at the view's width; None for other areas (logs, help text), which keep their size."""
    if isinstance(area, QScrollArea) and area.widget() is not None:
        return area.widget().sizeHint()
    if isinstance(area, QTextEdit) and area.property(FIT_CONTENT):
        document = area.document()
        document.setTextWidth(area.viewport().width())
        return QSize(area.viewport().width(), int(document.size().height()) + 2)
    return None


def fit_to_content(dialog: QWidget, rounds: int = 3) -> QSize:
    """Grow `dialog` until its scroll areas (and text views marked FIT_CONTENT) show their content without
    scrolling, within the screen's free area; call it once the dialog is shown. Returns the new size."""
    room = _room(dialog)
    for _ in range(rounds):
        grow = QSize(0, 0)
        for area in dialog.findChildren(QAbstractScrollArea):
            wanted = _wanted(area) if area.isVisibleTo(dialog) else None
            if wanted is not None:
                view = area.maximumViewportSize()
                grow = grow.expandedTo(QSize(wanted.width() - view.width(), wanted.height() - view.height()))
        size = QSize(dialog.width() + max(0, grow.width()), dialog.height() + max(0, grow.height())).boundedTo(room)
        if size == dialog.size():
            break
        dialog.resize(size)
        if dialog.layout() is not None:
            dialog.layout().activate()
        QCoreApplication.processEvents()
    return dialog.size()
