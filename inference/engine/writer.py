"""Streamed GeoTIFF output: a temporary file beside the target, written block row by block row, renamed on success."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from osgeo import gdal

from .card import ClassInfo
from .errors import OutputError
from .style import rgba

gdal.UseExceptions()

BLOCK = 256
FLOAT_NODATA = float(np.finfo(np.float32).min)
_GDAL_TYPES = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.uint16): gdal.GDT_UInt16,
               np.dtype(np.float32): gdal.GDT_Float32}


@dataclass
class RasterTarget:
    """What one output raster holds."""

    path: str
    dtype: np.dtype
    nodata: float
    descriptions: Sequence[str]
    classes: Sequence[ClassInfo] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def bands(self) -> int:
        return len(self.descriptions)


def check_output_path(path: str, input_path: str | None = None) -> None:
    """Fail early, before any work, if `path` cannot be written."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        raise OutputError(f"Output '{path}' must be a GeoTIFF: use a .tif file name.")
    if input_path and os.path.exists(path) and os.path.samefile(path, input_path):
        raise OutputError(f"Output '{path}' is the input raster; inputs are never overwritten. "
                          "Choose another output path.")
    check_output_folder(path)


def check_output_folder(path: str) -> None:
    """OutputError unless the folder of `path` exists and a file can be created in it."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"Output folder '{folder}' does not exist. Create it or choose another output path.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deepstrata-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"Cannot write to output folder '{folder}' ({exc.strerror}). "
                          "Choose a folder you can write to.") from exc


class RasterWriter:
    """One output GeoTIFF: tiled, compressed, BIGTIFF when needed; complete under its name only after commit()."""

    def __init__(self, target: RasterTarget, width: int, height: int, geotransform: Sequence[float],
                 projection: str) -> None:
        self.target = target
        final = Path(target.path)
        fd, tmp = tempfile.mkstemp(dir=final.parent or ".", prefix=f".{final.stem}.partial-", suffix=".tif")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        self.tmp = tmp
        # Measured on 2048x2048 outputs: LZW is the fastest and smallest for class rasters; DEFLATE level 1
        # with the floating-point predictor for scores. Both are readable everywhere.
        self.is_float = target.dtype == np.float32
        codec = ["COMPRESS=DEFLATE", "ZLEVEL=1", "PREDICTOR=3"] if self.is_float else ["COMPRESS=LZW"]
        options = ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "BIGTIFF=IF_SAFER"] + codec
        try:
            driver = gdal.GetDriverByName("GTiff")
            self.ds = driver.Create(tmp, width, height, target.bands, _GDAL_TYPES[np.dtype(target.dtype)], options)
        except RuntimeError as exc:
            self._remove()
            raise OutputError(f"Cannot create '{target.path}': {str(exc).strip()}. "
                              "Check the disk space and the output path.") from exc
        self.ds.SetGeoTransform(list(geotransform))
        if projection:
            self.ds.SetProjection(projection)
        for i, text in enumerate(target.descriptions, start=1):
            band = self.ds.GetRasterBand(i)
            band.SetNoDataValue(target.nodata)
            band.SetDescription(text)
        if target.classes:
            self._set_classes(self.ds.GetRasterBand(1), target.classes)
        for key, value in target.metadata.items():
            self.ds.SetMetadataItem(key, value)
        self.lo = np.full(target.bands, np.inf)
        self.hi = np.full(target.bands, -np.inf)
        self.total = np.zeros(target.bands)
        self.total_sq = np.zeros(target.bands)
        self.count = np.zeros(target.bands)

    @staticmethod
    def _set_classes(band: gdal.Band, classes: Sequence[ClassInfo]) -> None:
        top = max(c.value for c in classes)
        table = gdal.ColorTable()
        table.SetColorEntry(0, (0, 0, 0, 0))
        names = [""] * (top + 1)
        for c in classes:
            table.SetColorEntry(c.value, rgba(c.color))
            names[c.value] = c.name
            band.SetMetadataItem(f"CLASS_{c.value}", c.name)
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
        band.SetCategoryNames(names)

    def write(self, x: int, y: int, array: np.ndarray) -> None:
        """Write (bands, h, w) at column x, row y; keep running statistics of valid values of float bands."""
        for i in range(self.target.bands):
            self.ds.GetRasterBand(i + 1).WriteArray(array[i], x, y)
        self.ds.FlushCache()  # compress and write these complete blocks now, rather than hold them in GDAL's cache
        if self.is_float:
            for i in range(self.target.bands):
                self._count(i, array[i])

    def _count(self, band: int, values: np.ndarray) -> None:
        valid = values[values != self.target.nodata]
        if valid.size:
            self.lo[band] = min(self.lo[band], float(valid.min()))
            self.hi[band] = max(self.hi[band], float(valid.max()))
            self.total[band] += float(valid.sum(dtype=np.float64))
            self.total_sq[band] += float(np.square(valid, dtype=np.float64).sum())
            self.count[band] += valid.size

    def statistics(self, band: int) -> tuple[float, float, float, float] | None:
        """(min, max, mean, std) of the valid values written to `band` (0-based), or None if all were nodata."""
        n = self.count[band]
        if not n:
            return None
        mean = self.total[band] / n
        std = float(np.sqrt(max(self.total_sq[band] / n - mean * mean, 0.0)))
        return float(self.lo[band]), float(self.hi[band]), float(mean), std

    def commit(self, style_xml: str | None = None) -> str:
        """Finish the file and move it (with its .aux.xml and QML style) to the target name."""
        for i in range(self.target.bands):
            stats = self.statistics(i)
            if stats:
                self.ds.GetRasterBand(i + 1).SetStatistics(*stats)
        self.ds.FlushCache()
        self.ds = None
        final = self.target.path
        for suffix in (".aux.xml",):
            if os.path.exists(self.tmp + suffix):
                os.replace(self.tmp + suffix, final + suffix)
            elif os.path.exists(final + suffix):
                os.remove(final + suffix)  # a stale sidecar of an earlier run would describe the wrong file
        qml = str(Path(final).with_suffix(".qml"))
        if style_xml:
            Path(qml).write_text(style_xml, encoding="utf-8")
        os.replace(self.tmp, final)
        return qml if style_xml else ""

    def abort(self) -> None:
        """Drop the partial file: after an error or a cancel nothing is left behind."""
        self.ds = None
        self._remove()

    def _remove(self) -> None:
        for path in (self.tmp, self.tmp + ".aux.xml"):
            if os.path.exists(path):
                os.remove(path)


class BlockRowBuffer:
    """Collects finished rows of one column chunk and writes them to the writers a whole block row at a time."""

    def __init__(self, writers: Sequence[RasterWriter], x: int, width: int) -> None:
        self.writers, self.x, self.width = writers, x, width
        self.parts: list[list[np.ndarray]] = [[] for _ in writers]
        self.y = 0  # first row held
        self.rows = 0

    def push(self, arrays: Sequence[np.ndarray]) -> None:
        for part, array in zip(self.parts, arrays):
            part.append(array)
        self.rows += arrays[0].shape[1]
        if self.rows >= BLOCK and (self.y + self.rows) // BLOCK > self.y // BLOCK:
            self._write(((self.y + self.rows) // BLOCK) * BLOCK - self.y)

    def flush(self) -> None:
        if self.rows:
            self._write(self.rows)

    def _write(self, count: int) -> None:
        for i, writer in enumerate(self.writers):
            rows = np.concatenate(self.parts[i], axis=1)
            writer.write(self.x, self.y, rows[:, :count])
            self.parts[i] = [rows[:, count:]] if count < rows.shape[1] else []
        self.y += count
        self.rows -= count
