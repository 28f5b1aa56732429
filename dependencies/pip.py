"""pip's command line, the constraints that keep QGIS's packages as they are, and what pip's failures mean."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Mapping

from .platforms import WINDOWS

_VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def normalize(name: str) -> str:
    """PEP 503 name: 'Typing_Extensions' -> 'typing-extensions'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def loaded_distributions(modules: Iterable[str] | None = None) -> dict[str, str]:
    """{distribution: version} of the packages already imported (numpy, ...): pip must not replace them."""
    names = {m.split(".")[0] for m in (sys.modules if modules is None else modules)}
    owners = metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in sorted(names):
        # Debian's own packages (numpy on Debian 13) may lack the files packages_distributions() reads: try the
        # module's own name as the distribution's too.
        for dist in owners.get(module) or [module]:
            try:
                found[normalize(dist)] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
    return found


def constraints_text(pins: Mapping[str, str]) -> str:
    """A pip constraints file pinning each distribution to the version QGIS has loaded (odd versions skipped)."""
    lines = ["# Written by DeepStrata: the packages QGIS has already loaded stay at these versions."]
    lines += [f"{normalize(name)}=={version}" for name, version in sorted(pins.items())
              if _VERSION.match(version)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Plan:
    """One pip run: which Python, into which folder, which packages, online or from a folder of wheels."""

    python: str
    target: str
    constraints: str
    packages: tuple[str, ...]
    wheels: str | None = None
    system: str = "Linux"
    python_version: str = ""

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--upgrade",
               "--target", self.target] + (["--constraint", self.constraints] if self.constraints else [])
        if self.wheels:
            cmd += ["--no-index", "--find-links", self.wheels]
        return cmd + list(self.packages)

    def shell_command(self) -> str:
        """The command as the user types it in this platform's terminal (OSGeo4W Shell, Terminal)."""
        return join_command(self.command(), self.system)


def join_command(args: list[str], system: str) -> str:
    if system == WINDOWS:
        return subprocess.list2cmdline(args)
    return shlex.join(args)


def manual_command(plan: Plan) -> str:
    """What to run by hand when the installer cannot: the same command (the constraints written out first)."""
    where = {"Windows": "In the OSGeo4W Shell (Windows: Start menu > QGIS > OSGeo4W Shell), run:",
             "Darwin": "In Terminal, run:"}.get(plan.system, "In a terminal, run:")
    return f"{where}\n{plan.shell_command()}"


# ------------------------------------------------------------------ failures
# (kind, pattern in pip's output, what it means and what to do)
_FAILURES = (
    ("no_pip", r"No module named pip\b",
     "This Python has no pip. On Debian/Ubuntu install it with 'sudo apt install python3-pip'; elsewhere "
     "run '<python> -m ensurepip --user'."),
    ("proxy", r"ProxyError|Tunnel connection failed|407 Proxy Authentication",
     "A proxy blocked the download. Set the proxy for pip (environment variables HTTPS_PROXY/HTTP_PROXY, or "
     "'proxy = http://host:port' in pip.conf / pip.ini), or install from a folder of wheels."),
    ("tls", r"SSLError|CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSL: ",
     "The secure connection to the package index failed (a TLS certificate was not trusted, often a company "
     "proxy that inspects traffic). Give pip your organisation's certificate ('--cert <file>' or "
     "PIP_CERT), or install from a folder of wheels."),
    ("offline", r"Temporary failure in name resolution|Name or service not known|getaddrinfo failed|"
     r"NewConnectionError|Failed to establish a new connection|Network is unreachable|nodename nor servname|"
     r"ConnectTimeout|Read timed out|No route to host",
     "The package index (pypi.org) could not be reached: this machine looks offline. Connect it to the "
     "internet, or download the wheels on another machine ('pip download --only-binary :all: "
     "--python-version X.Y --platform ... onnxruntime') and install from that folder (offline wheels)."),
    ("disk", r"No space left on device|\[Errno 28\]|Disk quota exceeded",
     "The disk is full. Free some space (onnxruntime needs about 200 MB while installing) and try again."),
    ("conflict", r"ResolutionImpossible|conflicting dependencies|Cannot install .* because",
     "The packages need versions that conflict with what QGIS has already loaded (the constraints keep QGIS's "
     "numpy and other packages as they are). Choose an older version of the package, or update QGIS."),
    ("no_wheel", r"No matching distribution found|Could not find a version that satisfies|"
     r"is not a supported wheel on this platform",
     "No ready-built package exists for this Python and system (Python {python}). Update QGIS to a version "
     "with a Python that onnxruntime supports, or install a wheel built for it from a folder."),
)


@dataclass(frozen=True)
class Failure:
    kind: str
    advice: str


def classify(output: str, python_version: str = "") -> Failure:
    """What pip's output says went wrong: the first matching kind, 'unknown' otherwise."""
    for kind, pattern, advice in _FAILURES:
        if re.search(pattern, output):
            return Failure(kind, advice.replace("{python}", python_version))
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
    return Failure("unknown", "pip failed: " + (errors[-1] if errors else "no output") +
                   ". See the log for pip's full output.")


# ------------------------------------------------------------------ the target folder
def prune(target: str | Path, names: Iterable[str]) -> list[str]:
    """Remove from the target the distributions in `names` (pinned to what QGIS has loaded, so the copy is
    redundant: QGIS's own comes first on sys.path). Returns the removed distributions."""
    wanted = {normalize(n) for n in names}
    removed = []
    for info in sorted(Path(target).glob("*.dist-info")):
        name = normalize(info.name[: -len(".dist-info")].rsplit("-", 1)[0])
        if name not in wanted:
            continue
        files = {info / "RECORD"}
        record = info / "RECORD"
        if record.is_file():
            for line in record.read_text(encoding="utf-8").splitlines():
                path = line.rsplit(",", 2)[0]
                if path and not path.startswith(".."):
                    files.add(Path(target) / path)
        for file in files:
            if file.is_file() or file.is_symlink():
                file.unlink()
        for folder in sorted({f.parent for f in files} | {info}, key=lambda f: len(f.parts), reverse=True):
            _remove_empty(folder, Path(target))
        removed.append(name)
    return removed


def _remove_empty(folder: Path, stop: Path) -> None:
    """Remove `folder` and its empty parents up to `stop` (caches left by imports included)."""
    while folder != stop and stop in folder.parents and folder.is_dir():
        for cache in folder.glob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        if any(folder.iterdir()):
            return
        folder.rmdir()
        folder = folder.parent
