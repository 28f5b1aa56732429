"""The QGIS and Qt names that differ between QGIS 3.22 (Qt 5) and QGIS 3.40 / Qt 6 builds, resolved in one place.

The plugin writes the current names: the scoped `Qgis.*` enums (QGIS 3.30-3.36), QMetaType field types (QGIS
3.38) and QAction from QtGui (Qt 6). Where the running QGIS has them, the names below *are* those objects
(`ProcessingSourceType is Qgis.ProcessingSourceType`); on an older QGIS they are stand-ins with the same member
names holding that version's values. This is the only module allowed to name the old ones
(tests/core/test_qt6_names.py); drop each fallback when qgisMinimumVersion passes the version in its comment.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from qgis.core import Qgis, QgsField
from qgis.PyQt.QtCore import QMetaType

try:  # Qt 6, and the Qt 5 shim of recent QGIS
    from qgis.PyQt.QtGui import QAction
except ImportError:  # QGIS 3.22 on Qt 5
    from qgis.PyQt.QtWidgets import QAction  # type: ignore[no-redef]

__all__ = ["FieldType", "ProcessingFileParameterBehavior", "ProcessingNumberParameterType", "ProcessingParameterFlag",
           "ProcessingSourceType", "QAction", "WkbType", "field"]

FieldType = QMetaType.Type  # FieldType.Int, .QString, .LongLong, .Double, ...
FIELDS_TAKE_QMETATYPE = Qgis.QGIS_VERSION_INT >= 33800


def field(name: str, kind: Any) -> QgsField:
    """A QgsField of a QMetaType type (`FieldType.Int`); on QGIS < 3.38, whose QgsField takes a QVariant.Type, the
    same type by number (QVariant's and QMetaType's numbers agree for the basic types)."""
    if FIELDS_TAKE_QMETATYPE:
        return QgsField(name, kind)
    from qgis.PyQt.QtCore import QVariant

    return QgsField(name, QVariant.Type(int(kind)))


def _scoped(enum: str, fallback: "dict[str, str]", owner: str) -> Any:
    """Qgis.<enum> when this QGIS has it, else a namespace whose members are the old class-scoped ones
    (`owner`.<old name>), looked up only on such a QGIS."""
    scoped = getattr(Qgis, enum, None)
    if scoped is not None:
        return scoped
    import qgis.core

    cls = getattr(qgis.core, owner)
    return SimpleNamespace(**{new: getattr(cls, old) for new, old in fallback.items()})


# Qgis.* since QGIS 3.36; before, members of the classes named last.
ProcessingParameterFlag = _scoped("ProcessingParameterFlag", {"Advanced": "FlagAdvanced", "Optional": "FlagOptional",
                                                              "Hidden": "FlagHidden"},
                                  "QgsProcessingParameterDefinition")
ProcessingSourceType = _scoped("ProcessingSourceType", {
    "MapLayer": "TypeMapLayer", "VectorAnyGeometry": "TypeVectorAnyGeometry", "VectorPoint": "TypeVectorPoint",
    "VectorLine": "TypeVectorLine", "VectorPolygon": "TypeVectorPolygon", "Raster": "TypeRaster", "File": "TypeFile",
    "Vector": "TypeVector"}, "QgsProcessing")
ProcessingNumberParameterType = _scoped("ProcessingNumberParameterType", {"Integer": "Integer", "Double": "Double"},
                                        "QgsProcessingParameterNumber")
ProcessingFileParameterBehavior = _scoped("ProcessingFileParameterBehavior", {"File": "File", "Folder": "Folder"},
                                          "QgsProcessingParameterFile")
# Qgis.WkbType since QGIS 3.30.
WkbType = _scoped("WkbType", {"NoGeometry": "NoGeometry", "Unknown": "Unknown", "Point": "Point",
                              "Polygon": "Polygon", "MultiPolygon": "MultiPolygon"}, "QgsWkbTypes")
