"""DeepStrata's dependency installer, QGIS-free: what is missing, the build for this machine, a private
folder per QGIS profile and Python version, pip run with constraints that keep QGIS's packages as loaded."""
from __future__ import annotations

from .errors import DependencyError, InstallCancelled, InstallFailed, NoPythonError
from .installer import Result, Setup, add_to_path, install, manual_plan, prepare
from .platforms import BUILD_MODES, Facts, target_folder
from .requirements import ONNX, ONNXRUNTIME, REQUIREMENTS

__all__ = ["DependencyError", "InstallCancelled", "InstallFailed", "NoPythonError", "Result", "Setup",
           "add_to_path", "install", "manual_plan", "prepare", "BUILD_MODES", "Facts", "target_folder", "ONNX", "ONNXRUNTIME", "REQUIREMENTS"]
