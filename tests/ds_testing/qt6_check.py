"""The plugin under PyQt6, without a Qt 6 build of QGIS: run by tests/core/test_qt6.py in a fresh interpreter.

    python qt6_check.py SHIM_DIR PLUGINS_DIR  ->  prints one JSON line {"problems": [...], "checked": {...}}

SHIM_DIR receives a package `qgis` that goes first on sys.path: `qgis.PyQt.<Module>` re-exports the real PyQt6
module (as QGIS's Qt 6 build does), and `qgis.core` / `qgis.gui` are stand-ins whose every attribute is a class
that can be subclassed, called, or-ed and compared, reporting QGIS 4.0 (so compat.py takes its current-API path).
PyQt5 and sip cannot be imported, so every Qt name comes from PyQt6 and a Qt5-only name fails. Then:
- every shipped module imports (the provider, each algorithm, the toolbar, plugin.py, compat.py, ...);
- every name a shipped file reaches through a qgis.PyQt import (`Qt.AlignmentFlag.AlignLeft`,
  `QMetaType.Type.Int`, in any function) resolves in PyQt6 (fallback code in `except ImportError:` and
  compat.py, the module of QGIS 3.22 fallbacks, aside);
- the provider loads its algorithms, each builds its parameters (initAlgorithm) and answers name(), tags(), ...;
- the plugin starts and unloads with a toolbar of real PyQt6 widgets on a fake iface.
"""
from __future__ import annotations

import ast
import importlib
import importlib.abc
import json
import os
import sys
import traceback
from pathlib import Path

STUB = '''"""Stand-ins for QGIS classes (tests/ds_testing/qt6_check.py); the profile folder is a temporary one."""
import os


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        member = _Meta(name, (StandIn,), {})
        setattr(cls, name, member)
        return member

    def __or__(cls, other):
        return cls

    __ror__ = __and__ = __rand__ = __or__


class StandIn(metaclass=_Meta):
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return StandIn()

    def __call__(self, *args, **kwargs):
        return StandIn()

    def __or__(self, other):
        return self

    __ror__ = __and__ = __rand__ = __or__

    def __iter__(self):
        return iter(())


class Qgis(StandIn):
    QGIS_VERSION_INT = 40000
    QGIS_VERSION = "4.0.0-qt6-shim"


class QgsApplication(StandIn):
    @staticmethod
    def qgisSettingsDirPath():
        return os.environ["QT6_CHECK_PROFILE"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    member = _Meta(name, (StandIn,), {})
    globals()[name] = member
    return member
'''
QT_MODULES = ("QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtSvg", "QtSvgWidgets", "QtXml", "QtTest",
              "QtPrintSupport", "QtSql", "QtMultimedia", "QtQuick", "QtQuickWidgets", "QtWebEngineWidgets",
              "QtWebEngineCore", "QtPositioning", "QtSerialPort")
BLOCKED = ("PyQt5", "sip", "PySide2", "PySide6")
COMPAT = "compat.py"


class Blocker(importlib.abc.MetaPathFinder):
    """Qt 5 must not come in by the back door (the venv sees the system's PyQt5)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the plugin must reach Qt through qgis.PyQt")
        return None


def write_shim(root: Path) -> None:
    import PyQt6

    pyqt = root / "qgis" / "PyQt"
    pyqt.mkdir(parents=True)
    (root / "qgis" / "__init__.py").write_text('"""A Qt 6 QGIS, as far as the plugin can tell."""\n')
    (pyqt / "__init__.py").write_text("")
    available = {p.name.split(".")[0] for p in Path(PyQt6.__file__).parent.iterdir()}
    for module in QT_MODULES:
        if module in available:
            (pyqt / f"{module}.py").write_text(f"from PyQt6.{module} import *  # noqa: F403\n")
    (pyqt / "sip.py").write_text("from PyQt6.sip import *  # noqa: F403\n")
    for module in ("core", "gui", "analysis", "utils"):
        (root / "qgis" / f"{module}.py").write_text(STUB)
    # QGIS's own Processing plugin (its algorithm dialog, which processing_provider/dialog.py extends)
    gui = root / "processing" / "gui"
    gui.mkdir(parents=True)
    (root / "processing" / "__init__.py").write_text('"""QGIS\'s Processing plugin, as far as the plugin can tell."""\n')
    (gui / "__init__.py").write_text("")
    (gui / "AlgorithmDialog.py").write_text(STUB)


def fallback_lines(tree: ast.AST) -> set[int]:
    """Lines inside `except ImportError:` handlers: Qt 5 fallbacks that Qt 6 never runs."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def unresolved_qt_names(path: Path, relative: str) -> list[str]:
    """'file:line: name' for each qgis.PyQt name the file uses that PyQt6 lacks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = fallback_lines(tree)
    bound: dict[str, object] = {}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qgis.PyQt"):
            if node.lineno in skip:
                continue
            for alias in node.names:
                try:
                    module = importlib.import_module(node.module)
                    if node.module == "qgis.PyQt" and alias.name != "sip":
                        module = importlib.import_module(f"qgis.PyQt.{alias.name}")
                        bound[alias.asname or alias.name] = module
                        continue
                    bound[alias.asname or alias.name] = getattr(module, alias.name)
                except (ImportError, AttributeError):
                    problems.append(f"{relative}:{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or node.lineno in skip:
            continue
        chain = []
        inner: ast.AST = node
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        if not isinstance(inner, ast.Name) or inner.id not in bound:
            continue
        value = bound[inner.id]
        for attr in reversed(chain):
            try:
                value = getattr(value, attr)
            except AttributeError:
                problems.append(f"{relative}:{node.lineno}: {inner.id}.{'.'.join(reversed(chain))}")
                break
    return sorted(set(problems))


def exercise(problems: list[str], checked: dict[str, list[str]]) -> None:
    """Load the provider and its algorithms, start and unload the plugin with its toolbar."""
    from PyQt6.QtCore import QObject, pyqtSignal
    from PyQt6.QtWidgets import QApplication, QMainWindow

    app = QApplication.instance() or QApplication(["qt6_check"])

    class Iface(QObject):
        currentLayerChanged = pyqtSignal(object)

        def __init__(self) -> None:
            super().__init__()
            self.window = QMainWindow()

        def mainWindow(self):  # noqa: N802 (QGIS API)
            return self.window

        def addToolBar(self, title):  # noqa: N802 (QGIS API)
            return self.window.addToolBar(title)

        def addPluginToRasterMenu(self, menu, action):  # noqa: N802 (QGIS API)
            checked.setdefault("menu", []).append(action.objectName())

        def removePluginRasterMenu(self, menu, action):  # noqa: N802 (QGIS API)
            pass

        def activeLayer(self):  # noqa: N802 (QGIS API)
            return None

    def attempt(what: str, call) -> object:
        try:
            return call()
        except Exception:  # noqa: BLE001 (each failure is reported)
            problems.append(f"{what}: {traceback.format_exc(limit=-3).strip()}")
            return None

    provider_module = importlib.import_module("deepstrata.processing_provider.provider")
    provider = provider_module.DeepStrataProvider()
    attempt("provider.loadAlgorithms()", provider.loadAlgorithms)
    for what in ("id", "name", "longName", "icon", "svgIconPath", "warningMessage"):
        attempt(f"provider.{what}()", getattr(provider, what))
    for cls in provider_module.ALGORITHMS:
        algorithm = cls()
        before = len(problems)
        attempt(f"{cls.__name__}.initAlgorithm()", algorithm.initAlgorithm)
        if len(problems) == before:
            checked.setdefault("algorithms", []).append(cls.__name__)
        for what in ("name", "displayName", "group", "groupId", "shortHelpString", "tags", "icon", "createInstance",
                     "canExecute", "helpUrl"):
            if any(what in vars(k) for k in type(algorithm).__mro__ if k.__module__.startswith("deepstrata")):
                attempt(f"{cls.__name__}.{what}()", getattr(algorithm, what))
    compat = importlib.import_module("deepstrata.compat")
    attempt("compat.field()", lambda: compat.field("value", compat.FieldType.Int))

    plugin_module = importlib.import_module("deepstrata.plugin")
    iface = Iface()
    plugin = plugin_module.DeepStrataPlugin(iface)
    attempt("plugin.initGui()", plugin.initGui)
    toolbar = plugin.toolbar
    if toolbar is not None:
        attempt("toolbar.refresh()", toolbar.refresh)
        attempt("toolbar.update_device()", toolbar.update_device)
        checked["toolbar"] = [a.objectName() for a in toolbar.actions()]
    attempt("plugin.unload()", plugin.unload)
    app.processEvents()


def main() -> None:
    shim, plugins = Path(sys.argv[1]), Path(sys.argv[2])
    write_shim(shim)
    sys.path[:0] = [str(shim), str(plugins)]
    sys.meta_path.insert(0, Blocker())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT6_CHECK_PROFILE"] = str(shim / "profile")
    repo = plugins / "deepstrata"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ds_testing.shipped import REPO, module_name, shipped_files

    problems: list[str] = []
    checked: dict[str, list[str]] = {"modules": []}
    files = [p for p in shipped_files() if p.name != "__main__.py"]
    for path in files:
        name = module_name(path)
        try:
            importlib.import_module(name)
            checked["modules"].append(name)
        except Exception:  # noqa: BLE001 (each failure is reported)
            problems.append(f"import {name}: {traceback.format_exc(limit=-2).strip()}")
    for path in files:
        relative = path.relative_to(REPO).as_posix()
        if relative != COMPAT:
            problems += unresolved_qt_names(path, relative)
    try:
        exercise(problems, checked)
    except Exception:  # noqa: BLE001 (reported: e.g. the provider does not import)
        problems.append(f"loading the provider and the plugin: {traceback.format_exc(limit=-2).strip()}")
    import qgis

    checked["qgis"] = [str(Path(qgis.__file__).parent)]
    checked["qt"] = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("PyQt5", "PyQt6", "sip")})
    assert repo.resolve() == REPO.resolve(), (repo, REPO)
    print(json.dumps({"problems": problems, "checked": checked}))


if __name__ == "__main__":
    main()
