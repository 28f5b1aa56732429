"""What a raster looks like before a workflow runs on it: band count, data type, whether it holds any data, and
whether it looks like a DEM, an RGB photo or a multispectral scene. Cheap: a decimated read, never the whole
raster (GDAL serves it from overviews when there are some).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from osgeo import gdal

from ..engine.errors import InputError
from ..engine.raster import band_validity, open_raster
from ..engine.windows import Window, block_windows

gdal.UseExceptions()

SAMPLE_SIDE = 512


@dataclass(frozen=True)
class RasterFacts:
    path: str
    bands: int
    data_type: str  # GDAL's name of band 1's type: Byte, UInt16, Int16, Float32, ...
    width: int
    height: int
    has_crs: bool
    colour_bands: bool  # bands tagged red/green/blue (or a palette) by their colour interpretation

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def looks_like_rgb(self) -> bool:
        """A photo or map rendering: 3 or 4 Byte bands, or bands GDAL tags as red/green/blue or a palette."""
        return (self.bands in (3, 4) and self.data_type == "Byte") or self.colour_bands


def raster_facts(path: str) -> RasterFacts:
    ds = open_raster(path)
    band = ds.GetRasterBand(1)
    colours = {ds.GetRasterBand(i + 1).GetColorInterpretation() for i in range(ds.RasterCount)}
    colour_bands = bool(colours & {gdal.GCI_RedBand, gdal.GCI_PaletteIndex}) and ds.RasterCount <= 4
    return RasterFacts(os.fspath(path), ds.RasterCount, gdal.GetDataTypeName(band.DataType), ds.RasterXSize,
                       ds.RasterYSize, bool(ds.GetProjection()), colour_bands)


def decimated(path: str, bands: Sequence[int] | None = None, side: int = SAMPLE_SIDE) -> tuple[np.ndarray,
                                                                                            np.ndarray]:
    """(bands, h, w) float32 values and (h, w) validity of the raster read at most ``side`` px a side."""
    ds = open_raster(path)
    band_list = list(bands) if bands else list(range(1, ds.RasterCount + 1))
    scale = max(ds.RasterXSize, ds.RasterYSize) / side
    w, h = (ds.RasterXSize, ds.RasterYSize) if scale <= 1 else (max(1, int(ds.RasterXSize / scale)),
                                                                 max(1, int(ds.RasterYSize / scale)))
    data = ds.ReadAsArray(0, 0, ds.RasterXSize, ds.RasterYSize, buf_xsize=w, buf_ysize=h, band_list=band_list,
                          buf_type=gdal.GDT_Float32).reshape(len(band_list), h, w)
    valid = np.ones((h, w), dtype=bool)
    if scale <= 1:
        for i, index in enumerate(band_list):
            valid &= band_validity(ds.GetRasterBand(index), data[i], Window(0, 0, w, h))
        return data, valid
    for i, index in enumerate(band_list):  # decimated: the nodata value, or the mask band read decimated
        rb = ds.GetRasterBand(index)
        flags = rb.GetMaskFlags()
        if flags == gdal.GMF_NODATA:
            valid &= data[i] != np.float32(rb.GetNoDataValue())
        elif not flags & gdal.GMF_ALL_VALID:
            mask = rb.GetMaskBand().ReadAsArray(0, 0, ds.RasterXSize, ds.RasterYSize, buf_xsize=w, buf_ysize=h)
            valid &= mask.reshape(h, w) > 0
        valid &= np.isfinite(data[i])
    return data, valid


def require_data(path: str, bands: Sequence[int] | None = None) -> None:
    """InputError when every pixel of the bands is nodata. The decimated sample decides when it finds data; an
    empty sample is confirmed by a full pass over the mask, block row by block row."""
    _, valid = decimated(path, bands)
    if valid.any() or _any_valid(path, bands):
        return
    raise InputError(f"Every pixel of '{os.path.basename(path)}' is nodata (or masked), so there is nothing to "
                     "process. Check the layer's nodata value (Layer Properties > Transparency) or choose the "
                     "raster that holds the data.")


def _any_valid(path: str, bands: Sequence[int] | None) -> bool:
    ds = open_raster(path)
    band_list = list(bands) if bands else list(range(1, ds.RasterCount + 1))
    for win in block_windows(ds.RasterXSize, ds.RasterYSize, ds.GetRasterBand(1).GetBlockSize()[1]):
        data = ds.ReadAsArray(win.x, win.y, win.w, win.h, band_list=band_list,
                              buf_type=gdal.GDT_Float32).reshape(len(band_list), win.h, win.w)
        valid = np.ones((win.h, win.w), dtype=bool)
        for i, index in enumerate(band_list):
            valid &= band_validity(ds.GetRasterBand(index), data[i], win)
        ds.FlushCache()
        if valid.any():
            return True
    return False
