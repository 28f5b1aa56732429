"""Cloud and quality masks: Landsat QA_PIXEL (Collection 2) and BQA (Collection 1 and pre-collection Landsat 8),
and the Sentinel-2 scene classification (SCL), found beside a scene or given, decoded into a Byte valid mask
(1 = use the pixel, 0 = masked) on the scene's grid for the engine (RunOptions.valid_mask).

Bits and classes: Landsat Collection 2 Level-1/Level-2 Data Format Control Books (LSDS-1822 / LSDS-1328): QA_PIXEL
bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow. Collection 1 surface reflectance pixel_qa (LaSRC /
LEDAPS product guides): bit 0 fill, 3 cloud shadow, 5 cloud, bits 8-9 cirrus confidence. Collection 1 BQA: bit 0 fill, 4 cloud, bits 7-8
cloud-shadow confidence, 11-12 cirrus confidence (3 = high). Pre-collection Landsat 8 BQA: bit 0 fill, bits 12-13
cirrus and 14-15 cloud confidence (3 = high). Sentinel-2 SCL (Level-2A Product Format Specification): 0 no data,
1 saturated or defective, 3 cloud shadow, 8 and 9 cloud (medium, high probability), 10 thin cirrus.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from osgeo import gdal

from ...engine.errors import InputError
from .beside import files_beside

gdal.UseExceptions()

KINDS = {"qa_pixel": "Landsat Collection 2 QA_PIXEL (fill, dilated cloud, cirrus, cloud, cloud shadow)",
         "pixel_qa": "Landsat Collection 1 surface-reflectance pixel_qa (fill, cloud shadow, cloud, high-confidence "
                     "cirrus)",
         "bqa_c1": "Landsat Collection 1 BQA (fill, cloud, high-confidence cloud shadow and cirrus)",
         "bqa_pre": "Landsat 8 pre-collection BQA (fill, high-confidence cloud and cirrus)",
         "scl": "Sentinel-2 SCL (no data, defective, cloud shadow, cloud, cirrus: classes 0, 1, 3, 8, 9, 10)"}
_TOKENS = (("QA_PIXEL", "qa_pixel"), ("PIXEL_QA", "pixel_qa"), ("BQA", "bqa_c1"), ("_QA", "bqa_c1"),
           ("SCL", "scl"))
_SCL_MASKED = (0, 1, 3, 8, 9, 10)


@dataclass(frozen=True)
class MaskSource:
    """A QA or SCL raster and how to read it."""

    path: str
    kind: str  # a key of KINDS
    how: str  # "given" or "found beside the scene"

    @property
    def description(self) -> str:
        return f"{KINDS[self.kind]} from '{os.path.basename(self.path)}' ({self.how})"


def kind_of(path: str, pre_collection: bool = False) -> str:
    """The mask kind told by the file name, else by its values (small class numbers: SCL)."""
    name = os.path.basename(path).upper()
    for token, kind in _TOKENS:
        if token in name:
            return "bqa_pre" if kind == "bqa_c1" and pre_collection else kind
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    if gdal.GetDataTypeName(band.DataType) == "Byte" and (band.ComputeRasterMinMax(True)[1] <= 11):
        return "scl"
    return "qa_pixel"


def _stem(name: str) -> str:
    """The scene part of a band or mask file name: 'LC08_..._T1_QA_PIXEL.TIF' -> 'LC08_..._T1'."""
    stem = os.path.splitext(os.path.basename(name))[0].upper()
    return re.split(r"_(?:QA_PIXEL|PIXEL_QA|BQA|QA|SCL|SR_B\w+|B\d\w*|STACK\w*)(?:_|$)", stem)[0]


def _same_scene(mask: str, stems: set[str]) -> bool:
    """The mask's scene part is a raster's, or a prefix of it, or shares its Landsat id (sensor, level, path/row,
    date: the first four fields)."""
    return bool(mask) and any(stem.startswith(mask) or (mask.count("_") >= 3 and
                                                         stem.split("_")[:4] == mask.split("_")[:4])
                              for stem in stems)


def find_mask(path: str, names: Iterable[str] = (), pre_collection: bool = False) -> MaskSource | None:
    """A QA_PIXEL, BQA or SCL raster beside the scene whose scene part matches the raster's or its files'."""
    files = [path, *names]
    stems = {_stem(f) for f in files} - {""}
    for folder, name in files_beside(files):
        upper = name.upper()
        if not upper.endswith((".TIF", ".TIFF", ".JP2", ".VRT")) or os.path.join(folder, name) in files:
            continue
        if any(token in upper for token, _ in _TOKENS if token != "_QA") and _same_scene(_stem(name), stems):
            full = os.path.join(folder, name)
            return MaskSource(full, kind_of(full, pre_collection), "found beside the scene")
    return None


def valid_pixels(values: np.ndarray, kind: str) -> np.ndarray:
    """True where a QA/SCL value leaves the pixel usable."""
    v = values.astype(np.int64)
    if kind == "scl":
        return ~np.isin(v, _SCL_MASKED)
    if kind == "qa_pixel":
        return (v & 0b11111) == 0
    if kind == "pixel_qa":
        return ((v & 1) == 0) & ((v & (1 << 3)) == 0) & ((v & (1 << 5)) == 0) & (((v >> 8) & 3) != 3)
    if kind == "bqa_c1":
        return ((v & 1) == 0) & ((v & (1 << 4)) == 0) & (((v >> 7) & 3) != 3) & (((v >> 11) & 3) != 3)
    return ((v & 1) == 0) & (((v >> 12) & 3) != 3) & (((v >> 14) & 3) != 3)


def write_valid_mask(source: MaskSource, scene: str, out_path: str) -> tuple[str, float]:
    """Write the Byte valid mask (1 valid, 0 masked) of `source` on `scene`'s grid (warped by nearest neighbour
    when the grids differ, e.g. a 20 m SCL under a 10 m stack); returns the path and the masked share."""
    ref = gdal.Open(scene)
    qa = gdal.Open(source.path)
    if qa is None or ref is None:
        raise InputError(f"Cannot open the mask '{source.path}'.")
    if (qa.RasterXSize, qa.RasterYSize) != (ref.RasterXSize, ref.RasterYSize):
        gt = ref.GetGeoTransform()
        bounds = (gt[0], gt[3] + gt[5] * ref.RasterYSize, gt[0] + gt[1] * ref.RasterXSize, gt[3])
        qa = gdal.Warp("", qa, options=gdal.WarpOptions(format="MEM", outputBounds=bounds, width=ref.RasterXSize,
                                                        height=ref.RasterYSize, dstSRS=ref.GetProjection() or None,
                                                        resampleAlg="near"))
    values = qa.GetRasterBand(1).ReadAsArray()
    valid = valid_pixels(values, source.kind).astype(np.uint8)
    out = gdal.GetDriverByName("GTiff").Create(out_path, ref.RasterXSize, ref.RasterYSize, 1, gdal.GDT_Byte,
                                               ["COMPRESS=DEFLATE"])
    out.SetGeoTransform(ref.GetGeoTransform())
    out.SetProjection(ref.GetProjection())
    out.GetRasterBand(1).WriteArray(valid)
    out = None
    return out_path, float(1.0 - valid.mean()) if valid.size else 0.0
