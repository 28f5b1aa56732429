"""What the client asks every worker before a run: the versions it runs and whether it can open the run's
files; and what the client makes of the answers (a refusal naming the difference, or warnings)."""
from __future__ import annotations

import platform
from typing import Any, Mapping, Sequence

from ..provenance import version

# A worker must run the same of these as the client: the task code is the client's (pickled by reference), and
# bands from different engines would not make one output.
MUST_MATCH = ("deepstrata", "python")
# These change the numbers in the last digits (other kernels, other decoding): said, not refused.
SHOULD_MATCH = ("onnxruntime", "numpy", "gdal")


def versions() -> dict[str, str]:
    """This Python's DeepStrata, Python (major.minor), onnxruntime, numpy and GDAL versions."""
    found = {"deepstrata": version(), "python": ".".join(platform.python_version_tuple()[:2])}
    for name, module in (("onnxruntime", "onnxruntime"), ("numpy", "numpy"), ("gdal", "osgeo.gdal")):
        try:
            imported = __import__(module, fromlist=["_"])
            found[name] = str(getattr(imported, "__version__", "") or imported.VersionInfo("RELEASE_NAME"))
        except Exception as exc:  # noqa: BLE001 (a broken package can raise anything on import)
            found[name] = f"missing ({type(exc).__name__})"
    return found


def unreadable(paths: Sequence[str]) -> dict[str, str]:
    """The paths GDAL cannot open here, with its reason."""
    from osgeo import gdal

    gdal.UseExceptions()  # as the engine does
    failed = {}
    for path in paths:
        try:
            ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
            if ds is None:
                failed[path] = "not a raster"
            ds = None
        except Exception as exc:  # noqa: BLE001 (GDAL's RuntimeError, or a broken path)
            failed[path] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return failed


def probe(paths: Sequence[str]) -> dict[str, Any]:
    """What a worker answers: its versions and the paths it cannot open (run on every worker by the client)."""
    return {"versions": versions(), "unreadable": unreadable(paths)}


def judge(client: Mapping[str, str], answers: Mapping[str, Mapping[str, Any]],
          where: str) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for the workers' `answers` against the client's versions; `where` names the
    cluster in messages."""
    refusals: list[str] = []
    warnings: list[str] = []
    for name in MUST_MATCH + SHOULD_MATCH:
        differ = {w: a["versions"].get(name, "?") for w, a in answers.items()
                  if a["versions"].get(name) != client.get(name)}
        if not differ:
            continue
        by_value: dict[str, list[str]] = {}
        for worker, value in sorted(differ.items()):
            by_value.setdefault(value, []).append(worker)
        listed = ", ".join(f"{v} on {ws[0]}" if len(ws) == 1 else f"{v} on {len(ws)} workers ({', '.join(ws[:2])}"
                           f"{', ...' if len(ws) > 2 else ''})" for v, ws in by_value.items())
        if name in MUST_MATCH:
            refusals.append(f"The workers of {where} run {name} {listed}, but this machine runs {client.get(name)}. "
                            f"Install the same {'DeepStrata (this plugin folder)' if name == 'deepstrata' else name} "
                            "on every worker and restart them (docs/scale-out.md).")
        else:
            warnings.append(f"The workers of {where} run {name} {listed}, this machine {client.get(name)}: the "
                            "outputs may differ from a run here in the last digits. Install the same version on "
                            "the workers for identical results.")
    failed: dict[tuple[str, str], list[str]] = {}
    for worker, answer in sorted(answers.items()):
        for path, reason in answer["unreadable"].items():
            failed.setdefault((path, reason), []).append(worker)
    for (path, reason), workers in failed.items():
        who = f"The worker {workers[0]}" if len(workers) == 1 else f"{len(workers)} workers ({', '.join(workers[:3])})"
        refusals.append(f"{who} cannot open '{path}' ({reason}). Workers read the inputs themselves: put them on a "
                        "file system every worker mounts at the same path, or give an object-store path "
                        "(/vsis3/..., /vsicurl/https://...) the workers can reach.")
    return refusals, warnings
