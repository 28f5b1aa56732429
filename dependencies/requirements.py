"""What DeepStrata needs at run time beside QGIS, and what of it this Python already has."""
from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Requirement:
    """A runtime package: its pip name, the module it provides, the oldest version that works."""

    name: str
    module: str
    minimum: str
    purpose: str
    optional: bool = False
    on_request: bool = False  # installed only when asked for (a feature few use), never by the one-click install

    def spec(self, package: str | None = None) -> str:
        """The pip requirement string, e.g. 'onnxruntime-gpu>=1.17'."""
        return f"{package or self.name}>={self.minimum}"


ONNXRUNTIME = Requirement("onnxruntime", "onnxruntime", "1.17", "runs the models (CPU or GPU)")
ONNX = Requirement("onnx", "onnx", "1.15", "builds and edits model graphs", optional=True)
DASK = Requirement("dask[distributed]", "distributed", "2024.8", "runs models on a Dask cluster (optional; "
                   "docs/scale-out.md)", optional=True, on_request=True)
REQUIREMENTS = (ONNXRUNTIME, ONNX, DASK)


@dataclass(frozen=True)
class Status:
    """What this Python has of one requirement: state is 'ok', 'missing', 'too old' or 'broken'."""

    requirement: Requirement
    state: str
    version: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def describe(self) -> str:
        req = self.requirement
        if self.state == "ok":
            return f"{req.name} {self.version}: ok"
        if self.state == "too old":
            return f"{req.name} {self.version}: too old (needs {req.minimum} or later)"
        if self.state == "broken":
            return f"{req.name}: installed but does not import ({self.detail})"
        return f"{req.name}: missing{' (optional)' if req.optional else ''}"


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version: '1.17.3rc1' -> (1, 17, 3)."""
    match = re.match(r"\d+(\.\d+)*", version.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def check(requirement: Requirement, importer: Callable[[str], object] = importlib.import_module) -> Status:
    """Import the requirement's module and compare its __version__ with the minimum."""
    try:
        module = importer(requirement.module)
    except ImportError as exc:
        if sys.modules.get(requirement.module, False) is None or "No module named" in str(exc):
            return Status(requirement, "missing", detail=str(exc))
        return Status(requirement, "broken", detail=str(exc))
    except Exception as exc:  # noqa: BLE001 (a broken package can raise anything on import)
        return Status(requirement, "broken", detail=f"{type(exc).__name__}: {exc}")
    version = str(getattr(module, "__version__", "") or "0")
    if version_tuple(version) < version_tuple(requirement.minimum):
        return Status(requirement, "too old", version)
    return Status(requirement, "ok", version)


def check_all(requirements: tuple[Requirement, ...] = REQUIREMENTS,
              importer: Callable[[str], object] = importlib.import_module) -> list[Status]:
    return [check(requirement, importer) for requirement in requirements]


def needing_install(statuses: list[Status], include_optional: bool = True,
                    on_request: bool = False) -> list[Status]:
    """The statuses that are not ok (optional requirements only with include_optional; those installed on request,
    such as dask, only with on_request)."""
    return [s for s in statuses if not s.ok and (include_optional or not s.requirement.optional)
            and (on_request or not s.requirement.on_request)]
