"""Per-platform choices as pure functions of the platform's facts, so that each is tested on any machine.

Inside QGIS, sys.executable is the QGIS binary, not a Python: pip has to be run with the Python QGIS embeds.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Callable

from .errors import NoPythonError

LINUX, WINDOWS, MACOS = "Linux", "Windows", "Darwin"
TARGET_NAME = "deepstrata-deps"


@dataclass(frozen=True)
class Facts:
    """What the choices depend on: the OS, QGIS's executable and Python prefix, the Python version."""

    system: str
    executable: str
    prefix: str
    version: tuple[int, int]
    base_prefix: str = ""

    @classmethod
    def here(cls) -> "Facts":
        return cls(platform.system(), sys.executable, sys.prefix, (sys.version_info[0], sys.version_info[1]),
                   sys.base_prefix)

    def join(self, *parts: str) -> str:
        pure = PureWindowsPath if self.system == WINDOWS else PurePosixPath
        return str(pure(*parts))

    def dirname(self, path: str) -> str:
        pure = PureWindowsPath if self.system == WINDOWS else PurePosixPath
        return str(pure(path).parent)


def python_candidates(facts: Facts) -> list[str]:
    """Where the Python that QGIS runs on lives, most likely first."""
    major, minor = facts.version
    exe, bindir = facts.executable, facts.dirname(facts.executable)
    name = (PureWindowsPath(exe) if facts.system == WINDOWS else PurePosixPath(exe)).name.lower()
    found: list[str] = [exe] if name.startswith("python") else []  # run from a plain Python (tests, CLI)
    if facts.system == WINDOWS:
        # OSGeo4W and the standalone installer: <root>\bin\qgis-bin.exe, Python in <root>\apps\Python3xx
        for prefix in (facts.prefix, facts.base_prefix):
            if prefix:
                found.append(facts.join(prefix, "python.exe"))
        found += [facts.join(bindir, "python3.exe"), facts.join(bindir, "python.exe")]
    elif facts.system == MACOS:
        # QGIS.app/Contents/MacOS/QGIS, with its Python in QGIS.app/Contents/MacOS/bin
        found += [facts.join(bindir, "bin", f"python{major}.{minor}"), facts.join(bindir, "bin", "python3")]
        for prefix in (facts.prefix, facts.base_prefix):
            if prefix:
                found.append(facts.join(prefix, "bin", f"python{major}.{minor}"))
    else:
        # /usr/bin/qgis with Debian's /usr/bin/python3.11 (sys.version_info says which), conda, flatpak
        for prefix in (facts.prefix, facts.base_prefix, "/usr"):
            if prefix:
                found += [facts.join(prefix, "bin", f"python{major}.{minor}"), facts.join(prefix, "bin", "python3")]
    return list(dict.fromkeys(found))


def python_executable(facts: Facts, exists: Callable[[str], bool] = os.path.isfile) -> str:
    """The first candidate that exists; NoPythonError naming where it looked otherwise."""
    candidates = python_candidates(facts)
    for candidate in candidates:
        if exists(candidate):
            return candidate
    raise NoPythonError(
        f"No Python {facts.version[0]}.{facts.version[1]} was found beside QGIS (looked for "
        f"{', '.join(candidates)}). Install the Python that QGIS uses, or install the packages from a terminal "
        "with the command shown in the installer.")


def target_folder(profile_dir: str, version: tuple[int, int], system: str = LINUX) -> str:
    """The private package folder: <profile>/python/deepstrata-deps/py3.11 (outside the plugin, which updates
    replace; per Python version, because compiled packages only load in the version they were built for)."""
    facts = Facts(system, "", "", version)
    return facts.join(profile_dir, "python", TARGET_NAME, f"py{version[0]}.{version[1]}")


# ------------------------------------------------------------------ GPU
@dataclass(frozen=True)
class Gpu:
    """What accelerator the onnxruntime build is chosen for: 'cuda', 'directml' or None (CPU)."""

    kind: str | None
    cuda_major: int | None = None
    detail: str = ""


def parse_cuda_major(nvidia_smi: str) -> int | None:
    """'CUDA Version: 12.4' in nvidia-smi's header -> 12."""
    match = re.search(r"CUDA Version:\s*(\d+)", nvidia_smi)
    return int(match.group(1)) if match else None


def detect_gpu(system: str, nvidia_smi: str | None, proc_nvidia: str | None) -> Gpu:
    """From nvidia-smi's output and /proc/driver/nvidia/version (None when absent)."""
    if system == MACOS:
        return Gpu(None, detail="macOS: the onnxruntime wheel brings CoreML")
    if nvidia_smi is not None or proc_nvidia is not None:
        major = parse_cuda_major(nvidia_smi or "")
        return Gpu("cuda", major, f"NVIDIA driver found (CUDA {major or 'version unknown'})")
    if system == WINDOWS:
        return Gpu("directml", detail="Windows: DirectML runs on any DirectX 12 GPU")
    return Gpu(None, detail="no NVIDIA driver found")


def probe_gpu(system: str | None = None) -> Gpu:
    """detect_gpu with this machine's facts (runs nvidia-smi for at most a few seconds)."""
    system = system or platform.system()
    smi: str | None = None
    try:
        done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10)
        smi = done.stdout if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        smi = None
    proc: str | None = None
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as handle:
            proc = handle.read()
    except OSError:
        proc = None
    return detect_gpu(system, smi, proc)


@dataclass(frozen=True)
class Choice:
    """The onnxruntime build to install and why."""

    package: str
    reason: str
    notes: list[str] = field(default_factory=list)


BUILD_MODES = ("auto", "cpu", "gpu")  # the onnxruntime build asked for (the dialog's and the algorithm's choices)


def onnxruntime_package(gpu: Gpu, mode: str = "auto") -> Choice:
    """mode 'cpu', 'gpu' or 'auto' -> onnxruntime, onnxruntime-gpu (CUDA 12) or onnxruntime-directml."""
    if mode == "cpu" or (mode == "auto" and gpu.kind is None):
        return Choice("onnxruntime", "CPU build" + (f" ({gpu.detail})" if gpu.detail else ""))
    if gpu.kind == "directml":
        return Choice("onnxruntime-directml", gpu.detail)
    if gpu.kind == "cuda":
        if gpu.cuda_major is not None and gpu.cuda_major < 12:
            if mode == "gpu":
                return Choice("onnxruntime-gpu", gpu.detail, [
                    f"The NVIDIA driver supports CUDA {gpu.cuda_major}; onnxruntime-gpu from PyPI needs CUDA 12. "
                    "Update the driver, or it will run on the CPU."])
            return Choice("onnxruntime", f"CPU build: the NVIDIA driver supports only CUDA {gpu.cuda_major}, "
                          "onnxruntime-gpu needs CUDA 12 (update the driver, then reinstall with GPU)")
        return Choice("onnxruntime-gpu", gpu.detail, [
            "onnxruntime-gpu needs the CUDA 12 and cuDNN 9 libraries; without them it runs on the CPU."])
    return Choice("onnxruntime", f"CPU build: no GPU was found for 'gpu' ({gpu.detail})",
                  ["GPU was asked for, but no NVIDIA driver (or Windows DirectML) was found."])
