"""Seeded test rasters: write and read small GeoTIFFs with GDAL, and smooth random fields in numpy."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from osgeo import gdal, gdal_array, osr

gdal.UseExceptions()

GEOTRANSFORM = (500000.0, 10.0, 0.0, 4100000.0, 0.0, -10.0)
EPSG = 32633


def _gdal_type(dtype: Any, array: np.ndarray) -> int:
    if dtype is None:
        dtype = array.dtype
    if isinstance(dtype, int):
        return dtype
    return int(gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(dtype)))


def _srs_wkt(epsg: int) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return str(srs.ExportToWkt())


def _per_band(value: Any, bands: int) -> list[Any]:
    if value is None or np.isscalar(value):
        return [value] * bands
    values = list(value)
    if len(values) != bands:
        raise ValueError(f"{len(values)} per-band values for {bands} bands")
    return values


def write_raster(path: "str | Path", array: np.ndarray, dtype: Any = None,
                 geotransform: Sequence[float] | None = GEOTRANSFORM, epsg: int | None = EPSG,
                 nodata: Any = None, mask: np.ndarray | None = None,
                 descriptions: Sequence[str] | None = None,
                 options: Sequence[str] = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256")) -> Path:
    """Write a (bands, H, W) (or (H, W)) array as a GeoTIFF.

    `dtype`: a GDAL type code or numpy dtype (default: the array's); `nodata`: one value or one per band;
    `mask`: (H, W), non-zero = valid, written as an internal per-dataset mask band; `descriptions`: band names.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
    bands, height, width = array.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver = gdal.GetDriverByName("GTiff")
    ds = driver.Create(str(path), width, height, bands, _gdal_type(dtype, array), list(options))
    if geotransform is not None:
        ds.SetGeoTransform(tuple(float(v) for v in geotransform))
    if epsg is not None:
        ds.SetProjection(_srs_wkt(epsg))
    for i, (value, name) in enumerate(zip(_per_band(nodata, bands), _per_band(None, bands)
                                          if descriptions is None else descriptions)):
        band = ds.GetRasterBand(i + 1)
        if value is not None:
            band.SetNoDataValue(float(value))
        if name:
            band.SetDescription(str(name))
        band.WriteArray(array[i])
    if mask is not None:
        _write_mask(ds, np.asarray(mask))
    ds.FlushCache()
    ds = None
    return path


def _write_mask(ds: gdal.Dataset, mask: np.ndarray) -> None:
    previous = gdal.GetConfigOption("GDAL_TIFF_INTERNAL_MASK")
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
    try:
        ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        ds.GetRasterBand(1).GetMaskBand().WriteArray(np.where(mask != 0, 255, 0).astype(np.uint8))
    finally:
        gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", previous)


def read_raster(path: "str | Path") -> tuple[np.ndarray, tuple[float, ...], str, list[float | None]]:
    """(array (bands, H, W), geotransform, projection WKT, nodata value per band)."""
    ds = gdal.Open(str(path))
    try:
        array = ds.ReadAsArray()
        if array.ndim == 2:
            array = array[None]
        nodata = [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(ds.RasterCount)]
        return array, tuple(ds.GetGeoTransform()), str(ds.GetProjection()), nodata
    finally:
        ds = None


def read_mask(path: "str | Path", band: int = 1) -> np.ndarray:
    """The GDAL mask of a band as a boolean array (True = valid)."""
    ds = gdal.Open(str(path))
    try:
        return np.asarray(ds.GetRasterBand(band).GetMaskBand().ReadAsArray()) != 0
    finally:
        ds = None


def _gaussian_kernel_fft(height: int, width: int, sigma: float) -> np.ndarray:
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.exp(-2.0 * (np.pi * sigma) ** 2 * (fy ** 2 + fx ** 2))


def smooth_random(bands: int, height: int, width: int, seed: int = 0, sigma: float = 8.0) -> np.ndarray:
    """Seeded smooth random fields, float32 (bands, H, W), each band scaled to [0, 1].

    White noise low-passed with a Gaussian of `sigma` pixels (in the Fourier domain, on a padded grid so the
    field does not wrap around).
    """
    rng = np.random.default_rng(seed)
    pad = int(3 * sigma)
    ph, pw = height + 2 * pad, width + 2 * pad
    kernel = _gaussian_kernel_fft(ph, pw, sigma)
    out = np.empty((bands, height, width), dtype=np.float32)
    for b in range(bands):
        noise = rng.standard_normal((ph, pw))
        field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(ph, pw))[pad:pad + height, pad:pad + width]
        lo, hi = field.min(), field.max()
        out[b] = (field - lo) / (hi - lo) if hi > lo else 0.0
    return out


def write_strips(path: "str | Path", size: int, values: Any, bands: int = 1, gdal_type: int = gdal.GDT_Byte,
                 geotransform: Sequence[float] = GEOTRANSFORM, epsg: int = EPSG, nodata: Any = None,
                 strip: int = 1024, options: Sequence[str] = ("TILED=YES", "COMPRESS=LZW", "BIGTIFF=IF_SAFER")) -> Path:
    """A size x size GeoTIFF too large to hold in memory, written strip by strip: band b's rows are
    `values(b, rows, cols)` for rows (n, 1) and cols (1, size) as float32 coordinates."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, bands, gdal_type, list(options))
    ds.SetGeoTransform(tuple(geotransform))
    ds.SetProjection(_srs_wkt(epsg))
    cols = np.arange(size, dtype=np.float32)[None, :]
    for y in range(0, size, strip):
        rows = np.arange(y, min(y + strip, size), dtype=np.float32)[:, None]
        for b in range(bands):
            band = ds.GetRasterBand(b + 1)
            if nodata is not None:
                band.SetNoDataValue(nodata)
            band.WriteArray(values(b, rows, cols), 0, y)
    ds = None
    return Path(path)
