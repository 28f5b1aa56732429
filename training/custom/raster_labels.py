"""Label rasters (class ids, or values for regression) brought onto an image's grid: read as they are when
aligned, else warped (nearest neighbour for classes, bilinear for values) and reported; labelled pixels of
the label raster outside the image are counted."""
from __future__ import annotations

import numpy as np
from osgeo import gdal, ogr, osr

from ..data.grid import Grid, grid_of, open_raster
from ..data.labels import MAX_CLASS, _same_grid
from .findings import Findings, Refused
from .inputs import crs_name


def _outside(src: gdal.Dataset, labelled: np.ndarray, grid: Grid) -> int:
    """Labelled pixels of ``src`` whose centres fall outside ``grid``'s extent (its bounds taken into the label
    raster's CRS, densified, when the CRSs differ)."""
    x0, y0, x1, y1 = grid.bounds()
    own = grid_of(src)
    if grid.wkt and own.wkt and not own.srs().IsSame(grid.srs()):
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        box = ogr.Geometry(ogr.wkbPolygon)
        box.AddGeometry(ring)
        box.Segmentize(max(x1 - x0, y1 - y0) / 64)
        box.Transform(osr.CoordinateTransformation(grid.srs(), own.srs()))
        x0, x1, y0, y1 = box.GetEnvelope()
    gt = own.geotransform
    rows, cols = np.nonzero(labelled)
    xs = gt[0] + (cols + 0.5) * gt[1]
    ys = gt[3] + (rows + 0.5) * gt[5]
    return int(((xs < x0) | (xs > x1) | (ys < y0) | (ys > y1)).sum())


def read_raster_labels(path: str, grid: Grid, findings: Findings, numeric: bool,
                       image: str) -> tuple[np.ndarray, dict[int, str]]:
    """(H, W) labels on ``grid``: int64 class ids (0 = unlabelled) with names from the band's categories, or
    float32 values (NaN = unlabelled) when ``numeric``."""
    src = open_raster(path)
    band = src.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    if _same_grid(src, grid):
        values = band.ReadAsArray().astype(np.float64)
    else:
        method = "bilinear" if numeric else "near"
        warped = gdal.Warp("", src, format="MEM", width=grid.width, height=grid.height, outputBounds=grid.bounds(),
                           dstSRS=grid.wkt or None, resampleAlg=method, outputType=gdal.GDT_Float64,
                           srcNodata=nodata, dstNodata=float("nan"))
        values = warped.GetRasterBand(1).ReadAsArray()
        own = grid_of(src)
        how = "nearest neighbour" if method == "near" else "bilinear"
        crs = "" if not own.wkt or not grid.wkt or own.srs().IsSame(grid.srs()) else \
            f", reprojected from {crs_name(own)} to {crs_name(grid)}"
        findings.add("crs" if crs else "resolution",
                     f"label raster {path} is on another grid than {image} ({abs(own.geotransform[1]):g} px"
                     f"{crs}): warped onto the image grid ({how})", 1, "reprojected" if crs else "resampled",
                     labels=path, image=image)
        raw = band.ReadAsArray().astype(np.float64)
        labelled = np.isfinite(raw)
        if nodata is not None:
            labelled &= raw != nodata
        if not numeric:
            labelled &= raw != 0
        out = _outside(src, labelled, grid)
        if out:
            findings.add("outside", f"{out} labelled pixels of {path} (in its own pixels) lie outside {image}: "
                                    "ignored", out, "dropped", labels=path, image=image, pixels=out)
    unlabelled = ~np.isfinite(values)
    if nodata is not None:
        unlabelled |= values == nodata
    if numeric:
        return np.where(unlabelled, np.nan, values).astype(np.float32), {}
    values[unlabelled] = 0
    if np.any(values < 0) or np.any(values > MAX_CLASS) or np.any(values != np.round(values)):
        raise Refused(f"label raster {path} must hold integer class ids 0..{MAX_CLASS} (0 = unlabelled); for "
                      "continuous values use `python -m training regress`.")
    ids = values.astype(np.int64)
    names = band.GetCategoryNames() or []
    found = {int(v): (names[v] if v < len(names) and names[v] else str(int(v))) for v in np.unique(ids) if v}
    return ids, found


def merge_names(into: dict[int, str], found: dict[int, str], path: str, findings: Findings) -> None:
    for value, name in found.items():
        if value in into and into[value] != name:
            findings.add("class_names", f"class id {value} is {into[value]!r} in one label raster and {name!r} in "
                                        f"{path}: kept {into[value]!r}", 1, "reported", value=value)
            continue
        into[value] = name

