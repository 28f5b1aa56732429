"""Reading rasters with GDAL: band mapping, validity masks, row reads for strips.StripReader, extents to windows."""
from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from typing import Sequence
from xml.etree import ElementTree

import numpy as np
from osgeo import gdal

from .card import ModelCard
from .destinations import gdal_path_limit, shown
from .errors import InputError
from .reads import Read
from .strips import describe_bands, rescale
from .windows import Window, bounds, from_bounds

gdal.UseExceptions()


@dataclass
class RasterSource:
    """An open raster and the bands that feed the model, in model channel order (1-based)."""

    path: str
    dataset: gdal.Dataset
    bands: list[int]
    scale: np.ndarray | None = None  # (bands,) float32: value * scale + offset before normalisation
    offset: np.ndarray | None = None
    mask: gdal.Dataset | None = None  # a Byte valid mask on the same grid (RunOptions.valid_mask): 0 = invalid

    @property
    def width(self) -> int:
        return int(self.dataset.RasterXSize)

    @property
    def height(self) -> int:
        return int(self.dataset.RasterYSize)

    @property
    def block_rows(self) -> int:
        return int(self.dataset.GetRasterBand(self.bands[0]).GetBlockSize()[1])

    @property
    def geotransform(self) -> tuple[float, ...]:
        return tuple(self.dataset.GetGeoTransform(can_return_null=False))

    @property
    def projection(self) -> str:
        return str(self.dataset.GetProjection() or "")

    @property
    def window(self) -> Window:
        return Window(0, 0, self.width, self.height)

    def read_rows(self, y0: int, x0: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Fill `data` (bands, rows, cols) float32 and `valid` (rows, cols) from the raster at column x0, row y0."""
        h, w = valid.shape
        try:
            self.dataset.ReadAsArray(x0, y0, w, h, buf_obj=data, band_list=self.bands, buf_type=gdal.GDT_Float32)
            valid[:] = True
            for i, index in enumerate(self.bands):
                valid &= band_validity(self.dataset.GetRasterBand(index), data[i], Window(x0, y0, w, h))
            if self.mask is not None:
                valid &= self.mask.GetRasterBand(1).ReadAsArray(x0, y0, w, h) > 0
        except RuntimeError as exc:
            raise InputError(f"Cannot read rows {y0}-{y0 + h} of '{self.path}' ({str(exc).strip()}). The file may "
                             "be damaged, or on a disk that went away; check it with gdalinfo -checksum.") from exc
        rescale(data, self.scale, self.offset)
        # Drop the blocks GDAL cached: StripReader reads whole block rows once, and a cache that fills with the
        # whole raster would make memory grow with raster size.
        self.dataset.FlushCache()

    def close(self) -> None:
        self.dataset = None  # type: ignore[assignment]
        self.mask = None


def open_mask(path: str, ds: gdal.Dataset, input_path: str) -> gdal.Dataset:
    """The valid mask at `path`, checked to cover `ds`'s grid pixel for pixel."""
    mask = open_raster(path)
    if (mask.RasterXSize, mask.RasterYSize) != (ds.RasterXSize, ds.RasterYSize):
        raise InputError(f"The mask '{os.path.basename(path)}' is {mask.RasterXSize} x {mask.RasterYSize} pixels "
                         f"but '{os.path.basename(input_path)}' is {ds.RasterXSize} x {ds.RasterYSize}: a mask must "
                         "be on the input's grid. Warp it onto the input's grid first.")
    return mask


def band_validity(band: gdal.Band, values: np.ndarray, win: Window) -> np.ndarray:
    """Valid pixels of one band: its nodata value or mask band, and finite values for float bands."""
    flags = band.GetMaskFlags()
    if flags & gdal.GMF_ALL_VALID:
        valid = np.ones(values.shape, dtype=bool)
    elif flags == gdal.GMF_NODATA:
        nodata = band.GetNoDataValue()
        valid = values != np.float32(nodata)
    else:
        valid = band.GetMaskBand().ReadAsArray(win.x, win.y, win.w, win.h) > 0
    if gdal.GetDataTypeName(band.DataType).startswith(("Float", "CFloat")):
        valid &= np.isfinite(values)
    return valid


_DRIVER_PREFIX = re.compile(r"^[A-Za-z0-9_]{2,}:")  # GPKG:file:table, NETCDF:"file":var, HDF5:...


def _plain_file(path: str) -> str | None:
    """The file behind `path` when it is a plain file path (not /vsi..., not DRIVER:file:subdataset)."""
    if path.startswith("/vsi") or (_DRIVER_PREFIX.match(path) and not os.path.exists(path)):
        return None
    return path


def _check_file(path: str) -> None:
    """InputError naming why a plain file cannot be a raster: missing, a loop, unreadable or empty."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"Input '{path}' is a symbolic link that loops back on itself. Point it at the real "
                             "raster file.") from exc
        if exc.errno == errno.EACCES:
            raise InputError(f"Cannot read '{path}': permission denied. Check the file's permissions.") from exc
        raise InputError(f"Input raster not found: '{path}'. Check the path (the file may have been moved or "
                         "renamed).") from exc
    if stat.S_ISREG(st.st_mode):
        if st.st_size == 0:
            raise InputError(f"'{path}' is empty (0 bytes), so it holds no raster. It was probably copied or "
                             "downloaded incompletely: copy it again.")
        if not os.access(path, os.R_OK):
            raise InputError(f"Cannot read '{path}': permission denied. Check the file's permissions.")


def open_raster(path: str) -> gdal.Dataset:
    """Open a raster read-only; InputError saying why when it cannot be (missing, empty, not a raster, which
    driver failed, a virtual raster whose source is gone)."""
    plain = _plain_file(path)
    if plain is not None:
        _check_file(plain)
        limit = gdal_path_limit()
        if limit and len(os.fsencode(plain + ".aux.xml")) > limit:
            raise InputError(f"The path of the input raster '{shown(plain)}' is {len(os.fsencode(plain))} bytes "
                             f"long, but GDAL {gdal.__version__} reads only files whose path (with '.aux.xml') is "
                             f"at most {limit} bytes. Move or copy the raster to a shorter path.")
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else "no reason given"
        if plain is not None and os.path.isdir(plain):
            raise InputError(f"'{path}' is a folder, not a raster. Pick a raster file inside it (.tif, .vrt, "
                             "...).") from exc
        layers = _vector_layers(path)
        if layers:
            raise InputError(f"'{path}' contains no raster: it holds only vector layers ({', '.join(layers)}). Pick "
                             "a raster layer.") from exc
        try:
            driver = gdal.IdentifyDriver(path)
        except RuntimeError:
            driver = None
        if driver is None:
            raise InputError(f"'{path}' is not a raster GDAL can read: no GDAL driver recognises it (it may be a "
                             "vector file, a document or an archive). Pick a raster (GeoTIFF, VRT, JPEG2000, "
                             "...).") from exc
        raise InputError(f"GDAL's {driver.ShortName} driver could not open '{path}': {message}. The file may be "
                         "damaged or incomplete; check it with gdalinfo, or export it again.") from exc
    if ds is None or ds.RasterCount == 0:
        raise InputError(f"'{path}' contains no raster bands (it may hold only vector layers). Pick a raster "
                         "layer.")
    _check_vrt_sources(ds, path)
    return ds


def _vector_layers(path: str) -> list[str]:
    """The names of the vector layers in `path` (at most five), [] when it is not a vector dataset."""
    try:
        ds = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_READONLY)
    except RuntimeError:
        return []
    if ds is None:
        return []
    count = ds.GetLayerCount()
    names = [ds.GetLayer(i).GetName() for i in range(min(count, 5))]
    return names + ["..."] if count > 5 else names


def _check_vrt_sources(ds: gdal.Dataset, path: str) -> None:
    """InputError when a virtual raster (VRT) names a source file that does not exist."""
    if ds.GetDriver().ShortName != "VRT":
        return
    xml = "".join(ds.GetMetadata("xml:VRT") or [])
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return
    base = os.path.dirname(os.path.abspath(path)) if _plain_file(path) else ""
    for element in root.iter("SourceFilename"):
        name = (element.text or "").strip()
        relative = element.get("relativeToVRT", "0") == "1"
        source = os.path.join(base, name) if relative and base else name
        if not name or _plain_file(source) is None or os.path.exists(source):
            continue
        raise InputError(f"'{os.path.basename(path)}' is a virtual raster (VRT) whose source '{name}' does not "
                         f"exist (looked for '{os.path.abspath(source)}'). Restore that file, or rebuild the VRT "
                         "from the files you have (gdalbuildvrt).")


def input_reads(ds: gdal.Dataset, path: str) -> list[Read]:
    """The files a run reads for the input raster: the raster (or its container) and every file GDAL lists
    behind it (VRT sources, world files, .aux.xml)."""
    files = list(ds.GetFileList() or [])
    plain = _plain_file(path)
    if plain and not any(os.path.abspath(f) == os.path.abspath(plain) for f in files):
        files.insert(0, plain)
    name = os.path.basename(plain or path)
    first = os.path.abspath(files[0]) if files else ""
    return [Read(f, "the input raster" if os.path.abspath(f) == first else f"a file of the input raster '{name}'")
            for f in files]


def map_bands(ds: gdal.Dataset, card: ModelCard, bands: Sequence[int] | None, path: str) -> list[int]:
    """Raster bands (1-based) feeding each model channel: as given, matched by name, 1..n, or every band but an
    alpha band."""
    need, count = len(card.input.bands), ds.RasterCount
    plural = "s" if count != 1 else ""
    if bands:
        bands = [int(b) for b in bands]
        for b in bands:
            if not 1 <= b <= count:
                raise InputError(f"Band {b} does not exist: '{os.path.basename(path)}' has {count} band{plural} "
                                 f"(1-{count}). Choose bands between 1 and {count}.")
        if len(bands) != need:
            raise InputError(f"{len(bands)} band{'s' if len(bands) != 1 else ''} selected "
                             f"({', '.join(map(str, bands))}) but the model takes {need} "
                             f"({describe_bands(card)}). Select {need} band{'s' if need != 1 else ''}, "
                             "in the model's order.")
        return bands
    names = {ds.GetRasterBand(i).GetDescription().strip().lower(): i for i in range(1, count + 1)}
    by_name = [names.get(b.name.strip().lower()) for b in card.input.bands]
    if all(by_name):
        return [int(b) for b in by_name if b]
    if count == need:
        return list(range(1, need + 1))
    data = [i for i in range(1, count + 1) if ds.GetRasterBand(i).GetColorInterpretation() != gdal.GCI_AlphaBand]
    if len(data) == need:  # an RGBA image for an RGB model: the alpha band is the mask, not a channel
        return data
    raise InputError(f"The model takes {need} band{'s' if need != 1 else ''} ({describe_bands(card)}) but "
                     f"'{os.path.basename(path)}' has {count} band{plural}. Choose which raster bands feed the "
                     f"model (Bands / --bands, e.g. {','.join(str(i + 1) for i in range(min(need, count)))}), "
                     "or use a raster with the bands the model expects.")


def extent_to_window(ds: gdal.Dataset, extent: Sequence[float], path: str) -> Window:
    """The pixel window covering (xmin, ymin, xmax, ymax) in the raster's CRS, clipped to the raster."""
    xmin, ymin, xmax, ymax = map(float, extent)
    if not (xmax > xmin and ymax > ymin):
        raise InputError(f"The extent ({xmin}, {ymin}, {xmax}, {ymax}) is empty: xmax must exceed xmin and "
                         "ymax exceed ymin.")
    gt = ds.GetGeoTransform(can_return_null=False)
    window = from_bounds((xmin, ymin, xmax, ymax), gt, ds.RasterXSize, ds.RasterYSize)
    if window is None:
        r = bounds(Window(0, 0, ds.RasterXSize, ds.RasterYSize), gt)
        raise InputError(f"The extent ({xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g}) lies outside the raster "
                         f"'{os.path.basename(path)}' ({r[0]:.6g}, {r[1]:.6g}, {r[2]:.6g}, {r[3]:.6g}). "
                         "Choose an extent that overlaps the layer, in the layer's CRS.")
    return window
