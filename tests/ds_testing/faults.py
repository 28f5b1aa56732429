"""Shared machinery of the catalogue of bad inputs and faults (tests/*/test_catalogue_*.py).

- `Case`: one catalogue entry, what the user must be told (the problem and the fix, with the paths named) and
  what the run may write; `assert_told` checks a message against it.
- `Bench`: a fresh workspace per case (copies of the inputs, the models, an output folder holding *earlier
  outputs*) and `Snapshot`, which proves afterwards that every file there is byte-identical, that nothing was
  added but the outputs a case expects, and that no temporary (``.deepstrata-*``) remains.
- Fault injectors: a full disk (a 1 MiB tmpfs), read-only folders (read-only bind mounts), a case-folding file
  system, symbolic-link loops, truncated files; signals at chosen moments of a CLI run are in paused_cli.py.

Mounting needs root (CI runs as root); where a mount fails the test is skipped with the reason.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

REPO = Path(__file__).resolve().parents[2]
TEMP_PREFIX = ".deepstrata-"
TEMP_NAME = re.compile(r"^\.deepstrata-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-(?P<token>[0-9a-f]+)\."
                       r"(?P<role>partial|backup|journal|scratch)")


# ---------------------------------------------------------------------------------------------- snapshots

def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(*roots: Path) -> dict[str, str]:
    """Every entry below `roots` (hidden ones included, links not followed): file -> sha256, link -> its
    target, folder -> 'folder'."""
    found: dict[str, str] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder, name)
                if path.is_symlink():
                    found[str(path)] = "link -> " + os.readlink(path)
                elif path.is_dir():
                    found[str(path)] = "folder"
                elif path.is_file():
                    found[str(path)] = digest(path)
                else:  # a pipe, a device: never opened (a pipe would block)
                    found[str(path)] = f"special file, mode {path.lstat().st_mode:o}"
    return found


def temporaries(*roots: Path) -> list[str]:
    """Files DeepStrata stages under (``.deepstrata-*``), and the ``.partial`` files of older versions."""
    return sorted(str(Path(folder, n)) for root in roots for folder, dirs, files in os.walk(root)
                  for n in dirs + files if n.startswith(TEMP_PREFIX) or ".partial" in n)


def _statistics_items(root: Any) -> list[Any]:
    return [item for item in root.iter("MDI") if item.get("key", "").startswith("STATISTICS_")]


def qgis_statistics(path: str, earlier: bytes | None = None) -> bool:
    """Whether a new or changed file at `path` is only the band statistics QGIS itself stores when it opens a raster
    as a layer (for its default renderer; flushed when the layer is deleted): a new .aux.xml of STATISTICS_*
    items beside a raster, or a VRT (`earlier`: its bytes before) that differs only by such items. Any Processing
    algorithm, and opening the layer in QGIS, does this; DeepStrata never writes to an input."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return False
    if earlier is not None and path.endswith(".vrt"):
        def canonical(tree: Any) -> bytes:
            for metadata in list(tree.iter("Metadata")):
                for item in _statistics_items(metadata):
                    metadata.remove(item)
            for parent in list(tree.iter()):
                for child in list(parent):
                    if child.tag == "Metadata" and not len(child):
                        parent.remove(child)
            return ElementTree.tostring(tree)
        return canonical(root) == canonical(ElementTree.fromstring(earlier))
    if not path.endswith(".aux.xml") or not os.path.isfile(path[:-len(".aux.xml")]):
        return False
    # GDAL 3.10 (QGIS 3.40; not GDAL 3.6 under QGIS 3.22) writes a GeoPackage raster's own DataType item and band
    # descriptions into that file too: copies of what the GeoPackage says, not changes to it.
    gpkg = path.endswith(".gpkg.aux.xml")
    items = [item for item in root.iter("MDI") if not (gpkg and item.get("key") == "DataType")]
    tags = ("PAMDataset", "PAMRasterBand", "Metadata", "MDI") + (("Description",) if gpkg else ())
    others = [e.tag for e in root.iter() if e.tag not in tags]
    return bool(items) and len(items) == len(_statistics_items(root)) and not others


class Snapshot:
    """The files below `roots` now; `check` asserts that, after a run, all are byte-identical, none is gone and
    none is new except the `created` outputs (which must exist), and that no temporary remains. `tolerate(path,
    earlier=None)`: new files (and changed VRTs, with their earlier bytes) that are not the run's doing (QGIS's
    statistics of the rasters it opens as layers, see `qgis_statistics`)."""

    def __init__(self, *roots: Path, tolerate: Callable[..., bool] | None = None) -> None:
        self.roots = roots
        self.tolerate = tolerate or (lambda path, earlier=None: False)
        self.before = snapshot(*roots)
        self.vrts = {p: Path(p).read_bytes() for p in self.before if p.endswith(".vrt") and Path(p).is_file()}

    def check(self, created: Iterable[Path | str] = (), note: str = "") -> None:
        after = snapshot(*self.roots)
        made = {str(p) for p in created}
        left = temporaries(*self.roots)
        assert not left, f"temporaries left behind{note}: {left}"
        missing = sorted(p for p in made if p not in after)
        assert not missing, f"expected outputs missing{note}: {missing}"
        gone = sorted(set(self.before) - set(after))
        new = sorted(p for p in set(after) - set(self.before) - made if not self.tolerate(p))
        changed = sorted(p for p in set(self.before) & set(after) if self.before[p] != after[p] and p not in made
                         and not (p in self.vrts and self.tolerate(p, self.vrts[p])))
        assert not (gone or new or changed), (f"the run touched files it must not{note}: removed {gone}, "
                                              f"added {new}, modified {changed}")


def earlier_outputs(target: Path, sidecars: bool = True) -> list[Path]:
    """Files an earlier run left at raster destination `target` (and its .aux.xml and .qml): each of distinct
    content, so any replacement shows."""
    paths = [target] + ([Path(f"{target}.aux.xml"), target.with_suffix(".qml")] if sidecars else [])
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"earlier output kept at {p.name}\n".encode() * 8)
    return paths


# ---------------------------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    """One catalogue entry.

    `status`: the exit status (CLI, qgis_process) or the exception type (Processing) expected, 0 / None for a
    run that succeeds. `says`: fragments naming the problem (paths as ``{name}`` placeholders, filled from the
    workspace, see `Bench.names`); `fix`: fragments that tell the user what to do (a warning's, for a run that
    succeeds with one). `created`: the outputs the run writes (placeholders too); everything else in the workspace
    must stay byte-identical. `verify(bench)`: checks of their content. A failure that is not `late` must come
    before any work: no progress reported."""

    name: str
    build: Callable[..., Any]
    status: Any
    says: tuple[str, ...]
    fix: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    verify: Callable[..., None] | None = None  # more checks of what a successful run wrote
    late: bool = False  # fails during the work (a damaged block, the model's output, a full disk)

    def __str__(self) -> str:
        return self.name


def fill(texts: Iterable[str], names: dict[str, str]) -> list[str]:
    return [t.format(**names) for t in texts]


def assert_told(message: str, case: Case, names: dict[str, str]) -> None:
    """The message names the problem and the fix (every fragment of `says` and `fix`, placeholders filled), in
    plain words: no traceback."""
    for fragment in fill(case.says + case.fix, names):
        assert fragment in message, f"{case.name}: the message does not say {fragment!r}:\n{message}"
    assert "Traceback" not in message and "Exception ignored" not in message, f"{case.name}: a traceback:\n{message}"


@dataclass
class Bench:
    """A workspace: `inputs` (copies of the sample rasters), `models`, `out` (the output folder, holding earlier
    outputs at out/o.tif, its .aux.xml and out/o.qml unless `earlier` is False). `names` fills the placeholders of
    cases: {root}, {inputs}, {models}, {out}, and whatever a case's build adds."""

    root: Path
    inputs: Path = field(init=False)
    models: Path = field(init=False)
    out: Path = field(init=False)
    names: dict[str, str] = field(init=False)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # mounts, closed after the case

    def __post_init__(self) -> None:
        self.inputs, self.models, self.out = self.root / "inputs", self.root / "models", self.root / "out"
        for folder in (self.inputs, self.models, self.out):
            folder.mkdir(parents=True, exist_ok=True)
        self.names = {"root": str(self.root), "inputs": str(self.inputs), "models": str(self.models),
                      "out": str(self.out)}

    def copy(self, source: Path, name: str | None = None) -> Path:
        target = self.inputs / (name or source.name)
        shutil.copy(source, target)
        return target

    def earlier(self, name: str = "o.tif") -> list[Path]:
        return earlier_outputs(self.out / name)

    def name(self, key: str, value: Any) -> Any:
        """Record `value` (a path) as placeholder {key}; returns it."""
        self.names[key] = str(value)
        return value


# ---------------------------------------------------------------------------------------------- file faults

def symlink_loop(path: Path) -> Path:
    """`path` made a symbolic link to itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(path.name, path)
    return path


def truncated_copy(source: Path, target: Path, keep: float = 0.5) -> Path:
    """The first `keep` share of `source`'s bytes: a damaged file with a valid header."""
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * keep)])
    return target


def _mount(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("mount") is None:
        return subprocess.CompletedProcess(args, 1, "", "no mount command")
    return subprocess.run(["mount", *args], capture_output=True, text=True)


def _umount(path: Path) -> None:
    for _ in range(50):  # a process that just exited may hold it a moment longer
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (created): a disk that fills up."""
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    if done.returncode:
        pytest.skip(f"cannot mount a {size} tmpfs at {path} (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` (a folder) bind-mounted read-only over itself: root cannot write there either."""
    import pytest

    done = _mount("--bind", str(path), str(path))
    if done.returncode:
        pytest.skip(f"cannot bind-mount {path} (needs root): {done.stderr.strip()}")
    again = _mount("-o", "remount,bind,ro", str(path))
    if again.returncode:
        _umount(path)
        pytest.skip(f"cannot remount {path} read-only: {again.stderr.strip()}")
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def case_folding(path: Path) -> Iterator[Path]:
    """A folder on a file system that folds case (a tmpfs, or an ext4 image, with casefold) mounted at `path`;
    skipped where none can be made (the kernel needs CONFIG_UNICODE)."""
    import tempfile

    import pytest

    def first_line(text: str) -> str:
        return (text.strip().splitlines() or ["failed"])[0].split(": ")[-1]

    path.mkdir(parents=True, exist_ok=True)
    image = Path(tempfile.mkstemp(prefix="casefold-", suffix=".img")[1])  # outside the watched folders
    folder = path
    done = _mount("-t", "tmpfs", "-o", "casefold", "tmpfs", str(path))
    reasons = [f"tmpfs: {first_line(done.stderr)}"] if done.returncode else []
    if done.returncode:
        with open(image, "wb") as f:
            f.truncate(8 << 20)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "casefold", str(image)], capture_output=True,
                              text=True) if shutil.which("mkfs.ext4") else None
        done = _mount("-o", "loop", str(image), str(path)) if made and made.returncode == 0 else done
        if done.returncode:
            image.unlink(missing_ok=True)
            reasons.append(f"ext4: {first_line(done.stderr or (made.stderr if made else 'no mkfs.ext4'))}")
            pytest.skip("no case-folding file system can be mounted here: " + "; ".join(reasons))
        folder = path / "folded"
        folder.mkdir()
        subprocess.run(["chattr", "+F", str(folder)], capture_output=True)
    try:
        probe = folder / "Probe"
        probe.write_text("x")
        if not (folder / "pROBE").exists():
            pytest.skip(f"{folder} was mounted but does not fold case")
        probe.unlink()
        yield folder
    finally:
        _umount(path)
        image.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- inputs that are not rasters

def text_file(path: Path) -> Path:
    path.write_text("Field notes: the DEM is on the shared drive.\n", encoding="utf-8")
    return path


def empty(path: Path) -> Path:
    path.touch()
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def vector_geopackage(path: Path) -> Path:
    """A GeoPackage holding one point layer and no raster."""
    from osgeo import ogr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("points", None, ogr.wkbPoint)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POINT (1 2)"))
    layer.CreateFeature(feature)
    ds = None
    return path
