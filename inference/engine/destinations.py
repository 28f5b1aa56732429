"""Every destination of a run, checked before any work: writable, a supported format, no two the same file, and
none a file the run reads.

A destination is an output the user named (a raster, a vector layer, a table). Each writes its file and sidecars
(``.aux.xml``, ``.qml``, a shapefile's parts), so two outputs collide when any of those coincide. Paths are compared
after resolving symlinks, and without case where the folder's file system folds case. The messages name both
paths and say what to choose instead.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from osgeo import gdal

from .errors import DestinationError, OutputError
from .reads import Read

gdal.UseExceptions()

RASTER_SUFFIXES = (".tif", ".tiff")
VECTOR_DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
                  ".fgb": "FlatGeobuf", ".csv": "CSV"}
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd")
_OGR_URI = re.compile(r"""^ogr:dbname='(?P<path>(?:[^']|'')*)'\s+table="(?P<layer>(?:[^"]|"")*)"(?:\s*\(.*\))?\s*$""")


def shown(path: str, limit: int = 160) -> str:
    """A path for a message: whole when short, else its start and end around an ellipsis."""
    return path if len(path) <= limit else f"{path[:limit // 2 - 2]}...{path[-(limit // 2 - 1):]}"


@dataclass(frozen=True)
class Destination:
    """One output: `path` is the file written; `layer` names a layer added to (or replaced in) an existing
    container such as a GeoPackage, whose other layers are kept."""

    path: str
    label: str  # how the user calls it: "OUTPUT", "--confidence", "the output"
    kind: str = "raster"  # raster | vector | table
    layer: str | None = None

    def files(self) -> list[str]:
        """The file and the sidecars this destination writes."""
        p = Path(self.path)
        if self.kind == "raster":
            return [self.path, self.path + ".aux.xml", str(p.with_suffix(".qml"))]
        if p.suffix.lower() == ".shp":
            return [str(p.with_suffix(s)) for s in SHAPEFILE_PARTS]
        return [self.path]

    def describe(self) -> str:
        return f"{self.label} '{shown(self.path)}'" + (f" (layer '{self.layer}')" if self.layer else "")


def parse_vector_destination(value: str) -> tuple[str, str | None]:
    """(file, layer) of a vector destination: a plain path, QGIS's ``ogr:dbname='x.gpkg' table="name" (geom)``
    or ``x.gpkg|layername=name``; layer None for a plain path (the file is written whole)."""
    match = _OGR_URI.match(value.strip())
    if match:
        return match["path"].replace("''", "'"), match["layer"].replace('""', '"')
    if "|layername=" in value:
        path, _, rest = value.partition("|layername=")
        return path, rest.split("|", 1)[0] or None
    return value, None


@lru_cache(maxsize=64)
def vector_driver(suffix: str) -> str | None:
    """The OGR driver that writes files ending in `suffix` (ours first, else any GDAL driver that creates them)."""
    suffix = suffix.lower()
    if suffix in VECTOR_DRIVERS:
        return VECTOR_DRIVERS[suffix]
    for i in range(gdal.GetDriverCount() if suffix else 0):
        meta = gdal.GetDriver(i).GetMetadata() or {}
        extensions = (meta.get("DMD_EXTENSIONS") or meta.get("DMD_EXTENSION") or "").lower().split()
        if meta.get("DCAP_VECTOR") == "YES" and meta.get("DCAP_CREATE") == "YES" and suffix[1:] in extensions:
            return str(gdal.GetDriver(i).ShortName)
    return None


def _limit(folder: str, name: str, default: int) -> int:
    try:
        return int(os.pathconf(folder, name))
    except (OSError, ValueError):
        return default


@lru_cache(maxsize=1)
def gdal_path_limit() -> int | None:
    """The longest file path, in bytes, that GDAL can list the files of (GetFileList, which QGIS and the engine
    use), or None without a limit. GDAL 3.6 builds file names in a 2048-byte buffer, so a raster whose path
    with '.aux.xml' exceeds 2046 bytes cannot be read back ("Destination buffer too small"). Probed once, in
    memory."""
    name = "/vsimem/deepstrata-path-probe-" + "p" * 2100 + ".tif"
    ds = None
    try:
        ds = gdal.GetDriverByName("GTiff").Create(name, 1, 1)
        ds = None
        ds = gdal.Open(name)
        ds.GetFileList()
        return None
    except RuntimeError:
        return 2046
    finally:
        ds = None
        gdal.Unlink(name)


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        try:
            if parent.is_dir():
                return parent
        except OSError:  # a path longer than the system allows (ENAMETOOLONG): its parents may exist
            continue
    return Path("/")


@lru_cache(maxsize=256)
def _folds_case(folder: str) -> bool:
    """Whether the file system of `folder` treats 'a' and 'A' as one name (probed with a temporary file)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deepstrata-case-") as probe:
            name = os.path.basename(probe.name)
            return os.path.exists(os.path.join(folder, name.swapcase()))
    except OSError:
        return False


def _key(path: str) -> str:
    """A comparable identity for `path`: symlinks resolved, case folded where the file system folds it."""
    real = os.path.realpath(os.path.abspath(path))
    folder = os.path.dirname(real)
    return real.casefold() if os.path.isdir(folder) and _folds_case(folder) else real


def _same(a: str, b: str) -> bool:
    if _key(a) == _key(b):
        return True
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _check_format(dest: Destination) -> None:
    suffix = Path(dest.path).suffix.lower()
    if dest.kind == "raster" and suffix not in RASTER_SUFFIXES:
        raise OutputError(f"{dest.describe()} must be a GeoTIFF: use a file name ending in .tif.")
    if dest.kind in ("vector", "table") and vector_driver(suffix) is None:
        shown = ".gpkg, .csv" if dest.kind == "table" else ".gpkg, .shp, .geojson, .fgb"
        raise OutputError(f"{dest.describe()} has an unsupported extension '{suffix}': use {shown} or another "
                          "format GDAL can create (a GeoPackage, .gpkg, unless you need another).")
    if dest.layer and vector_driver(suffix) != "GPKG":
        raise OutputError(f"{dest.describe()} asks for a layer inside a '{suffix}' file; only GeoPackages (.gpkg) "
                          "hold several layers. Write a file of its own instead.")


def check_destination(dest: Destination) -> None:
    """OutputError unless `dest` can be written: a name, not too long, not a folder or a symlink loop, in an
    existing writable folder, in a supported format."""
    if not dest.path or not dest.path.strip():
        raise OutputError(f"No file name given for {dest.label}. Choose where to write it.")
    path = Path(os.path.abspath(dest.path))
    anchor = str(_existing_ancestor(path))
    longest = max(len(os.fsencode(os.path.basename(f))) for f in dest.files())
    name_max, path_max = _limit(anchor, "PC_NAME_MAX", 255), _limit(anchor, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(path))) >= path_max:
        raise OutputError(f"The path of {dest.label} is {len(os.fsencode(str(path)))} bytes long, but this file "
                          f"system allows at most {path_max - 1}. Choose a shorter folder or file name.")
    gdal_max = gdal_path_limit()
    with_sidecars = max(len(os.fsencode(os.path.abspath(f))) for f in dest.files())
    if gdal_max and with_sidecars > gdal_max:
        raise OutputError(f"The path of {dest.label} is {len(os.fsencode(str(path)))} bytes long ({with_sidecars} "
                          f"with its sidecar files), but GDAL {gdal.__version__} reads back only files whose path "
                          f"is at most {gdal_max} bytes. Choose a shorter folder or file name.")
    if longest > name_max:
        raise OutputError(f"The file name of {dest.label} ('{path.name[:40]}...', {len(os.fsencode(path.name))} "
                          f"bytes) is too long: with its sidecar files it needs {longest} bytes, and this file "
                          f"system allows {name_max}. Choose a shorter file name.")
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"{dest.describe()} is a symbolic link that loops back on itself. Remove the link "
                              "or choose another file name.") from exc
    if path.is_dir():
        raise OutputError(f"{dest.describe()} is a folder, not a file. Give a file name inside it, for example "
                          f"'{path / ('output' + (RASTER_SUFFIXES[0] if dest.kind == 'raster' else '.gpkg'))}'.")
    if path.exists() and not path.is_file():
        raise OutputError(f"{dest.describe()} exists and is not a regular file (a device or a pipe). Choose a "
                          "file name.")
    _check_format(dest)
    check_output_folder(str(path), dest.label)


def check_output_folder(path: str, label: str = "The output") -> None:
    """OutputError unless the folder of `path` exists and a file can be created in it."""
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"The folder of {label}, '{shown(str(folder))}', {what}. Create it or choose another "
                          "output path.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deepstrata-probe-"):
            pass
    except OSError as exc:
        reason = "it is on a read-only file system" if exc.errno == errno.EROFS else exc.strerror
        raise OutputError(f"Cannot write into '{shown(str(folder))}' for {label} ({reason}). Choose a folder you "
                          "can write to.") from exc


def check_destinations(destinations: Sequence[Destination], reads: Iterable[Read] = ()) -> None:
    """Check each destination (see check_destination), then that no two write the same file and that none
    writes a file the run reads. Raises OutputError naming both paths and what to do instead."""
    for dest in destinations:
        check_destination(dest)
    owners: dict[str, tuple[Destination, str]] = {}
    for dest in destinations:
        for f in dest.files():
            other = owners.get(_key(f))
            if other is not None and other[0] is not dest and not _layers_side_by_side(other[0], dest):
                raise DestinationError(_collision(other[0], dest, f))
            owners[_key(f)] = (dest, f)
    reads = list(reads)
    for dest in destinations:
        for f in dest.files():
            for read in reads:
                if _same(f, read.path):
                    raise DestinationError(_overwrites(dest, f, read))


def _layers_side_by_side(a: Destination, b: Destination) -> bool:
    """Two layers of different names in one GeoPackage: both are written into the same staged copy."""
    return bool(a.layer and b.layer and a.layer != b.layer)


def _collision(first: Destination, second: Destination, file: str) -> str:
    if first.layer and first.layer == second.layer:
        return (f"{first.label} and {second.label} are the same layer '{first.layer}' of '{first.path}'. Give each "
                "output its own layer name.")
    if _same(first.path, second.path):
        return (f"{first.label} and {second.label} are the same file ('{shown(second.path)}'), so one would "
                "replace the other. Give each output its own file name.")
    return (f"{first.describe()} and {second.describe()} would both write '{shown(file)}'. Give them names that "
            "differ by more than the extension.")


def _overwrites(dest: Destination, file: str, read: Read) -> str:
    which = "is" if _same(file, dest.path) else f"would write '{shown(file)}', which is"
    return (f"{dest.describe()} {which} {read.what} ('{shown(read.path)}'), a file this run reads. Outputs never "
            "overwrite inputs: choose another file name or folder for the output.")
