"""The toolbar's Model info: a dialog that shows a model's card at once, formatted (name, task, bands, classes with
their colours, tile and pixel size, metrics, provider), for the bundled models or any .onnx file.

The Processing algorithm Model info (deepstrata:modelinfo) stays for models and scripts, whose steps use its
outputs; this dialog reads the same card and formats it with the same code as that algorithm's HTML report
(inference/workflows/card_html.py).
"""
from __future__ import annotations

import os
from html import escape

from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (QApplication, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                                 QLabel, QMessageBox, QTextBrowser, QVBoxLayout, QWidget)

from ..support import (DEFAULT_MODEL, FIT_CONTENT, MODELS_DIR, default_model, fit_to_content, onnxruntime_problem,
                       tr)

OTHER = "__other__"  # the combo entry that shows the file chooser


class ModelCardDialog(QDialog):
    """Model: a bundled model (by file, the default first) or another file; below, its card."""

    def __init__(self, parent: QWidget | None = None, path: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DeepStrataModelCard")
        self.setWindowTitle(tr("DeepStrata - Model info"))
        self.model = None  # the loaded model whose card is shown (None: a problem is shown instead)

        self.models = QComboBox()
        self.models.setObjectName("DeepStrataModelChoice")
        bundled = sorted(MODELS_DIR.glob("*.onnx"), key=lambda p: (p.name != DEFAULT_MODEL, p.name))
        for file in bundled:
            self.models.addItem(tr("{0} (bundled)").format(file.name), str(file))
        self.models.addItem(tr("Another model file…"), OTHER)
        self.file = QgsFileWidget()
        self.file.setObjectName("DeepStrataModelFile")
        self.file.setFilter(tr("ONNX models (*.onnx)"))
        self.file.setDialogTitle(tr("Choose an ONNX model"))
        self.file_label = QLabel(tr("File"))
        form = QFormLayout()
        form.addRow(tr("Model"), self.models)
        form.addRow(self.file_label, self.file)
        self.card = QTextBrowser()
        self.card.setObjectName("DeepStrataModelCardText")
        self.card.setOpenLinks(False)
        self.card.setMinimumWidth(640)
        self.card.setProperty(FIT_CONTENT, True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.save = buttons.addButton(tr("Save as HTML…"), QDialogButtonBox.ButtonRole.ActionRole)
        self.save.setObjectName("DeepStrataModelCardSave")
        buttons.rejected.connect(self.reject)
        self.save.clicked.connect(self.save_html)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.card, 1)
        layout.addWidget(buttons)

        self.models.currentIndexChanged.connect(self._chosen)
        self.file.fileChanged.connect(self._file_changed)
        start = path or default_model() or ""
        index = self.models.findData(start)
        if index >= 0:
            self.models.setCurrentIndex(index)
            self._chosen(index)
        else:
            self.models.setCurrentIndex(self.models.findData(OTHER))
            self.file.setFilePath(start)
        self._fitted = False

    # ------------------------------------------------------------------ choosing
    def _chosen(self, index: int) -> None:
        data = self.models.itemData(index)
        other = data == OTHER
        self.file.setVisible(other)
        self.file_label.setVisible(other)
        if not other:
            self.show_model(str(data))
        elif self.file.filePath():
            self.show_model(self.file.filePath())
        else:
            self._show_problem(tr("Choose a .onnx file to see its card."))

    def _file_changed(self, path: str) -> None:
        if self.models.currentData() == OTHER and path:
            self.show_model(path)

    # ------------------------------------------------------------------ showing
    def show_model(self, path: str) -> None:
        """Load `path` and show its card; a problem (missing file, not a model, no onnxruntime) is shown instead."""
        problem = onnxruntime_problem()
        if problem:
            self._show_problem(problem)
            return
        from ..inference import DeepStrataError, available_providers, load_model
        from ..inference.workflows.card_html import card_html

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.model = load_model(path, "auto")
            self.card.setHtml(card_html(self.model, available_providers()))
        except DeepStrataError as exc:
            self._show_problem(str(exc))
        finally:
            QApplication.restoreOverrideCursor()
        self.save.setEnabled(self.model is not None)
        if self.isVisible():
            fit_to_content(self)

    def _show_problem(self, message: str) -> None:
        self.model = None
        self.card.setHtml(f"<p>{escape(message)}</p>")
        self.save.setEnabled(False)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            fit_to_content(self)

    def save_html(self) -> None:
        """Write the card as a self-contained HTML page (the same page as Model info's HTML report)."""
        if self.model is None:
            return
        from ..inference import available_providers
        from ..inference.workflows.card_html import card_page

        name = os.path.splitext(os.path.basename(self.model.path))[0] + ".html"
        path, _ = QFileDialog.getSaveFileName(self, tr("Save the model card"), name, tr("HTML files (*.html)"))
        if not path:
            return
        try:
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(card_page(self.model, available_providers()))
        except OSError as exc:
            QMessageBox.warning(self, self.windowTitle(), tr("Cannot write '{0}': {1}. Choose a writable "
                                                             "folder.").format(path, exc.strerror))
