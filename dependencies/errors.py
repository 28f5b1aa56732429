"""The installer's typed errors: each carries a message that says what went wrong and how to fix it."""
from __future__ import annotations


class DependencyError(Exception):
    """Base of the installer's errors."""


class NoPythonError(DependencyError):
    """No Python interpreter able to run pip was found beside QGIS."""


class InstallCancelled(DependencyError):
    """The user cancelled a running installation."""


class InstallFailed(DependencyError):
    """pip ran and failed; `kind` says why (offline, proxy, tls, no_wheel, disk, no_pip, conflict, unknown)."""

    def __init__(self, message: str, kind: str, command: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.command = command
