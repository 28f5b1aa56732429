"""The installer as one call: what is missing, which build, where, the pip command, the run, the report."""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .errors import NoPythonError
from .pip import Plan, constraints_text, loaded_distributions, manual_command, prune
from .platforms import Choice, Facts, Gpu, onnxruntime_package, probe_gpu, python_executable, target_folder
from . import requirements as _requirements
from .requirements import ONNXRUNTIME, Requirement, Status, check_all, needing_install
from .runner import run_pip


def add_to_path(target: str) -> bool:
    """Append the private folder to sys.path (after QGIS's own paths: nothing QGIS imported is shadowed).
    True when it was added now."""
    if not os.path.isdir(target) or target in sys.path:
        return False
    sys.path.append(target)
    importlib.invalidate_caches()
    return True


def packages_for(statuses: list[Status], choice: Choice) -> tuple[str, ...]:
    """pip requirement strings for the statuses that are not ok (onnxruntime as the chosen build)."""
    return tuple(s.requirement.spec(choice.package if s.requirement is ONNXRUNTIME else None)
                 for s in statuses if not s.ok)


@dataclass
class Setup:
    """Everything decided before pip runs; `describe()` is what the dialog and the algorithm show."""

    statuses: list[Status]
    gpu: Gpu
    choice: Choice
    plan: Plan
    pins: Mapping[str, str]
    notes: list[str] = field(default_factory=list)
    installing: tuple[str, ...] = ()  # the requirements the plan installs (not those left for a request)

    @property
    def needed(self) -> bool:
        return bool(self.plan.packages)

    def describe(self) -> str:
        lines = ["What this Python has:"] + [f"  {s.describe()}" for s in self.statuses]
        if self.needed:
            lines += [f"To install: {', '.join(self.plan.packages)}",
                      f"onnxruntime build: {self.choice.package} ({self.choice.reason})",
                      f"Into: {self.plan.target} (private to this QGIS profile and Python; added to the path "
                      "when the plugin loads)",
                      f"Kept as QGIS loaded them: {', '.join(f'{k} {v}' for k, v in sorted(self.pins.items()) if k == 'numpy') or 'none'}"
                      f" and {max(0, len(self.pins) - ('numpy' in self.pins))} other packages (constraints file)",
                      f"Command: {self.plan.shell_command()}"]
        else:
            lines.append("Nothing to install.")
        return "\n".join(lines + [f"Note: {n}" for n in self.notes + self.choice.notes])


def prepare(profile_dir: str, mode: str = "auto", wheels: str | None = None,
            requirements: tuple[Requirement, ...] | None = None, include_optional: bool = True,
            on_request: bool = False, facts: Facts | None = None, gpu: Gpu | None = None, pins: Mapping[str, str] | None = None,
            importer: Callable[[str], object] = importlib.import_module,
            exists: Callable[[str], bool] = os.path.isfile, target: str | None = None) -> Setup:
    """Decide what to install and how (runs nvidia-smi; raises NoPythonError when no Python is found).
    `target` replaces the profile's private folder; `on_request` also installs what is installed only when asked
    for (dask.distributed, for runs on a cluster)."""
    facts = facts or Facts.here()
    target = target or target_folder(profile_dir, facts.version, facts.system)
    add_to_path(target)
    statuses = check_all(requirements or _requirements.REQUIREMENTS, importer)
    gpu = gpu if gpu is not None else probe_gpu(facts.system)
    choice = onnxruntime_package(gpu, mode)
    pins = dict(loaded_distributions() if pins is None else pins)
    missing = needing_install(statuses, include_optional, on_request)
    constraints = os.path.join(os.path.dirname(target), f"constraints-py{facts.version[0]}.{facts.version[1]}.txt")
    plan = Plan(python_executable(facts, exists) if missing else facts.executable, target, constraints,
                packages_for(missing, choice), wheels or None, facts.system, f"{facts.version[0]}.{facts.version[1]}")
    notes = [f"{s.requirement.name} {s.version} is found first on the path, before the private folder: remove it "
             "(or update it where it was installed) for the new copy to be used." for s in missing
             if s.state == "too old"]
    if any(s.state == "broken" for s in missing):
        notes.append("A broken copy was already imported: restart QGIS after installing.")
    return Setup(statuses, gpu, choice, plan, pins, notes, tuple(s.requirement.name for s in missing))


def manual_plan(profile_dir: str, package: str = "onnxruntime", facts: Facts | None = None,
                pins: Mapping[str, str] | None = None, exists: Callable[[str], bool] = os.path.isfile) -> Plan:
    """The command a user can type (no constraints file: numpy pinned on the command line), without probing
    the GPU; 'python3' when no Python is found beside QGIS."""
    facts = facts or Facts.here()
    pins = loaded_distributions(["numpy"]) if pins is None else pins
    try:
        python = python_executable(facts, exists)
    except NoPythonError:
        python = "python3" if facts.system != "Windows" else "python"
    packages = (ONNXRUNTIME.spec(package),) + tuple(f"{k}=={v}" for k, v in sorted(pins.items()))
    return Plan(python, target_folder(profile_dir, facts.version, facts.system), "", packages,
                system=facts.system, python_version=f"{facts.version[0]}.{facts.version[1]}")


@dataclass
class Result:
    setup: Setup
    output: str
    removed: list[str]
    after: list[Status]
    restart_needed: bool

    def describe(self) -> str:
        lines = ["Installed into " + self.setup.plan.target] + [f"  {s.describe()}" for s in self.after]
        if self.removed:
            lines.append("Removed from the private folder (QGIS already has them): " + ", ".join(self.removed))
        if self.restart_needed:
            lines.append("Restart QGIS to use them: a copy that did not work was already loaded.")
        else:
            lines.append("Ready: no restart needed.")
        return "\n".join(lines)


def install(setup: Setup, on_line: Callable[[str], None] = lambda line: None,
            on_progress: Callable[[float], None] = lambda fraction: None,
            is_cancelled: Callable[[], bool] = lambda: False,
            importer: Callable[[str], object] = importlib.import_module) -> Result:
    """Write the constraints, run pip, prune the pinned copies, put the folder on the path, check again."""
    plan = setup.plan
    os.makedirs(plan.target, exist_ok=True)
    with open(plan.constraints, "w", encoding="utf-8") as handle:
        handle.write(constraints_text(setup.pins))
    output = run_pip(plan, on_line, on_progress, is_cancelled)
    removed = prune(plan.target, setup.pins)
    if removed:
        on_line("Removed the copies QGIS already has: " + ", ".join(removed))
    add_to_path(plan.target)
    importlib.invalidate_caches()
    restart = any(s.state in ("broken", "too old") and s.requirement.module in sys.modules
                  for s in setup.statuses)
    after = check_all(tuple(st.requirement for st in setup.statuses), importer)
    wanted = set(setup.installing) or {s.requirement.name for s in setup.statuses if not s.ok}
    return Result(setup, output, removed, after,
                  restart or any(not s.ok for s in after if s.requirement.name in wanted))


__all__ = ["Setup", "Result", "prepare", "install", "add_to_path", "manual_command", "manual_plan"]
