"""What a raster says about itself before any sensor is guessed: its name and the files it reads (a VRT
stack's sources), its band names in their common spellings, its metadata, data type and value levels."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from osgeo import gdal

from ...engine.raster import open_raster
from ..inspect import decimated

gdal.UseExceptions()

# a band token in a file name: 'LT05_..._B4.TIF' -> B4, 'l8_B10.tif' -> B10, 'T31TCJ_..._B8A_20m.jp2' -> B8A,
# 'LC08_..._SR_B2.TIF' -> B2; GRASS's Landsat names 'lsat7_2000_40' -> B4 ('_61', '_62': the two B6 gains)
_FILE_BAND = re.compile(r"(?:^|_)(?:SR_|TOA_)?(B\d{1,2}A?|B6_VCID_[12])(?:_\d+M)?$")
_GRASS_BAND = re.compile(r"^LSAT\d_\d{4}_(\d)(\d)$")


def keys(description: str) -> set[str]:
    """Normalised forms of a band description: 'SR_B2' -> b2, 'Band 2' -> b2, 'B4 (red)' -> b4 and red,
    'B4, central wavelength...' -> b4, 'Band 4 (red)' -> b4 and red, 'nir08' -> nir08."""
    found = set()
    parts = [description, description.split(",")[0], description.split("(")[0]]
    parts += re.findall(r"\(([^)]*)\)", description)
    for part in parts:
        compact = re.sub(r"[^a-z0-9]", "", part.lower())
        found.add(compact)
        found.add(re.sub(r"^(sr|toa|boa|band)(?=b?\d)", "", compact))
    found.update("b" + k if k[:1].isdigit() else k for k in list(found))
    return found - {""}


def file_band(path: str) -> str | None:
    """The band a single-band file holds, told by its name ('LT05_..._B4.TIF' -> 'B4'); None if it doesn't."""
    stem = os.path.splitext(os.path.basename(path))[0].upper()
    match = _FILE_BAND.search(stem)
    if match:
        return match.group(1)
    grass = _GRASS_BAND.match(stem)
    if grass:
        return f"B{grass.group(1)}" if grass.group(2) == "0" else f"B6_VCID_{grass.group(2)}"
    return None


@dataclass
class Scene:
    path: str
    name: str
    ds: gdal.Dataset
    count: int
    type_name: str  # GDAL's name of band 1's data type
    files: list[str]  # per band, the file it reads (a VRT stack's sources); empty when the raster is one file
    keys: list[set[str]]  # per band, normalised forms of its description, else of its source file's band token
    metadata: dict[str, str]  # the dataset's, then the bands' metadata, keys in upper case
    _levels: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The raster's own name, then its source files' names."""
        return [self.name] + [os.path.basename(f) for f in dict.fromkeys(self.files)]

    @property
    def integer_type(self) -> bool:
        return not self.type_name.startswith(("Float", "CFloat"))

    def percentiles(self, bands: Sequence[int], q: Sequence[float] = (0.1, 1, 2, 50, 98, 99.9)) -> np.ndarray:
        """(bands, len(q)) percentiles of the valid values of `bands` (a decimated read of at most 256 px a side);
        NaN where a band has no valid value."""
        key = tuple(bands) + (-1,) + tuple(int(v * 100) for v in q)
        if key not in self._levels:
            values, valid = decimated(self.path, bands, side=256)
            rows = [np.percentile(v[valid], q) if valid.any() else np.full(len(q), np.nan) for v in values]
            self._levels[key] = np.asarray(rows, dtype=np.float64)
        return self._levels[key]

    def integral(self, bands: Sequence[int]) -> bool:
        """Whole-number values (an integer type, or floats holding integers)."""
        if self.integer_type:
            return True
        values, valid = decimated(self.path, bands, side=128)
        v = values[:, valid]
        return bool(v.size) and bool(np.all(v == np.round(v)))


def _source_file(ds: gdal.Dataset, index: int) -> str | None:
    if ds.GetDriver().ShortName != "VRT":
        return None
    try:
        info = ds.GetRasterBand(index).GetMetadataItem("Pixel_0_0", "LocationInfo") or ""
    except RuntimeError:
        return None
    match = re.search(r"<File>([^<]+)</File>", info)
    return match.group(1) if match else None


def open_scene(path: str) -> Scene:
    ds = open_raster(path)
    files = [_source_file(ds, i) for i in range(1, ds.RasterCount + 1)]
    sources = [f for f in files if f] if all(files) and len(set(files)) == len(files) else []
    texts = [ds.GetRasterBand(i).GetDescription().strip() for i in range(1, ds.RasterCount + 1)]
    if all(re.fullmatch(rf"band[\s_]*0*{i}", t.lower()) for i, t in enumerate(texts, start=1)):
        texts = [""] * len(texts)  # 'Band 1'..'Band n': GDAL's and QGIS's placeholders, not band names
    band_keys = []
    for i in range(1, ds.RasterCount + 1):
        text = texts[i - 1]
        token = file_band(sources[i - 1]) if sources else None
        band_keys.append(keys(text) if text else keys(token) if token else set())
    metadata: dict[str, str] = {}
    for item in [ds] + [ds.GetRasterBand(i) for i in range(1, ds.RasterCount + 1)]:
        for key, value in (item.GetMetadata() or {}).items():
            metadata.setdefault(str(key).upper(), str(value))
    return Scene(path, os.path.basename(path), ds, ds.RasterCount,
                 str(gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)), sources, band_keys, metadata)
