"""The GeoTIFF layouts outputs are written in: streamed as a tiled GeoTIFF, then (by default) rewritten at the
commit as a Cloud-Optimized GeoTIFF with internal overviews, so a large result draws at once at any scale.

One place decides the compression (the same for both layouts) and how overviews are resampled: integer rasters
(classes, masks) take one of the pixels each overview pixel covers (NEAREST: never a blend of two classes), float
rasters (scores, values, confidence) the mean of the valid ones (AVERAGE). The COG is made by GDAL's COG driver
from the staged tiled file, block by block, with GDAL's block cache held small (`cog_settings`) so that memory
does not grow with the raster.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np
from osgeo import gdal

from .errors import OutputError
from .targets import BLOCK  # GeoTIFF tile edge, both layouts

gdal.UseExceptions()

FORMATS = ("cog", "gtiff")  # RunOptions.output_format: Cloud-Optimized GeoTIFF with overviews, or plain tiled
CACHE_BYTES = 16 << 20  # GDAL's block cache while a COG is made (benchmarks/RESULTS.md: flat, and no slower)
# Measured on 2048x2048 outputs: LZW is the fastest and smallest for class rasters; DEFLATE level 1 with the
# floating-point predictor for scores. Both are readable everywhere.
_FLOAT_CODEC = {"COMPRESS": "DEFLATE", "LEVEL": "1", "PREDICTOR": "3"}
_INTEGER_CODEC = {"COMPRESS": "LZW"}


def check_format(name: str) -> str:
    """`name` as one of FORMATS (any case), or an OutputError saying which exist."""
    value = str(name).strip().lower()
    if value not in FORMATS:
        raise OutputError(f"Unknown output format '{name}': use 'cog' (a Cloud-Optimized GeoTIFF with overviews, "
                          "the default) or 'gtiff' (a plain tiled GeoTIFF).")
    return value


def _codec(dtype: np.dtype) -> dict[str, str]:
    return _FLOAT_CODEC if np.dtype(dtype).kind == "f" else _INTEGER_CODEC


def gtiff_options(dtype: np.dtype) -> list[str]:
    """Creation options of the streamed tiled GeoTIFF (GDAL's GTiff driver)."""
    codec = [f"ZLEVEL={v}" if k == "LEVEL" else f"{k}={v}" for k, v in _codec(dtype).items()]
    return ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "BIGTIFF=IF_SAFER"] + codec


def overview_resampling(dtype: np.dtype, categorical: bool = False) -> str:
    """How a raster's overviews are computed: NEAREST for classes, masks and any integer raster (each overview pixel
    is one of the values it covers, never a blend of classes); AVERAGE (of the valid pixels) for float scores.
    MODE would pick the most frequent class but costs twice NEAREST's time (0.75 s against 0.36 s for a 4096 px
    class raster)."""
    return "NEAREST" if categorical or np.dtype(dtype).kind in "iub" else "AVERAGE"


def cog_options(dtype: np.dtype, resampling: str) -> list[str]:
    """Creation options of the COG (GDAL's COG driver): the same compression and tiles, internal overviews down
    to one tile, made with `resampling`."""
    codec = [f"{k}={v}" for k, v in _codec(dtype).items()]
    # NUM_THREADS is left at 1: on 2 cores more threads saved no time reliably and cost 30-40 MiB of buffers
    return codec + [f"BLOCKSIZE={BLOCK}", "BIGTIFF=IF_SAFER", "OVERVIEWS=IGNORE_EXISTING",
                    f"RESAMPLING={resampling}"]


def colour_arguments(ds: gdal.Dataset) -> list[str]:
    """gdal_translate arguments that keep each band's colour interpretation: GTiff's copy takes the second band of a
    paletted raster (a class raster of two outputs) for alpha, which would hide band 1 wherever band 2 is 0; it is
    named grey instead (the tiled GeoTIFF calls it undefined)."""
    if ds.RasterCount < 2 or ds.GetRasterBand(1).GetColorInterpretation() != gdal.GCI_PaletteIndex:
        return []
    args: list[str] = []
    for index in range(2, ds.RasterCount + 1):
        if ds.GetRasterBand(index).GetColorInterpretation() == gdal.GCI_Undefined:
            args += [f"-colorinterp_{index}", "gray"]
    return args


class _Cache:
    """GDAL's block cache (one per process) held at most CACHE_BYTES while any COG is made, then restored."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.before = 0


_CACHE = _Cache()


@contextmanager
def cog_settings() -> Iterator[None]:
    """GDAL's settings while a COG is made in this block: the block cache held small (`bounded_cache`), and the
    overviews' scratch file (``<cog>.ovr.tmp``, removed by GDAL) left uncompressed: it is written once and read
    once, and compressing it (ZSTD by default) made a 4096 px class raster's COG take 0.38 s instead of 0.23 s. It
    needs up to a third of the raster's uncompressed size on the output's disk meanwhile."""
    previous = gdal.GetThreadLocalConfigOption("COG_TMP_COMPRESSION", None)
    gdal.SetThreadLocalConfigOption("COG_TMP_COMPRESSION", "NONE")  # thread-local: QGIS runs algorithms in threads
    try:
        with bounded_cache():
            yield
    finally:
        gdal.SetThreadLocalConfigOption("COG_TMP_COMPRESSION", previous)


@contextmanager
def bounded_cache(limit: int = CACHE_BYTES) -> Iterator[None]:
    """Hold GDAL's block cache to `limit` bytes in this block. Without it a copy fills the cache (5 % of the RAM by
    default) with blocks it will not read again: a peak RSS of 1.35 GB for a 16384 px Float32 raster. The cache is
    shared by the whole process (QGIS's rendering too), which only reads more often meanwhile; nested and
    concurrent users keep the smallest limit until the last one leaves."""
    with _CACHE.lock:
        if _CACHE.users == 0:
            _CACHE.before = int(gdal.GetCacheMax())
        _CACHE.users += 1
        if gdal.GetCacheMax() > limit:
            gdal.SetCacheMax(limit)
    try:
        yield
    finally:
        with _CACHE.lock:
            _CACHE.users -= 1
            if _CACHE.users == 0:
                gdal.SetCacheMax(_CACHE.before)
