"""The dependency installer's per-platform logic, as pure functions of each platform's facts (no QGIS, no pip)."""
from __future__ import annotations

import shlex

import pytest

from deepstrata.dependencies import NoPythonError
from deepstrata.dependencies.pip import Plan, classify, constraints_text, loaded_distributions, manual_command, prune
from deepstrata.dependencies.platforms import (Facts, Gpu, detect_gpu, onnxruntime_package, parse_cuda_major,
                                               python_candidates, python_executable, target_folder)
from deepstrata.dependencies.requirements import DASK, ONNX, ONNXRUNTIME, Status, check, needing_install, version_tuple
from deepstrata.dependencies.runner import progress_of

DEBIAN = Facts("Linux", "/usr/bin/qgis", "/usr", (3, 11), "/usr")
OSGEO4W = Facts("Windows", r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\apps\Python312", (3, 12),
                r"C:\OSGeo4W\apps\Python312")
STANDALONE = Facts("Windows", r"C:\Program Files\QGIS 3.40.5\bin\qgis-ltr-bin.exe",
                   r"C:\Program Files\QGIS 3.40.5\apps\Python312", (3, 12))
MACOS = Facts("Darwin", "/Applications/QGIS-LTR.app/Contents/MacOS/QGIS",
              "/Applications/QGIS-LTR.app/Contents/Frameworks/Python.framework/Versions/3.9", (3, 9))
SMI = "| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4 |"


@pytest.mark.parametrize("facts, present, expected", [
    (DEBIAN, {"/usr/bin/python3.11", "/usr/bin/python3"}, "/usr/bin/python3.11"),
    (DEBIAN, {"/usr/bin/python3"}, "/usr/bin/python3"),
    (OSGEO4W, {r"C:\OSGeo4W\apps\Python312\python.exe", r"C:\OSGeo4W\bin\python3.exe"},
     r"C:\OSGeo4W\apps\Python312\python.exe"),
    (OSGEO4W, {r"C:\OSGeo4W\bin\python3.exe"}, r"C:\OSGeo4W\bin\python3.exe"),
    (STANDALONE, {r"C:\Program Files\QGIS 3.40.5\apps\Python312\python.exe"},
     r"C:\Program Files\QGIS 3.40.5\apps\Python312\python.exe"),
    (MACOS, {"/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3"},
     "/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3"),
    (Facts("Linux", "/opt/venv/bin/python", "/opt/venv", (3, 11)), set(), "/opt/venv/bin/python"),
])
def test_python_executable(facts, present, expected):
    # a plain Python (tests, the CLI) is used as it is, without looking for it
    exists = (lambda p: p in present) if present else (lambda p: True)
    assert python_executable(facts, exists) == expected


def test_python_executable_never_the_qgis_binary():
    for facts in (DEBIAN, OSGEO4W, STANDALONE, MACOS):
        assert all("qgis" not in c.lower().rsplit("/", 1)[-1].rsplit("\\", 1)[-1] for c in python_candidates(facts))


def test_no_python_says_where_it_looked():
    with pytest.raises(NoPythonError, match=r"No Python 3\.11 .*/usr/bin/python3\.11"):
        python_executable(DEBIAN, lambda p: False)


def test_target_folder_per_profile_and_python():
    assert target_folder("/home/a/.local/share/QGIS/QGIS3/profiles/default", (3, 11)) == \
        "/home/a/.local/share/QGIS/QGIS3/profiles/default/python/deepstrata-deps/py3.11"
    assert target_folder(r"C:\Users\a\AppData\Roaming\QGIS\QGIS3\profiles\work", (3, 12), "Windows") == \
        r"C:\Users\a\AppData\Roaming\QGIS\QGIS3\profiles\work\python\deepstrata-deps\py3.12"


def test_target_folder_is_outside_the_plugin():
    folder = target_folder("/p/profiles/default", (3, 11))
    assert "/python/plugins/" not in folder


@pytest.mark.parametrize("system, smi, proc, mode, package", [
    ("Linux", SMI, None, "auto", "onnxruntime-gpu"),
    ("Linux", None, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14", "auto", "onnxruntime-gpu"),
    ("Linux", None, None, "auto", "onnxruntime"),
    ("Linux", SMI, None, "cpu", "onnxruntime"),
    ("Linux", SMI.replace("12.4", "11.8"), None, "auto", "onnxruntime"),  # pypi's -gpu needs CUDA 12
    ("Linux", SMI.replace("12.4", "11.8"), None, "gpu", "onnxruntime-gpu"),
    ("Windows", None, None, "auto", "onnxruntime-directml"),
    ("Windows", SMI, None, "auto", "onnxruntime-gpu"),
    ("Darwin", None, None, "auto", "onnxruntime"),
    ("Darwin", None, None, "gpu", "onnxruntime"),  # CoreML is in the plain wheel
])
def test_build_choice(system, smi, proc, mode, package):
    assert onnxruntime_package(detect_gpu(system, smi, proc), mode).package == package


def test_cuda_major_and_notes():
    assert parse_cuda_major(SMI) == 12 and parse_cuda_major("no header") is None
    old = onnxruntime_package(Gpu("cuda", 11), "auto")
    assert "CUDA 11" in old.reason and "update the driver" in old.reason
    assert "GPU was asked for" in onnxruntime_package(Gpu(None), "gpu").notes[0]


def test_constraints_pin_what_is_loaded():
    text = constraints_text({"numpy": "1.24.2", "GDAL": "3.6.2", "odd": "1.0+dfsg-1"})
    assert "numpy==1.24.2\n" in text and "gdal==3.6.2\n" in text and "odd" not in text


def test_loaded_distributions_finds_numpy():
    import numpy

    assert loaded_distributions(["numpy", "numpy.linalg", "no_such_module"]) == {"numpy": numpy.__version__}


def _plan(**kw) -> Plan:
    base = dict(python="/usr/bin/python3.11", target="/p/python/deepstrata-deps/py3.11",
                constraints="/p/python/deepstrata-deps/constraints-py3.11.txt", packages=("onnxruntime>=1.17",),
                python_version="3.11")
    return Plan(**{**base, **kw})


def test_command_line_online_and_offline():
    assert _plan().command() == [
        "/usr/bin/python3.11", "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--upgrade",
        "--target", "/p/python/deepstrata-deps/py3.11", "--constraint",
        "/p/python/deepstrata-deps/constraints-py3.11.txt", "onnxruntime>=1.17"]
    offline = _plan(wheels="/media/usb/wheels").command()
    assert offline[-4:] == ["--no-index", "--find-links", "/media/usb/wheels", "onnxruntime>=1.17"]
    assert "--break-system-packages" not in offline  # --target never touches Debian's managed Python
    assert shlex.split(_plan().shell_command()) == _plan().command()


def test_manual_command_per_platform():
    win = _plan(python=r"C:\Program Files\QGIS 3.40\apps\Python312\python.exe", system="Windows",
                target=r"C:\Users\a b\py3.12")
    text = manual_command(win)
    assert text.startswith("In the OSGeo4W Shell") and r'"C:\Program Files\QGIS 3.40\apps\Python312\python.exe"' in text
    assert r'"C:\Users\a b\py3.12"' in text
    assert manual_command(_plan(system="Darwin")).startswith("In Terminal")
    assert "/usr/bin/python3.11 -m pip install" in manual_command(_plan())


@pytest.mark.parametrize("output, kind", [
    ("WARNING: Retrying ... NewConnectionError('<...>: Failed to establish a new connection: [Errno -3] "
     "Temporary failure in name resolution')", "offline"),
    ("ProxyError('Cannot connect to proxy.', OSError('Tunnel connection failed: 407 Proxy Authentication'))",
     "proxy"),
    ("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed'))", "tls"),
    ("ERROR: Could not find a version that satisfies the requirement onnxruntime>=1.17 (from versions: none)\n"
     "ERROR: No matching distribution found for onnxruntime>=1.17", "no_wheel"),
    ("OSError: [Errno 28] No space left on device", "disk"),
    ("/usr/bin/python3: No module named pip", "no_pip"),
    ("ERROR: Cannot install onnx because these package versions have conflicting dependencies.\n"
     "ERROR: ResolutionImpossible", "conflict"),
    ("ERROR: something new", "unknown"),
])
def test_failures_are_classified(output, kind):
    failure = classify(output, "3.13")
    assert failure.kind == kind
    if kind == "no_wheel":
        assert "Python 3.13" in failure.advice
    if kind == "unknown":
        assert "ERROR: something new" in failure.advice


def test_status_of_requirements():
    class Module:
        __version__ = "1.16.3"

    def importer(name):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return Module

    assert check(ONNXRUNTIME, importer).state == "too old"
    assert check(ONNX, importer).state == "missing"
    Module.__version__ = "1.20.1"
    assert check(ONNXRUNTIME, importer).describe() == "onnxruntime 1.20.1: ok"

    def broken(name):
        raise ImportError("libonnxruntime.so: cannot open shared object file")

    assert check(ONNXRUNTIME, broken).state == "broken"
    assert version_tuple("1.17.3rc1") == (1, 17, 3) and version_tuple("x") == ()


def test_progress_is_monotone():
    fractions, p = [], 0.0
    for line in ["Collecting onnx", "  Downloading onnx.whl (9 MB)", "Collecting numpy==1.24.2",
                 "Installing collected packages: numpy, onnx", "Successfully installed onnx-1.23.2"]:
        p = progress_of(line, p)
        fractions.append(p)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_prune_removes_only_pinned_distributions(tmp_path):
    for name, files in (("numpy-1.24.2", ["numpy/__init__.py", "numpy.libs/x.so", "bin/f2py"]),
                        ("onnx-1.23.2", ["onnx/__init__.py", "bin/check-model"])):
        info = tmp_path / f"{name}.dist-info"
        info.mkdir()
        for f in files:
            (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / f).write_text("x")
        (info / "RECORD").write_text("".join(f"{f},sha256=x,1\n" for f in files) + f"{info.name}/RECORD,,\n")
    assert prune(tmp_path, ["NumPy"]) == ["numpy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "onnx", "onnx-1.23.2.dist-info"]
    assert [p.name for p in (tmp_path / "bin").iterdir()] == ["check-model"]


def test_manual_plan_is_what_a_user_types():
    """The hint's command: this platform's Python, the private folder, numpy pinned inline, no constraints file."""
    from deepstrata.dependencies import manual_plan

    plan = manual_plan("/home/a/profiles/default", facts=DEBIAN, pins={"numpy": "1.24.2"},
                       exists=lambda p: p == "/usr/bin/python3.11")
    assert plan.shell_command() == (
        "/usr/bin/python3.11 -m pip install --disable-pip-version-check --no-input --upgrade --target "
        "/home/a/profiles/default/python/deepstrata-deps/py3.11 'onnxruntime>=1.17' numpy==1.24.2")
    windows = manual_plan(r"C:\Users\a\profiles\default", facts=STANDALONE, pins={},
                          exists=lambda p: p.endswith("python.exe"))
    assert windows.command()[0] == r"C:\Program Files\QGIS 3.40.5\apps\Python312\python.exe"
    assert manual_plan("/p", facts=DEBIAN, pins={}, exists=lambda p: False).python == "python3"


def test_core_imports_no_qgis():
    import re
    from pathlib import Path

    import deepstrata.dependencies as deps

    pattern = re.compile(r"^\s*(from|import)\s+(qgis|PyQt5|PyQt6)\b", re.MULTILINE)
    assert [p.name for p in Path(deps.__file__).parent.glob("*.py") if pattern.search(p.read_text())] == []


def test_dask_is_installed_only_on_request():
    """dask.distributed (runs on a cluster) is reported but installed only when asked for ('Also for runs on a
    Dask cluster'): a package few need, and one the one-click install must not fail on."""
    statuses = [Status(ONNXRUNTIME, "missing"), Status(ONNX, "missing"), Status(DASK, "missing")]
    assert [s.requirement for s in needing_install(statuses)] == [ONNXRUNTIME, ONNX]
    assert [s.requirement for s in needing_install(statuses, on_request=True)] == [ONNXRUNTIME, ONNX, DASK]
    assert [s.requirement for s in needing_install(statuses, include_optional=False)] == [ONNXRUNTIME]
    assert DASK.spec() == "dask[distributed]>=2024.8"
    assert Status(DASK, "missing").describe() == "dask[distributed]: missing (optional)"
