"""No Qt5-only or deprecated name in the plugin's shipped Python files (what the plugin zip holds).

PyQt6 has no unscoped enum members (`Qt.AlignLeft`), no `QVariant.Int` and no `exec_()`; QGIS 3.36-3.40 moved
the Processing and geometry enums to `Qgis` (`Qgis.ProcessingSourceType.Vector`) and keeps the old class-scoped
names only as deprecated aliases. The scan reads the source (no QGIS needed). compat.py is the one module allowed
to name QGIS 3.22's equivalents, as fallbacks; tests/core/test_qt6.py imports the modules under real PyQt6.
"""
from __future__ import annotations

import ast
import re
import textwrap

from ds_testing.shipped import REPO, shipped_files

COMPAT = "compat.py"
QT_MODULES = re.compile(r"^(qgis\.PyQt|PyQt[56]|PySide\d?)(\.|$)")
QGIS_MODULES = re.compile(r"^qgis\.(core|gui|analysis|_core|_gui)$")

# (regular expression matched against a whole dotted name, replacement)
FORBIDDEN_ATTRIBUTES = (
    (r"QVariant\.[A-Z]\w*", "QMetaType.Type.<Member> (fields: compat.field(name, compat.FieldType.<Member>))"),
    (r".+\.exec_", "exec()"),
    (r".+\.print_", "print()"),
    (r"Qt\.MidButton", "Qt.MouseButton.MiddleButton"),
    (r"Q(Gui)?Application\.desktop", "QGuiApplication.primaryScreen() / screens() (QScreen)"),
    (r"Qgis\.(Info|Warning|Critical|Success|NoLevel)", "Qgis.MessageLevel.<Member>"),
    (r"QgsProcessing\.(SourceType|Type[A-Z]\w*)", "Qgis.ProcessingSourceType.<Member> (compat.ProcessingSourceType)"),
    (r"QgsProcessingParameterDefinition\.Flags?(\.\w+)?|QgsProcessingParameterDefinition\.Flag[A-Z]\w*",
     "Qgis.ProcessingParameterFlag.<Member> (compat.ProcessingParameterFlag)"),
    (r"QgsProcessingParameterNumber\.(Type|Integer|Double)",
     "Qgis.ProcessingNumberParameterType.<Member> (compat.ProcessingNumberParameterType)"),
    (r"QgsProcessingParameterFile\.(Behavior|File|Folder)",
     "Qgis.ProcessingFileParameterBehavior.<Member> (compat.ProcessingFileParameterBehavior)"),
    (r"QgsProcessingAlgorithm\.(Flags?|Flag[A-Z]\w*)", "Qgis.ProcessingAlgorithmFlag.<Member>"),
    (r"QgsProcessingFeatureSource\.(Flags?|Flag[A-Z]\w*)", "Qgis.ProcessingFeatureSourceFlag.<Member>"),
    (r"QgsProcessingParameterField\.(DataType|Any|Numeric|String|DateTime|Binary|Boolean)",
     "Qgis.ProcessingFieldParameterDataType.<Member>"),
    (r"QgsProcessingParameterDateTime\.(Type|Date|Time|DateTime)", "Qgis.ProcessingDateTimeParameterDataType.<Member>"),
    (r"QgsWkbTypes\.[A-Z]\w*", "Qgis.WkbType.<Member> / Qgis.GeometryType.<Member> (compat.WkbType)"),
    (r"QgsMapLayer\.(LayerType|\w+Layer)", "Qgis.LayerType.<Member>"),
    (r"QgsUnitTypes\.[A-Z]\w*", "Qgis.DistanceUnit / Qgis.AreaUnit / Qgis.RenderUnit.<Member>"),
    (r"QgsRasterBandStats\.(Stats|All|Min|Max|Range|Sum|Mean|StdDev|SumOfSquares)", "Qgis.RasterBandStatistic.<Member>"),
    (r"QgsFeatureRequest\.(Flags?|NoGeometry|SubsetOfAttributes|ExactIntersect|NoFlags)",
     "Qgis.FeatureRequestFlag.<Member>"),
)
FORBIDDEN_IMPORTS = {
    "QRegExp": "QRegularExpression",
    "QRegExpValidator": "QRegularExpressionValidator (QtGui)",
    "QDesktopWidget": "QGuiApplication.primaryScreen() / screens() (QScreen)",
    "QMatrix": "QTransform",
    "QSound": "QSoundEffect (QtMultimedia)",
    "QGLWidget": "QOpenGLWidget",
    "QTextCodec": "str.encode() / bytes.decode()",
    "QStringRef": "str",
    "QLinkedList": "a Python list",
    "QMouseEventTransition": "an event filter",
}
MOVED_TO_QTGUI = {"QAction", "QActionGroup", "QShortcut", "QUndoCommand", "QUndoStack", "QFileSystemModel"}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def findings(source: str, name: str = "<source>", exempt: bool = False) -> list[str]:
    """'file:line: name -> replacement' for each Qt5-only or deprecated name in `source`."""
    tree = ast.parse(source)
    found: dict[tuple[int, str], str] = {}
    imported: dict[str, str] = {}  # local name -> the module it came from
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def report(node: ast.AST, what: str, use: str) -> None:
        found.setdefault((node.lineno, what), f"{name}:{node.lineno}: {what} -> {use}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if re.match(r"^(PyQt[56]|PySide\d?|sip)(\.|$)", alias.name) and not exempt:
                    report(node, f"import {alias.name}", "from qgis.PyQt import ... (QGIS picks Qt 5 or 6)")
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            for alias in node.names:
                imported[alias.asname or alias.name] = module
            if exempt:
                continue
            if re.match(r"^(PyQt[56]|PySide\d?|sip)(\.|$)", module):
                report(node, f"from {module} import", "from qgis.PyQt... import (QGIS picks Qt 5 or 6)")
            if re.match(r"^qgis\.PyQt\.QtWebKit", module):
                report(node, module, "nothing: Qt 6 has no QtWebKit (QtWebEngine, or open a browser)")
            for alias in node.names:
                if QT_MODULES.match(module) and alias.name in FORBIDDEN_IMPORTS:
                    report(node, alias.name, FORBIDDEN_IMPORTS[alias.name])
                if module.endswith("QtWidgets") and alias.name in MOVED_TO_QTGUI:
                    report(node, f"{alias.name} from QtWidgets", f"{alias.name} from QtGui (compat.QAction)")
    if exempt:
        return [found[key] for key in sorted(found)]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        dotted = _dotted(node)
        if dotted is None:
            continue
        for pattern, use in FORBIDDEN_ATTRIBUTES:
            if re.fullmatch(pattern, dotted):
                report(node, dotted, use)
        if node.attr in FORBIDDEN_IMPORTS:  # QtCore.QRegExp
            report(node, dotted, FORBIDDEN_IMPORTS[node.attr])
        parent = parents.get(node)
        root = dotted.split(".")[0]
        unscoped = (dotted.count(".") == 1 and re.match(r"^[A-Z]", node.attr) and not node.attr.isupper()
                    and not (isinstance(parent, ast.Attribute) and parent.value is node)
                    and not (isinstance(parent, ast.Call) and parent.func is node))
        source_module = imported.get(root, "")
        if unscoped and (QT_MODULES.match(source_module) or QGIS_MODULES.match(source_module)):
            report(node, dotted, f"the scoped name {root}.<Enum>.{node.attr} (e.g. Qt.AlignmentFlag.AlignLeft)")
    return [found[key] for key in sorted(found)]


def test_no_qt5_only_or_deprecated_name_in_the_shipped_files() -> None:
    files = shipped_files()
    assert REPO / "plugin.py" in files and REPO / "processing_provider" / "provider.py" in files
    assert not any("tests" in p.relative_to(REPO).parts for p in files)
    problems = []
    for path in files:
        relative = path.relative_to(REPO).as_posix()
        problems += findings(path.read_text(encoding="utf-8"), relative, exempt=relative == COMPAT)
    assert problems == [], ("Qt5-only or deprecated names (write the replacement; for QGIS 3.22 fallbacks, add "
                            "the name to compat.py):\n" + "\n".join(problems))


def test_the_scan_finds_each_kind_of_forbidden_name() -> None:
    source = textwrap.dedent("""
        import sip
        from PyQt5.QtCore import QVariant
        from qgis.core import Qgis, QgsProcessing, QgsProcessingParameterDefinition, QgsWkbTypes, QgsFeatureSink
        from qgis.PyQt.QtCore import QRegExp, Qt, QMetaType
        from qgis.PyQt.QtWidgets import QAction, QDesktopWidget, QSizePolicy
        kind = QVariant.Int
        flag = QgsProcessingParameterDefinition.Flag.FlagAdvanced
        other = QgsProcessingParameterDefinition.FlagAdvanced
        source = QgsProcessing.TypeVectorPolygon
        geometry = QgsWkbTypes.Type.NoGeometry
        level = Qgis.Critical
        align = Qt.AlignLeft
        policy = QSizePolicy.Expanding
        insert = QgsFeatureSink.FastInsert
        dialog.exec_()
        button = Qt.MidButton
        from qgis.PyQt import QtCore
        pattern = QtCore.QRegExp("x")
    """)
    found = "\n".join(findings(source))
    for name in ("import sip", "from PyQt5.QtCore import", "QVariant.Int", "QgsProcessingParameterDefinition.Flag",
                 "QgsProcessingParameterDefinition.FlagAdvanced", "QgsProcessing.TypeVectorPolygon",
                 "QgsWkbTypes.Type", "Qgis.Critical", "Qt.AlignLeft", "QSizePolicy.Expanding",
                 "QgsFeatureSink.FastInsert", "dialog.exec_", "Qt.MidButton", "QRegExp", "QDesktopWidget",
                 "QAction from QtWidgets", "QtCore.QRegExp"):
        assert f": {name} -> " in found, (name, found)
    assert "Qt.MidButton -> Qt.MouseButton.MiddleButton" in found


def test_the_current_names_pass_the_scan() -> None:
    source = textwrap.dedent("""
        from qgis.core import Qgis, QgsFeatureSink, QgsProcessingContext, QgsProcessingUtils
        from qgis.PyQt.QtCore import QMetaType, Qt, QTimer
        from qgis.PyQt.QtGui import QAction
        from qgis.PyQt.QtWidgets import QSizePolicy
        ok = (Qt.AlignmentFlag.AlignLeft, QMetaType.Type.Int, Qgis.MessageLevel.Critical, Qgis.QGIS_VERSION_INT,
              QgsFeatureSink.Flag.FastInsert, QSizePolicy.Policy.Expanding, dialog.exec(), QAction("x"),
              QgsProcessingUtils.LayerHint.Vector, QTimer.singleShot, Qgis.ProcessingSourceType.VectorPolygon)
        details = QgsProcessingContext.LayerDetails("name", None)
    """)
    assert findings(source) == []
