"""Class statistics of a class raster: pixels, area and share per class, read block row by block row."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from typing import Iterator, Sequence, cast

import numpy as np
from osgeo import gdal, ogr, osr

from ..engine.card import ClassInfo
from ..engine.errors import CancelledError
from ..engine.progress import Cancelled, doing
from ..engine.raster import band_validity, open_raster
from ..engine.staging import Staging, staged
from ..engine.vector_writer import VectorWriter
from ..engine.windows import Window, block_windows

gdal.UseExceptions()

CSV_HEADER = ("value", "class", "pixels", "area_m2", "area_ha", "percent")
READ_PIXELS = 1 << 22  # pixels read at once (whole block rows where they fit): 32 MB of int64 at most
DENSE_RANGE = 1 << 20  # value ranges up to this are counted with np.bincount, wider ones with np.unique


@dataclass(frozen=True)
class ClassStat:
    value: int
    name: str
    pixels: int
    area_m2: float  # NaN when the raster has no CRS
    area_ha: float
    percent: float  # of the valid (classified) pixels


class _CellArea:
    """Ground area of the raster's cells: one value for projected CRSs, one per row for geographic ones."""

    def __init__(self, ds: gdal.Dataset) -> None:
        self.gt = ds.GetGeoTransform()
        self.width = ds.RasterXSize
        wkt = ds.GetProjection()
        self.srs = osr.SpatialReference(wkt=wkt) if wkt else None
        det = abs(self.gt[1] * self.gt[5] - self.gt[2] * self.gt[4])
        self.geographic = bool(self.srs is not None and self.srs.IsGeographic())
        if self.srs is None:
            self.cell = math.nan
        elif self.geographic:
            self.cell = math.nan
            a, b = self.srs.GetSemiMajor(), self.srs.GetSemiMinor()
            self.a, self.e = a, math.sqrt(max(0.0, 1.0 - (b / a) ** 2))
            self.radians = self.srs.GetAngularUnits()
            self.det_rad = det * self.radians ** 2
        else:
            self.cell = det * self.srs.GetLinearUnits() ** 2

    def _q(self, lat: np.ndarray) -> np.ndarray:
        """Snyder's q(φ): the area between the equator and φ over a radian of longitude is a²/2 q(φ)."""
        s = np.sin(lat)
        e = self.e
        if e < 1e-12:
            return 2.0 * s
        return (1.0 - e * e) * (s / (1.0 - (e * s) ** 2) - np.log((1.0 - e * s) / (1.0 + e * s)) / (2.0 * e))

    def rows(self, y: int, n: int) -> np.ndarray:
        """Area (m²) of one cell in each of the rows [y, y + n) of a geographic raster."""
        gt, rows = self.gt, np.arange(y, y + n, dtype=np.float64)
        if gt[2] or gt[4]:  # rotated: local scale at each row's centre latitude
            lat = (gt[3] + gt[4] * self.width / 2 + gt[5] * (rows + 0.5)) * self.radians
            w2 = 1.0 - (self.e * np.sin(lat)) ** 2
            return self.det_rad * self.a ** 2 * (1.0 - self.e ** 2) * np.cos(lat) / w2 ** 2
        limit = np.pi / 2
        top = np.clip((gt[3] + rows * gt[5]) * self.radians, -limit, limit)
        bottom = np.clip((gt[3] + (rows + 1) * gt[5]) * self.radians, -limit, limit)
        return self.a ** 2 / 2 * abs(gt[1] * self.radians) * np.abs(self._q(top) - self._q(bottom))


def _windows(width: int, height: int, block: Sequence[int]) -> Iterator[Window]:
    """Reads covering the raster: whole block rows (several when they are narrow), split into column ranges of
    whole blocks, about READ_PIXELS each."""
    bw, bh = max(1, int(block[0])), max(1, int(block[1]))
    rows = bh * max(1, READ_PIXELS // max(1, bh * width))
    return block_windows(width, height, rows, min(width, max(bw, (READ_PIXELS // bh) // bw * bw)))


def _accumulate(values: np.ndarray, weights: np.ndarray | None, counts: dict[int, int],
                areas: dict[int, float]) -> None:
    if not values.size:
        return
    lo, hi = int(values.min()), int(values.max())
    if hi - lo <= DENSE_RANGE:
        index = values - lo
        n = np.bincount(index)
        keys = np.flatnonzero(n)
        area = np.bincount(index, weights=weights)[keys] if weights is not None else None
        n, keys = n[keys], keys + lo
    else:
        keys, inverse, n = np.unique(values, return_inverse=True, return_counts=True)
        area = np.bincount(inverse, weights=weights) if weights is not None else None
    for i, key in enumerate(cast(list[int], keys.tolist())):
        counts[key] = counts.get(key, 0) + int(n[i])
        if area is not None:
            areas[key] = areas.get(key, 0.0) + float(area[i])


def _names(band: gdal.Band, classes: Sequence[ClassInfo] | None) -> dict[int, str]:
    names = {int(v): str(text) for v, text in enumerate(band.GetCategoryNames() or []) if text}
    for key, text in (band.GetMetadata() or {}).items():
        if key.startswith("CLASS_") and key[6:].isdigit() and text:
            names.setdefault(int(key[6:]), str(text))
    names.update({int(c.value): c.name for c in classes or ()})
    return names


def class_statistics(path: str, classes: Sequence[ClassInfo] | None = None,
                     is_cancelled: Cancelled | None = None) -> list[ClassStat]:
    """Pixels, area and percent of each class value in band 1 of the class raster at `path`, in value order.

    Nodata (the band's nodata value or mask, and non-finite floats) is skipped. Every class of `classes` is
    listed, with 0 pixels if absent. Names come from `classes`, else the band's category names (or CLASS_<n>
    metadata), else "class <n>". Areas: projected CRS, the pixel area; geographic CRS, each row's cells on the
    ellipsoid; no CRS, NaN (callers show "n/a"). The raster is read block row by block row, so memory does not
    grow with its size.
    """
    doing("Counting the pixels of each class")
    ds = open_raster(path)
    ds.GetGeoTransform()  # GDAL 3.6 GTiff loads the .aux.xml (category names) lazily: make sure it is read
    band = ds.GetRasterBand(1)
    cells = _CellArea(ds)
    counts: dict[int, int] = {}
    areas: dict[int, float] = {}
    for win in _windows(ds.RasterXSize, ds.RasterYSize, band.GetBlockSize()):
        if is_cancelled and is_cancelled():
            raise CancelledError("Class statistics were cancelled.")
        values = band.ReadAsArray(win.x, win.y, win.w, win.h)
        valid = band_validity(band, values, win)
        picked = values[valid]
        if picked.dtype.kind == "f":
            picked = np.rint(picked)
        weights = None
        if cells.geographic:
            weights = np.broadcast_to(cells.rows(win.y, win.h)[:, None], values.shape)[valid]
        _accumulate(picked.astype(np.int64), weights, counts, areas)
        ds.FlushCache()  # drop the blocks read: GDAL's cache would otherwise hold the raster
    names = _names(band, classes)
    total = sum(counts.values())
    stats = []
    for value in sorted(set(counts) | {int(c.value) for c in classes or ()}):
        pixels = counts.get(value, 0)
        area = areas.get(value, 0.0) if cells.geographic else pixels * cells.cell
        stats.append(ClassStat(value, names.get(value, f"class {value}"), pixels, area, area / 10_000.0,
                               100.0 * pixels / total if total else 0.0))
    return stats


def _ha(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.2f}"


def format_table(stats: Sequence[ClassStat]) -> str:
    """A fixed-width text table (value, class, pixels, area (ha), percent) with a total row, for logs."""
    width = max([len("class"), len("total")] + [len(s.name) for s in stats])
    head = f"{'value':>7}  {'class':<{width}}  {'pixels':>14}  {'area (ha)':>16}  {'percent':>8}"
    lines = [head, "-" * len(head)]
    for s in stats:
        lines.append(f"{s.value:>7}  {s.name:<{width}}  {s.pixels:>14,}  {_ha(s.area_ha):>16}  {s.percent:>7.2f}%")
    pixels = sum(s.pixels for s in stats)
    area = sum(s.area_ha for s in stats) if stats else 0.0
    percent = sum(s.percent for s in stats)
    lines += ["-" * len(head), f"{'':>7}  {'total':<{width}}  {pixels:>14,}  {_ha(area):>16}  {percent:>7.2f}%"]
    return "\n".join(lines)


def _number(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def write_csv(stats: Sequence[ClassStat], path: str, staging: Staging | None = None) -> str:
    """Write the rows as CSV (header value,class,pixels,area_m2,area_ha,percent); unknown areas are empty.
    Staged: committed here, or with the caller's `staging`."""
    with staged(staging) as stage:
        tmp = stage.file(path)
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_HEADER)
            for s in stats:
                writer.writerow([s.value, s.name, s.pixels, _number(s.area_m2, 3), _number(s.area_ha, 6),
                                 _number(s.percent, 6)])
        stage.add(path, tmp)
    return path


TABLE_FIELDS = (("value", ogr.OFTInteger), ("class", ogr.OFTString), ("pixels", ogr.OFTInteger64),
                ("area_m2", ogr.OFTReal), ("area_ha", ogr.OFTReal), ("percent", ogr.OFTReal))


def write_table(stats: Sequence[ClassStat], destination: str, staging: Staging | None = None,
                layer_name: str = "class_statistics") -> str:
    """Write the rows as a table without geometry: any OGR format by extension (.gpkg, .csv, .xlsx, ...), or a
    layer of a GeoPackage (``ogr:dbname='x.gpkg' table="name"``). Unknown areas are NULL. Staged."""
    with staged(staging) as stage, VectorWriter(stage, destination, layer_name) as out:
        layer = out.layer("", ogr.wkbNone, TABLE_FIELDS)
        definition = layer.GetLayerDefn()
        for s in stats:
            feature = ogr.Feature(definition)
            for name, value in zip(CSV_HEADER, (s.value, s.name, s.pixels, s.area_m2, s.area_ha, round(s.percent, 4))):
                if isinstance(value, float) and math.isnan(value):
                    feature.SetFieldNull(name)
                else:
                    feature.SetField(name, value)
            layer.CreateFeature(feature)
    return destination
