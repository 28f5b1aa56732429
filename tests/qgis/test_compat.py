"""compat.py on the QGIS that runs the tests: the same values as the old names on QGIS 3.22, the scoped Qgis
enums themselves on 3.36+, fields of the right type, and no deprecation warning from building the statistics
table's fields or any algorithm's parameters (QGIS 3.40 warns about QgsField(name, QVariant.Type))."""
from __future__ import annotations

import warnings

from qgis.core import Qgis, QgsFields, QgsProcessing, QgsProcessingParameterDefinition, QgsProcessingParameterNumber
from qgis.PyQt.QtCore import QMetaType

from deepstrata import compat
from deepstrata.processing_provider.class_outputs import STAT_FIELDS


def test_the_names_are_this_qgis_values() -> None:
    if hasattr(Qgis, "ProcessingSourceType"):  # QGIS >= 3.36
        assert compat.ProcessingSourceType is Qgis.ProcessingSourceType
        assert compat.ProcessingParameterFlag is Qgis.ProcessingParameterFlag
    else:  # the values QGIS 3.22 takes
        assert compat.ProcessingSourceType.VectorPolygon == QgsProcessing.TypeVectorPolygon
        assert compat.ProcessingSourceType.Vector == QgsProcessing.TypeVector
        assert compat.ProcessingParameterFlag.Advanced == QgsProcessingParameterDefinition.FlagAdvanced
        assert compat.ProcessingNumberParameterType.Double == QgsProcessingParameterNumber.Double
    parameter = QgsProcessingParameterNumber("N", "n", compat.ProcessingNumberParameterType.Integer)
    assert parameter.dataType() == compat.ProcessingNumberParameterType.Integer


def test_fields_have_the_asked_types_and_no_deprecation_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fields = QgsFields()
        for name, kind in STAT_FIELDS:
            fields.append(compat.field(name, kind))
    assert [w for w in caught if issubclass(w.category, DeprecationWarning)] == []
    assert [fields.field(i).name() for i in range(fields.count())] == [name for name, _ in STAT_FIELDS]
    assert [int(fields.field(i).type()) for i in range(fields.count())] == [
        int(QMetaType.Type.Int), int(QMetaType.Type.QString), int(QMetaType.Type.LongLong),
        int(QMetaType.Type.Double), int(QMetaType.Type.Double), int(QMetaType.Type.Double)]


def test_no_algorithm_uses_a_deprecated_name_to_build_its_parameters(ds_provider) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for algorithm in ds_provider.algorithms():
            instance = algorithm.create()
            assert instance.parameterDefinitions()
    deprecated = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if issubclass(w.category, DeprecationWarning)
                  and "deepstrata" in w.filename]
    assert deprecated == []
