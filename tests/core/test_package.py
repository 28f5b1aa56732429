"""The plugin zip (make package): built from the checkout with git archive, it passes tools/check_package.py, and
the checker catches what would get the zip refused or leave its docs broken (synthetic zips)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_package", REPO / "tools" / "check_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _checker()

METADATA = """[general]
name=DeepStrata
qgisMinimumVersion=3.22
description=Run ONNX models over raster layers.
about=Runs models.
    A second line.
version=0.1.0
author=DeepStrata team
email=dev@example.org
repository=https://github.com/deepstrata/deepstrata
tracker=https://github.com/deepstrata/deepstrata/issues
homepage=https://github.com/deepstrata/deepstrata/blob/main/docs/index.md
icon=resources/icons/deepstrata.svg
experimental=True
deprecated=False
changelog=0.1.0
    - First.
"""

GOOD = {
    "__init__.py": "",
    "LICENSE": "Copyright ...\n\n                    GNU GENERAL PUBLIC LICENSE\n                       Version 2\n",
    "metadata.txt": METADATA,
    "resources/icons/deepstrata.svg": "<svg/>",
    "docs/images/shot.png": "png",
    "README.md": ("# DeepStrata\n[Guide](docs/index.md), [licence](LICENSE), [site](https://example.org/x.md), "
                  "[here](#deepstrata), [mail](mailto:a@example.org), ![shot](docs/images/shot.png \"a title\")\n"
                  "```bash\ncat [not a link](nowhere.md)\n```\nand `[code](nowhere.md)` is code.\n"),
    "docs/index.md": ("[Back](../README.md#deepstrata), [images](images/), [ref][r], <img src=\"images/shot.png\">\n\n"
                      "[r]: ../README.md\n"),
}


def make_zip(path: Path, files: dict[str, str], prefix: str = "deepstrata/") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(prefix + name, text)
    return path


def variant(changes: dict[str, str | None]) -> dict[str, str]:
    files = dict(GOOD)
    for name, text in changes.items():
        if text is None:
            files.pop(name, None)
        else:
            files[name] = text
    return files


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return check.check_zip(make_zip(tmp_path / "p.zip", files))


def test_the_built_zip_passes_the_checks(tmp_path: Path) -> None:
    """What make package publishes, built from the checkout's tracked files (HEAD in a fresh clone)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tree = check.worktree_tree(REPO)
    out = check.build(REPO, tree, tmp_path / "deepstrata.zip")
    assert check.check_zip(out) == []
    names = set(zipfile.ZipFile(out).namelist())
    for expected in ("deepstrata/LICENSE", "deepstrata/THIRD_PARTY.md", "deepstrata/metadata.txt",
                     "deepstrata/docs/architecture.md", "deepstrata/resources/samples/bigtujunga_dem.tif"):
        assert expected in names
    assert not any(n.startswith(("deepstrata/training/", "deepstrata/tests/", "deepstrata/benchmarks/",
                                 "deepstrata/tools/")) for n in names)


def test_the_license_is_the_gpl_2_or_later() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "either version 2 of the License, or (at your option) any later version" in " ".join(text.split())
    assert "GNU GENERAL PUBLIC LICENSE\n                       Version 2, June 1991" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_a_good_zip_passes(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GOOD) == []


@pytest.mark.parametrize(("files", "expected"), [
    (variant({"README.md": "[Architecture](docs/architecture.md)"}), "README.md: link 'docs/architecture.md'"),
    (variant({"docs/index.md": "![x](images/missing.png)"}), "docs/index.md: link 'images/missing.png'"),
    (variant({"docs/index.md": "[x](../../outside.md)"}), "leaves the plugin folder"),
    (variant({"docs/index.md": "[x](/docs/index.md)"}), "absolute link"),
    (variant({"docs/index.md": "[r]: ../training/README.md\n"}), "training/README.md, which is not in the zip"),
    (variant({"docs/index.md": '<a href="gone.md">x</a>'}), "docs/gone.md, which is not in the zip"),
])
def test_a_broken_link_is_caught(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    problems = problems_of(tmp_path, files)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_missing_or_wrong_licence_is_caught(tmp_path: Path) -> None:
    files = variant({"LICENSE": None, "README.md": "# DeepStrata\n[licence](LICENSE)\n"})
    assert problems_of(tmp_path, files) == ["deepstrata/LICENSE is missing (the QGIS plugin repository requires a "
                                            "GPL-compatible licence)",
                                            "README.md: link 'LICENSE' points at LICENSE, which is not in the zip"]
    assert problems_of(tmp_path, variant({"LICENSE": "MIT License\n"})) == ["deepstrata/LICENSE is not the GNU GPL"]


@pytest.mark.parametrize("field", check.REQUIRED)
def test_a_missing_metadata_field_is_caught(tmp_path: Path, field: str) -> None:
    lines = METADATA.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(field + "="))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    problems = problems_of(tmp_path, variant({"metadata.txt": "".join(lines[:start] + lines[end:])}))
    assert f"metadata.txt: required field {field} is missing or empty" in problems


def _metadata(old: str, new: str) -> dict[str, str]:
    assert old in METADATA
    return variant({"metadata.txt": METADATA.replace(old, new)})


@pytest.mark.parametrize(("files", "expected"), [
    (_metadata("tracker=https://github.com/deepstrata/deepstrata/issues", "tracker=github.com/deepstrata"),
     "tracker='github.com/deepstrata' is not a well-formed http(s) URL"),
    (_metadata("repository=https://github.com/deepstrata/deepstrata", "repository=https://localhost"),
     "repository='https://localhost' is not a well-formed"),
    (_metadata("name=DeepStrata", "name=DeepStrata plugin"), "repeats 'plugin'"),
    (_metadata("version=0.1.0", "version=0.2.0"), "changelog does not start with the version '0.2.0'"),
    (_metadata("version=0.1.0", "version=v1"), "version='v1' is not a version"),
    (_metadata("qgisMinimumVersion=3.22", "qgisMinimumVersion=3.x"), "qgisMinimumVersion='3.x'"),
    (_metadata("email=dev@example.org", "email=dev"), "email='dev' is not an e-mail address"),
    (_metadata("experimental=True", "experimental=maybe"), "experimental='maybe' is not True or False"),
    (_metadata("icon=resources/icons/deepstrata.svg", "icon=icon.png"), "icon='icon.png' is not in the zip"),
    (_metadata("about=Runs models.", "about=Flags 0.05 % of cells."), "about has a '%'"),
    (variant({"metadata.txt": "name=DeepStrata\n"}), "metadata.txt does not parse"),
    (variant({"metadata.txt": None}), "deepstrata/metadata.txt is missing"),
])
def test_bad_metadata_is_caught(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    problems = problems_of(tmp_path, files)
    assert problems and all(p.startswith(("metadata.txt", "deepstrata/metadata.txt")) for p in problems), problems
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("extra", "expected"), [
    ("training/segment.py", "a training/ folder"),
    ("tests/core/test_x.py", "a tests/ folder"),
    ("benchmarks/RESULTS.md", "a benchmarks/ folder"),
    ("processing/__init__.py", "a processing/ folder"),
    ("inference/__pycache__/cli.cpython-311.pyc", "a __pycache__/ folder"),
    ("Makefile", "a development file"),
    ("requirements-dev.txt", "a development file"),
    ("test_package.py", "a development file"),
])
def test_development_files_are_caught(tmp_path: Path, extra: str, expected: str) -> None:
    problems = problems_of(tmp_path, variant({extra: "x"}))
    assert problems == [f"{extra}: {expected} does not belong in the plugin zip"]


def test_files_outside_the_plugin_folder_are_caught(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "p.zip", GOOD)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("stray.txt", "x")
    assert check.check_zip(path) == ["stray.txt: outside the top folder deepstrata/"]


def test_the_command_line_fails_on_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main: Callable[[list[str]], int] = check.main
    assert main([str(make_zip(tmp_path / "good.zip", GOOD))]) == 0
    assert main([str(make_zip(tmp_path / "bad.zip", variant({"LICENSE": None})))]) == 1
    assert "LICENSE is missing" in capsys.readouterr().err
    done = subprocess.run(["python3", str(REPO / "tools" / "check_package.py"), str(tmp_path / "bad.zip")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "not fit to publish" in done.stderr
