"""What a calibrated anomaly score raster becomes: a mask of flagged pixels, and one polygon per anomalous patch.

Both read the score raster in windows (block rows for the mask, each patch's bounding box for the polygons),
never whole, and write atomically: a temporary name, renamed when complete.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape

import numpy as np
from osgeo import gdal, ogr, osr

from ..engine.card import ClassInfo
from ..engine.destinations import Destination, Read, check_destinations
from ..engine.errors import CancelledError, InputError
from ..engine.progress import Cancelled, Progress, doing, never_cancelled, no_progress
from ..engine.raster import band_validity, open_raster
from ..engine.staging import Staging, staged
from ..engine.style import anomaly_labels, paletted_qml, pseudocolor_qml
from ..engine.windows import Window, block_windows, from_bounds, transform
from ..engine.writer import BLOCK, RasterTarget, RasterWriter
from .vectorize import AreaMeter, write_polygons

gdal.UseExceptions()

MASK_NODATA = 255
MASK_CLASSES = (ClassInfo(0, "normal", "#f7f7f700", "score below the threshold (transparent)"),
                ClassInfo(1, "anomaly", "#d7191c", "score at or above the threshold"))
_CHUNK = 16 * BLOCK  # columns per read: whole tiles of the output, bounded memory on very wide rasters


@dataclass(frozen=True)
class MaskStats:
    flagged: int  # pixels with score >= threshold
    valid: int  # pixels with a score (not nodata)
    fraction: float  # flagged / valid (0 where nothing is valid)
    path: str = ""
    style_path: str = ""


def write_mask(score_path: str, threshold: float, mask_path: str, staging: Staging | None = None,
               is_cancelled: Cancelled | None = None, on_progress: Progress | None = None) -> MaskStats:
    """A Byte GeoTIFF on the score's grid: 1 where score >= `threshold`, 0 below, 255 (nodata) where the score is
    nodata; with a colour table, category names ``normal``/``anomaly`` and a paletted QML style beside it.

    With `staging`, the score may itself be staged (not yet committed) and the mask is committed with it."""
    if not math.isfinite(threshold):
        raise InputError(f"The anomaly threshold must be a finite number, not {threshold}.")
    check_destinations([Destination(mask_path, "the anomaly mask")], [Read(score_path, "the anomaly score")])
    doing(f"Writing the anomaly mask (score at least {threshold:.4g})")
    cancelled = is_cancelled or never_cancelled
    progress = on_progress or no_progress
    with staged(staging, cancelled) as stage:
        ds = open_raster(stage.current(score_path))
        band = ds.GetRasterBand(1)
        width, height = ds.RasterXSize, ds.RasterYSize
        metadata = {"DEEPSTRATA_THRESHOLD": f"{threshold:.9g}", "DEEPSTRATA_SCORE": os.path.basename(score_path)}
        target = RasterTarget(mask_path, np.dtype(np.uint8), MASK_NODATA, ["anomaly mask"], [MASK_CLASSES], metadata)
        flagged = valid_count = 0
        with RasterWriter(stage, target, width, height, ds.GetGeoTransform(can_return_null=False),
                          ds.GetProjection() or "") as writer:
            for win in block_windows(width, height, BLOCK, _CHUNK):
                if cancelled():
                    raise CancelledError()
                scores = band.ReadAsArray(win.x, win.y, win.w, win.h, buf_type=gdal.GDT_Float32)
                valid = band_validity(band, scores, win)
                hit = valid & (scores >= np.float32(threshold))
                out = np.where(valid, hit.astype(np.uint8), np.uint8(MASK_NODATA)).astype(np.uint8)
                writer.write(win.x, win.y, out[None])
                flagged += int(hit.sum())
                valid_count += int(valid.sum())
                if win.x1 == width:
                    ds.FlushCache()
                    progress(win.y1 / height)
            writer.style_xml = paletted_qml(MASK_CLASSES)
        ds = None
    return MaskStats(flagged, valid_count, flagged / valid_count if valid_count else 0.0, mask_path,
                     writer.style_path)


def style_score(style_path: str, threshold: float, staging: Staging) -> None:
    """Replace the score's QML at `style_path` (written with the card's threshold) by one for `threshold`, committed
    with the run: the ramp turns opaque at the threshold and its legend says where it is, as the mask does."""
    if not (math.isfinite(threshold) and threshold > 0):
        return  # the ramp runs from 0 to twice the threshold: keep the card's
    qml = staging.file(style_path, ".qml")
    Path(qml).write_text(pseudocolor_qml(0.0, 2 * threshold, "anomaly", labels=anomaly_labels(threshold)),
                         encoding="utf-8")
    staging.add(style_path, qml)


def _flagged_band(mask_path: str, ds: gdal.Dataset) -> gdal.Dataset:
    """A virtual raster of the mask with only the value 1 kept (0 and 255 become 0, its nodata), so that its mask
    band selects the flagged pixels for gdal.Polygonize."""
    xml = (f"<VRTDataset rasterXSize=\"{ds.RasterXSize}\" rasterYSize=\"{ds.RasterYSize}\">"
           f"<GeoTransform>{', '.join(repr(v) for v in ds.GetGeoTransform(can_return_null=False))}</GeoTransform>"
           "<VRTRasterBand dataType=\"Byte\" band=\"1\"><NoDataValue>0</NoDataValue><ComplexSource>"
           f"<SourceFilename relativeToVRT=\"0\">{escape(os.path.abspath(mask_path))}</SourceFilename>"
           "<SourceBand>1</SourceBand><LUT>0:0,1:1,2:0,255:0</LUT></ComplexSource></VRTRasterBand></VRTDataset>")
    return gdal.Open(xml)


class _Zonal:
    """Score statistics inside one polygon: the polygon burnt into a raster of its bounding window only."""

    def __init__(self, score: gdal.Dataset) -> None:
        self.score, self.band = score, score.GetRasterBand(1)
        # Direct terrain models write the signed residual as band 2 (see heads.AnomalyHead)
        self.sign = score.GetRasterBand(2) if score.RasterCount >= 2 else None
        self.gt = score.GetGeoTransform(can_return_null=False)
        self.layer_ds = ogr.GetDriverByName("Memory").CreateDataSource("zonal")
        self.projection = score.GetProjection() or ""
        srs = osr.SpatialReference(wkt=self.projection) if self.projection else None
        self.layer = self.layer_ds.CreateLayer("patch", srs, ogr.wkbPolygon)

    def __call__(self, geometry: ogr.Geometry) -> tuple[int, float, float, float | None] | None:
        """(pixels, peak, mean, mean signed residual or None) of the valid scores inside `geometry`; None if it
        covers no valid score."""
        xmin, xmax, ymin, ymax = geometry.GetEnvelope()
        window = from_bounds((xmin, ymin, xmax, ymax), self.gt, self.score.RasterXSize, self.score.RasterYSize)
        if window is None:
            return None
        x, y, w, h = window.x, window.y, window.w, window.h
        burn = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
        burn.SetGeoTransform(transform(window, self.gt))
        if self.projection:  # the same CRS on both sides: no transformer, no warning
            burn.SetProjection(self.projection)
        feature = ogr.Feature(self.layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        self.layer.CreateFeature(feature)
        try:
            gdal.RasterizeLayer(burn, [1], self.layer, burn_values=[1])
        finally:
            self.layer.DeleteFeature(feature.GetFID())
        inside = burn.ReadAsArray() > 0
        scores = self.band.ReadAsArray(x, y, w, h, buf_type=gdal.GDT_Float32)
        keep = inside & band_validity(self.band, scores, Window(x, y, w, h))
        values = scores[keep]
        if not values.size:
            return None
        residual = None
        if self.sign is not None:
            signs = self.sign.ReadAsArray(x, y, w, h, buf_type=gdal.GDT_Float32)
            signs = signs[keep & band_validity(self.sign, signs, Window(x, y, w, h))]
            residual = float(signs.mean(dtype=np.float64)) if signs.size else None
        return int(inside.sum()), float(values.max()), float(values.mean(dtype=np.float64)), residual


def anomaly_polygons(mask_path: str, score_path: str, out_path: str, min_area_m2: float = 0.0,
                     is_cancelled: Cancelled | None = None, on_progress: Progress | None = None,
                     connectedness: int = 4, staging: Staging | None = None, layer_name: str = "anomalies") -> int:
    """One polygon per patch of flagged pixels (mask value 1) of at least `min_area_m2`; returns their count.

    Fields: ``area_m2`` (see vectorize.AreaMeter), ``pixels`` (pixels in the patch), ``peak_score`` and
    ``mean_score`` (maximum and mean of the score raster inside the patch). Where the score raster has the signed
    residual as band 2 (terrain models, card error "score"): ``relief`` ("depression" where the patch's mean
    residual is negative, "rise" where positive, "" where it is exactly 0 or unknown) and ``mean_residual`` (that
    mean, in the DEM's units). Features are in the order
    gdal.Polygonize finds the patches (top to bottom), not sorted; sort by peak_score in the attribute table.
    The output format follows the extension (.gpkg, .shp, .geojson, .fgb); the mask and the score raster must
    share a grid. With `staging`, the mask and the score may themselves be staged, and the polygons are committed
    with them.
    """
    if not (math.isfinite(min_area_m2) and min_area_m2 >= 0):
        raise InputError(f"The minimum patch area must be 0 or more square metres, not {min_area_m2}.")
    current = staging.current if staging is not None else (lambda path: path)
    mask_ds, score = open_raster(current(mask_path)), open_raster(current(score_path))
    _same_grid(mask_ds, score, mask_path, score_path)
    projection = str(score.GetProjection() or "")
    meter = AreaMeter(projection, score.GetGeoTransform(can_return_null=False), score.RasterXSize,
                      score.RasterYSize)
    zonal = _Zonal(score)
    signed = zonal.sign is not None

    def attributes(value: int, geometry: ogr.Geometry) -> dict[str, Any] | None:
        area = meter.area(geometry)
        if area < min_area_m2 * (1.0 - 1e-9):  # shoelace sums on large UTM coordinates lose the last digits
            return None
        stats = zonal(geometry)
        if stats is None:
            return None
        found: dict[str, Any] = {"area_m2": area, "pixels": stats[0], "peak_score": stats[1], "mean_score": stats[2]}
        if signed:
            found["relief"] = relief_of(stats[3])
            found["mean_residual"] = stats[3]
        return found

    flagged = _flagged_band(current(mask_path), mask_ds)
    band = flagged.GetRasterBand(1)
    fields = [("area_m2", ogr.OFTReal), ("pixels", ogr.OFTInteger64), ("peak_score", ogr.OFTReal),
              ("mean_score", ogr.OFTReal)]
    if signed:
        fields += [("relief", ogr.OFTString), ("mean_residual", ogr.OFTReal)]
    return write_polygons(band, band.GetMaskBand(), projection, out_path, layer_name, fields, attributes,
                          connectedness, staging, is_cancelled, on_progress,
                          [Read(mask_path, "the anomaly mask"), Read(score_path, "the anomaly score")])


def relief_of(mean_residual: float | None) -> str:
    """A patch's relief from its mean signed residual: "depression" below 0, "rise" above, "" otherwise."""
    if mean_residual is None or not math.isfinite(mean_residual) or mean_residual == 0:
        return ""
    return "depression" if mean_residual < 0 else "rise"


def _same_grid(mask: gdal.Dataset, score: gdal.Dataset, mask_path: str, score_path: str) -> None:
    def grid(ds: gdal.Dataset) -> Sequence[Any]:
        return (ds.RasterXSize, ds.RasterYSize, *ds.GetGeoTransform(can_return_null=False))

    a, b = grid(mask), grid(score)
    if a[:2] != b[:2] or not np.allclose(a[2:], b[2:], rtol=0, atol=1e-9 * max(1.0, *map(abs, b[2:]))):
        raise InputError(f"The mask '{os.path.basename(mask_path)}' ({a[0]} x {a[1]} px) and the score raster "
                         f"'{os.path.basename(score_path)}' ({b[0]} x {b[1]} px) are not on the same grid. Use the "
                         "mask written from this score raster (write_mask / the Detect anomalies outputs).")
