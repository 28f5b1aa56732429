"""Streamed GeoTIFF output, written block row by block row under a staged name (staging.py), made a
Cloud-Optimized GeoTIFF with overviews at the commit unless the staging asks for a plain tiled one (geotiff.py)."""
from __future__ import annotations

import errno
import inspect
import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from osgeo import gdal

from .card import ClassInfo
from .errors import CancelledError, DiskFullError, OutputError
from .geotiff import cog_options, cog_settings, colour_arguments, gtiff_options, overview_resampling
from .progress import doing
from .staging import Staging
from .style import rgba
from .targets import BLOCK as BLOCK, FLOAT_NODATA as FLOAT_NODATA, RasterTarget  # the first two for writers' users

gdal.UseExceptions()
log = logging.getLogger(__name__)

LOW_SPACE = 1 << 20  # below this much free space a failed write is reported as a full disk
_GDAL_TYPES = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.uint16): gdal.GDT_UInt16,
               np.dtype(np.float32): gdal.GDT_Float32}


def human_size(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


_CLOSING = threading.Lock()
_GENERATOR = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def release(owner: Any, attribute: str = "ds", failure: BaseException | None = None) -> RuntimeError | None:
    """Set ``owner.<attribute>`` to None, closing the GDAL/OGR dataset it held, and return the error GDAL raised
    while closing it (flushing the last blocks onto a full disk, say), which Python could otherwise only print, as
    "Exception ignored in: delete_Dataset" with a traceback. `failure`: the exception being handled; the frames of
    GDAL's Python wrappers in its traceback still hold the dataset, so they are cleared first and it closes here."""
    seen: set[int] = set()
    while failure is not None and id(failure) not in seen:
        seen.add(id(failure))
        tb = failure.__traceback__
        while tb is not None:
            if not tb.tb_frame.f_code.co_flags & _GENERATOR:  # clearing a generator's frame would close it
                try:
                    tb.tb_frame.clear()
                except RuntimeError:  # a frame still running (a caller up the stack)
                    pass
            tb = tb.tb_next
        failure = failure.__cause__ or failure.__context__
    caught: list[RuntimeError] = []
    with _CLOSING:
        previous = sys.unraisablehook

        def hook(unraisable: Any) -> None:
            if isinstance(unraisable.exc_value, RuntimeError):
                caught.append(unraisable.exc_value)
            else:
                previous(unraisable)

        sys.unraisablehook = hook
        try:
            setattr(owner, attribute, None)
        finally:
            sys.unraisablehook = previous
    return caught[0] if caught else None


def _size(path: str) -> int:
    """Bytes in a file, or in the files of a folder."""
    if os.path.isdir(path):
        return sum(_size(os.path.join(path, name)) for name in os.listdir(path))
    return os.path.getsize(path) if os.path.isfile(path) else 0


def write_failed(exc: BaseException, path: str, needed: int, staging: Staging | None = None,
                 own: str | None = None) -> OutputError:
    """The error for a failed write of `path` (staged at `own`): a full disk says how much the run needs and how
    much is free, both counting the files `staging` holds on that disk (freed when they are dropped)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(folder).free
        disk = os.stat(folder).st_dev
        staged = {f: _size(f) for f in (staging.temporaries if staging else []) if os.path.lexists(f)
                  and os.lstat(f).st_dev == disk}
    except OSError:
        free, staged = -1, {}
    text = (getattr(exc, "strerror", None) or str(exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    if getattr(exc, "errno", None) == errno.ENOSPC or "space" in text.lower() or 0 <= free < LOW_SPACE:
        others = sum(size for f, size in staged.items() if f != own)
        more = f", {human_size(needed + others)} with the run's other outputs," if others else ""
        free += sum(staged.values())
        return DiskFullError(f"The disk holding '{folder}' is full: '{os.path.basename(path)}' needs up to "
                             f"{human_size(needed)} (uncompressed){more} and {human_size(max(free, 0))} is free. "
                             "Free some space there or write the output to another disk. Earlier files are "
                             "unchanged.")
    return OutputError(f"Could not write '{path}' ({text}). Check the output folder and its free space.")


PALETTE_BANDS = 2  # GeoTIFF refuses a colour table in a file of more bands ("not supported for multi-sample")


def _layers_not_colours(bands: int) -> list[str]:
    """Creation options that keep 3 or 4 bands of bytes (several class outputs) from being read as RGB(A)."""
    return ["PHOTOMETRIC=MINISBLACK"] if bands >= 3 else []


class RasterWriter:
    """One output GeoTIFF (tiled, compressed, BIGTIFF when needed), written under a staged name.

    A context manager: a clean exit finishes the file (statistics, style) and hands it, with its .aux.xml and
    .qml, to the staging, which commits it with the run's other outputs; an exception drops it. In a staging whose
    output format is 'cog' the commit first rewrites the file as a Cloud-Optimized GeoTIFF with overviews
    (`make_cog`).
    """

    def __init__(self, staging: Staging, target: RasterTarget, width: int, height: int,
                 geotransform: Sequence[float], projection: str) -> None:
        self.staging, self.target = staging, target
        self.style_xml: str | None = None
        self.tmp = staging.file(target.path, ".tif")
        self.needed = width * height * target.bands * np.dtype(target.dtype).itemsize
        self.is_float = target.dtype == np.float32
        try:
            driver = gdal.GetDriverByName("GTiff")
            self.ds = driver.Create(self.tmp, width, height, target.bands, _GDAL_TYPES[np.dtype(target.dtype)],
                                    gtiff_options(target.dtype) + _layers_not_colours(target.bands))
        except RuntimeError as exc:
            raise write_failed(exc, target.path, self.needed, staging, self.tmp) from exc
        self.ds.SetGeoTransform(list(geotransform))
        if projection:
            self.ds.SetProjection(projection)
        for i, text in enumerate(target.descriptions, start=1):
            band = self.ds.GetRasterBand(i)
            band.SetNoDataValue(target.nodata)
            band.SetDescription(text)
            classes = target.band_classes[i - 1] if i <= len(target.band_classes) else ()
            if classes:
                self._set_classes(band, classes, palette=target.bands <= PALETTE_BANDS)
        for key, value in {**staging.metadata(), **target.metadata}.items():
            self.ds.SetMetadataItem(key, value)
        self.lo = np.full(target.bands, np.inf)
        self.hi = np.full(target.bands, -np.inf)
        self.total = np.zeros(target.bands)
        self.total_sq = np.zeros(target.bands)
        self.count = np.zeros(target.bands)

    def __enter__(self) -> "RasterWriter":
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is None:
            self.finish()
        else:
            release(self, failure=value)  # a failure closing a file that is dropped anyway is not news

    @staticmethod
    def _set_classes(band: gdal.Band, classes: Sequence[ClassInfo], palette: bool = True) -> None:
        """Category names and CLASS_<n> metadata on every class band; the colour table on band 1 only, and only
        with `palette` (GeoTIFF holds one, and only in a file of one or two bands; the QML style carries the
        colours of band 1 in any case, the other bands keep their names)."""
        top = max(c.value for c in classes)
        names = [""] * (top + 1)
        for c in classes:
            names[c.value] = c.name
            band.SetMetadataItem(f"CLASS_{c.value}", c.name)
        band.SetCategoryNames(names)
        if band.GetBand() != 1 or not palette:
            return
        table = gdal.ColorTable()
        table.SetColorEntry(0, (0, 0, 0, 0))
        for c in classes:
            table.SetColorEntry(c.value, rgba(c.color))
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)

    def write(self, x: int, y: int, array: np.ndarray) -> None:
        """Write (bands, h, w) at column x, row y; keep running statistics of valid values of float bands."""
        try:
            for i in range(self.target.bands):
                self.ds.GetRasterBand(i + 1).WriteArray(array[i], x, y)
            self.ds.FlushCache()  # compress and write these complete blocks now, rather than hold them in GDAL's cache
        except RuntimeError as exc:
            raise write_failed(exc, self.target.path, self.needed, self.staging, self.tmp) from exc
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

    def finish(self) -> None:
        """Close the file with its statistics and stage it (and its .aux.xml and .qml) for the commit."""
        final = self.target.path
        try:
            for i in range(self.target.bands):
                stats = self.statistics(i)
                if stats:
                    self.ds.GetRasterBand(i + 1).SetStatistics(*stats)
            self.ds.FlushCache()
        except RuntimeError as exc:
            release(self, failure=exc)
            raise write_failed(exc, final, self.needed, self.staging, self.tmp) from exc
        closing = release(self)
        if closing is not None:
            raise write_failed(closing, final, self.needed, self.staging, self.tmp)
        self._stage(self.tmp)
        if self.staging.output_format == "cog":
            self.staging.at_commit(final, self.make_cog)
        if self.style_xml:
            qml = self.staging.file(self.style_path, ".qml")
            try:
                Path(qml).write_text(self.style_xml, encoding="utf-8")
            except OSError as exc:
                raise write_failed(exc, self.style_path, len(self.style_xml), self.staging, qml) from exc
            self.staging.add(self.style_path, qml)

    def _stage(self, path: str, again: bool = False) -> None:
        """Stage `path` for the target, with its .aux.xml (category names, band descriptions); `again`: in place of
        the file staged before (keeping its place in the commit's order)."""
        stage = self.staging.restage if again else self.staging.add
        stage(self.target.path, path)
        aux = path + ".aux.xml"
        # without a new sidecar, a stale one of an earlier run would describe the wrong file: it is removed
        stage(self.target.path + ".aux.xml", aux if os.path.exists(aux) else None)

    def make_cog(self) -> None:
        """Rewrite the staged tiled file as a Cloud-Optimized GeoTIFF with internal overviews (NEAREST for
        classes, AVERAGE for scores), staged in its place: the same pixels, compression, metadata, colour table,
        category names and statistics. GDAL copies it block by block with a small block cache (flat memory,
        geotiff.cog_settings) and polls the staging's cancel; a failure or a cancel leaves nothing of it behind."""
        final, source = self.target.path, self.staging.current(self.target.path)
        cog = self.staging.file(final, ".tif")
        resampling = overview_resampling(self.target.dtype, bool(self.target.band_classes))
        log.info("Writing '%s' as a Cloud-Optimized GeoTIFF (overviews: %s)", os.path.basename(final),
                 resampling.lower())
        doing(f"Writing '{os.path.basename(final)}' as a Cloud-Optimized GeoTIFF with overviews")

        def callback(complete: float, message: object, data: object) -> int:
            return 0 if self.staging.is_cancelled() else 1

        src = None
        try:
            with cog_settings():
                src = gdal.Open(source)
                options = gdal.TranslateOptions(options=colour_arguments(src), format="COG", callback=callback,
                                                creationOptions=cog_options(self.target.dtype, resampling))
                self.ds = gdal.Translate(cog, src, options=options)
        except RuntimeError as exc:
            release(self, failure=exc)
            for scratch in (cog + ".ovr.tmp", source + ".ovr.tmp"):  # GDAL removes its scratch file; in case not
                if os.path.exists(scratch):
                    os.remove(scratch)
            if self.staging.is_cancelled():
                raise CancelledError() from exc
            raise write_failed(exc, final, self.needed * 4 // 3, self.staging, cog) from exc
        finally:
            src = None
        closing = release(self)
        if closing is not None:
            raise write_failed(closing, final, self.needed * 4 // 3, self.staging, cog)
        self._stage(cog, again=True)

    @property
    def style_path(self) -> str:
        """The QML style beside the output (QGIS applies it when the raster is opened)."""
        return str(Path(self.target.path).with_suffix(".qml"))
