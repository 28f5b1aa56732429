"""The installer in QGIS: a message-bar offer when onnxruntime is missing or too old, and a dialog that shows
what will be installed, where and with which command, then runs it with a live log, progress and Cancel."""
from __future__ import annotations

import threading
from typing import Callable

from qgis.core import Qgis
from qgis.PyQt.QtCore import QThread, pyqtSignal
from qgis.PyQt.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel,
                                 QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from ..dependencies import BUILD_MODES, DependencyError, Result, Setup, install, prepare
from ..support import dependencies_target, profile_dir, tr

class InstallWorker(QThread):
    """Runs pip off the GUI thread; lines and progress come back as queued signals."""

    line = pyqtSignal(str)
    progress = pyqtSignal(float)
    finished_with = pyqtSignal(object, str)  # Result or None, error message

    def __init__(self, setup: Setup, parent=None) -> None:
        super().__init__(parent)
        self.setup = setup
        self.cancel_event = threading.Event()

    def run(self) -> None:
        try:
            result = install(self.setup, self.line.emit, self.progress.emit, self.cancel_event.is_set)
        except DependencyError as exc:
            self.finished_with.emit(None, str(exc))  # cancelled, or failed with the manual command
            return
        self.finished_with.emit(result, "")


class InstallerDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("DeepStrata: install dependencies"))
        self.resize(760, 520)
        self.worker: InstallWorker | None = None
        self.setup: Setup | None = None
        self.outcome: Result | None = None
        layout = QVBoxLayout(self)
        options = QHBoxLayout()
        options.addWidget(QLabel(tr("onnxruntime build:")))
        self.mode = QComboBox()
        self.mode.addItems(list(BUILD_MODES))
        options.addWidget(self.mode)
        options.addWidget(QLabel(tr("Offline wheels:")))
        self.wheels = QLineEdit()
        self.wheels.setPlaceholderText(tr("(none: download from pypi.org)"))
        options.addWidget(self.wheels, 1)
        browse = QPushButton(tr("Browse..."))
        browse.clicked.connect(self._browse)
        options.addWidget(browse)
        layout.addLayout(options)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(self.summary.textInteractionFlags() | _selectable())
        layout.addWidget(self.summary)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        layout.addWidget(self.log, 1)
        self.buttons = QDialogButtonBox()
        self.install_button = self.buttons.addButton(tr("Install"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(self.buttons)
        self.mode.currentIndexChanged.connect(self.refresh)
        self.wheels.editingFinished.connect(self.refresh)
        self.refresh()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("Folder of wheels"))
        if folder:
            self.wheels.setText(folder)
            self.refresh()

    def refresh(self) -> None:
        """Decide again (build, folder, command) and show it."""
        try:
            self.setup = prepare(profile_dir(), BUILD_MODES[self.mode.currentIndex()],
                                 self.wheels.text().strip() or None, target=dependencies_target())
        except DependencyError as exc:
            self.setup = None
            self.summary.setText(str(exc))
            self.install_button.setEnabled(False)
            return
        self.summary.setText(self.setup.describe())
        self.install_button.setEnabled(self.setup.needed)

    def start(self) -> None:
        if self.setup is None or not self.setup.needed or self.worker is not None:
            return
        self.install_button.setEnabled(False)
        self.mode.setEnabled(False)
        self.wheels.setEnabled(False)
        self.progress.setValue(0)
        self.worker = InstallWorker(self.setup, self)
        self.worker.line.connect(self.log.appendPlainText)
        self.worker.progress.connect(lambda f: self.progress.setValue(int(round(100 * f))))
        self.worker.finished_with.connect(self._done)
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.log.appendPlainText(tr("Cancelling..."))
            self.worker.cancel_event.set()
            return
        self.reject()

    def _done(self, result: Result | None, error: str) -> None:
        if self.worker is not None:
            self.worker.wait()
        self.worker = None
        self.outcome = result
        self.cancel_button.setText(tr("Close"))
        self.mode.setEnabled(True)
        self.wheels.setEnabled(True)
        if result is None:
            self.log.appendPlainText("\n" + error)
            self.summary.setText(error)
            self.install_button.setEnabled(True)
            return
        self.progress.setValue(100)
        message = result.describe()
        if not result.restart_needed:
            message += "\n" + tr("DeepStrata's algorithms and toolbar can be used now.")
        self.log.appendPlainText("\n" + message)
        self.summary.setText(message)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if self.worker is not None:
            self.worker.cancel_event.set()
            self.worker.wait(10000)
        super().closeEvent(event)


def _selectable():
    from qgis.PyQt.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse


class InstallOffer:
    """The message-bar item shown at start-up while onnxruntime is missing or too old."""

    def __init__(self, iface, problem: str, on_installed: Callable[[], None] = lambda: None) -> None:
        self.iface = iface
        self.on_installed = on_installed
        bar = iface.messageBar()
        self.item = bar.createMessage(tr("DeepStrata"), tr("onnxruntime is missing or too old: models cannot run."))
        button = QPushButton(tr("Install..."))
        button.setToolTip(problem)
        button.clicked.connect(self.open_dialog)
        self.item.layout().addWidget(button)
        self.button = button
        self.dialog: InstallerDialog | None = None
        bar.pushWidget(self.item, Qgis.MessageLevel.Warning)

    def open_dialog(self) -> InstallerDialog:
        self.dialog = InstallerDialog(self.iface.mainWindow())
        self.dialog.finished.connect(self._after)
        self.dialog.show()
        return self.dialog

    def _after(self, *args) -> None:
        if self.dialog is not None and self.dialog.outcome is not None and not self.dialog.outcome.restart_needed:
            self.on_installed()
            self.remove()

    def remove(self) -> None:
        try:
            self.iface.messageBar().popWidget(self.item)
        except RuntimeError:  # already closed by the user
            pass
