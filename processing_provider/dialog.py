"""The dialog Processing opens for a DeepStrata algorithm (toolbox, toolbar, locator, menus): QGIS's own algorithm
dialog, sized to its parameters once shown (QGIS opens every one at 688 x 523, so longer forms scroll) and naming
the bundled model in an empty model field.

Imported only when a dialog opens (`DeepStrataAlgorithm.createCustomParametersWidget`): it needs QGIS's
Processing plugin, which qgis_process and the tests of the algorithms do not load.
"""
from __future__ import annotations

from processing.gui.AlgorithmDialog import AlgorithmDialog
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QTimer

from ..support import BUNDLED_DEFAULT, DEFAULT_MODEL, DEFAULT_MODEL_NAME, fit_to_content, tr


class FittedAlgorithmDialog(AlgorithmDialog):
    """QGIS's algorithm dialog, grown to show every parameter without scrolling (within the screen) when first
    shown; an empty model field reads "Bundled: <name>"."""

    def __init__(self, algorithm, parent=None) -> None:
        super().__init__(algorithm, parent=parent)
        self._fitted = False
        self.name_bundled_model()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            QTimer.singleShot(0, self.fit)

    def fit(self) -> None:
        fit_to_content(self)

    def name_bundled_model(self) -> None:
        """The placeholder of the optional model file field: the model an empty value runs."""
        parameter = self.algorithm().parameterDefinition("MODEL")
        wrapper = getattr(self.mainWidget(), "wrappers", {}).get("MODEL")
        if parameter is None or not parameter.metadata().get(BUNDLED_DEFAULT) or wrapper is None:
            return
        widget = wrapper.wrappedWidget() if hasattr(wrapper, "wrappedWidget") else None
        if isinstance(widget, QgsFileWidget):
            widget.lineEdit().setPlaceholderText(tr("Bundled: {0} ({1})").format(DEFAULT_MODEL_NAME, DEFAULT_MODEL))
