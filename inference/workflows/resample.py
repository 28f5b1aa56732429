"""Run a model at its own pixel size: warp the input to the model's grid, run it, warp the outputs back.

Models are trained at one ground pixel size on square pixels. `plan_resample` decides whether a raster needs
warping (projected rasters far from the model's size; geographic ones always, into their UTM zone);
`run_at_model_resolution` does the round trip with GDAL by chunks and writes outputs exactly on the input grid.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from osgeo import gdal, osr

from ..engine.card import ClassInfo
from ..engine.destinations import Destination, Read, check_destinations
from ..engine.domain import input_domain
from ..engine.errors import CancelledError, InputError, OutputError
from ..engine.georef import ground_pixel_size, mean_pixel_size, srs_of
from ..engine.model import CLASS_TASKS, Model, load_model
from ..engine.options import RunOptions, RunResult
from ..engine.progress import Cancelled, Progress, doing, never_cancelled, no_progress, note, part
from ..engine.provenance import KEYS as PROVENANCE_KEYS
from ..engine.raster import RasterSource, extent_to_window, input_reads, open_raster
from ..engine.run import run_model, run_parameters
from ..engine.scale import TerrainScale, terrain_scale
from ..engine.staging import Staging, staged
from ..engine.geotiff import gtiff_options
from ..engine.windows import Window, block_windows, bounds, is_north_up, transform
from ..engine.writer import BLOCK, FLOAT_NODATA, RasterTarget, RasterWriter

gdal.UseExceptions()
log = logging.getLogger(__name__)

EDGE_FILL = 2  # model pixels the warped input is grown past its footprint (see _grow_edges)
WARP_MEMORY_MB = 64  # GDAL warps by chunks of about this size
CHUNK_COLUMNS = 4096  # columns copied at once from the back-warp (a multiple of BLOCK)
_NUMPY_TYPES = {gdal.GDT_Byte: np.uint8, gdal.GDT_UInt16: np.uint16, gdal.GDT_Float32: np.float32}


@dataclass(frozen=True)
class ResamplePlan:
    """The grid a raster is warped to before the model runs."""

    crs_wkt: str
    crs_label: str  # e.g. "EPSG:32611 (UTM 11N)"
    pixel_size_m: float  # the model's ground pixel size
    resolution: float  # the same in the target CRS's units
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in the target CRS
    source_pixel_m: tuple[float, float]  # the raster's ground pixel size (x, y)
    reason: str  # one sentence for the log

    @property
    def width(self) -> int:
        return max(1, round((self.bounds[2] - self.bounds[0]) / self.resolution))

    @property
    def height(self) -> int:
        return max(1, round((self.bounds[3] - self.bounds[1]) / self.resolution))

    @property
    def resampling(self) -> str:
        """'average' when the pixels get larger (nothing is skipped), 'bilinear' when they get smaller."""
        return "average" if self.pixel_size_m > sum(self.source_pixel_m) / 2 else "bilinear"


@dataclass
class ResampledRun:
    result: RunResult  # paths, width and height of the final outputs, on the input's grid
    plan: ResamplePlan | None  # None: the model ran on the raster as it is


def _crs_label(srs: osr.SpatialReference) -> str:
    name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    return f"{name}:{code}" if name and code else str(srs.GetName() or "its CRS")


def _local_projection(lon: float, lat: float) -> tuple[osr.SpatialReference, str]:
    """WGS84 UTM zone of (lon, lat); beyond UTM's limits (84N, 80S) a Lambert azimuthal equal-area centred there.

    Keeps it simple: no Norway/Svalbard zone exceptions, and a raster spanning many zones still gets its centre's.
    """
    lon = (lon + 180.0) % 360.0 - 180.0
    srs = osr.SpatialReference()
    if -80.0 <= lat <= 84.0:
        zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
        code = (32600 if lat >= 0 else 32700) + zone
        srs.ImportFromEPSG(code)
        label = f"EPSG:{code} (UTM {zone}{'N' if lat >= 0 else 'S'})"
    else:
        srs.SetWellKnownGeogCS("WGS84")
        srs.SetLAEA(lat, lon, 0.0, 0.0)
        label = f"a Lambert azimuthal equal-area projection centred on {lat:.4f}, {lon:.4f}"
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs, label


def _check_north_up(gt: Sequence[float], name: str, what: str) -> None:
    if not is_north_up(gt):
        raise InputError(f"'{name}' is not north-up (geotransform {tuple(gt)}), so {what}. Warp it north-up "
                         "first (gdalwarp, or Raster > Projections > Warp).")


def _snap(bounds: Sequence[float], res: float, aligned: bool) -> tuple[float, float, float, float]:
    """Grow bounds to whole pixels: on multiples of `res` when `aligned`, else from the top-left corner."""
    xmin, ymin, xmax, ymax = bounds
    if aligned:
        return (math.floor(xmin / res) * res, math.floor(ymin / res) * res,
                math.ceil(xmax / res) * res, math.ceil(ymax / res) * res)
    cols = max(1, math.ceil((xmax - xmin) / res - 1e-6))
    rows = max(1, math.ceil((ymax - ymin) / res - 1e-6))
    return xmin, ymax - rows * res, xmin + cols * res, ymax


def plan_resample(ds: gdal.Dataset, path: str, model_pixel_m: float | None, tolerance: float = 0.25,
                  window: Window | None = None) -> ResamplePlan | None:
    """The grid to warp `ds` (or its `window`) to so the model sees its own pixel size; None if none is needed.

    None when the model states no pixel size, the raster has no CRS, or the raster is projected and both ground
    pixel sides are within `tolerance` (relative) of the model's. Geographic rasters always get a plan: into the
    UTM zone of their centre, at the model's pixel size.
    """
    srs, sizes = srs_of(ds), ground_pixel_size(ds)
    if not model_pixel_m or model_pixel_m <= 0 or srs is None or sizes is None:
        return None
    geographic = bool(srs.IsGeographic())
    if not geographic and all(abs(s / model_pixel_m - 1.0) <= tolerance for s in sizes):
        return None
    name = os.path.basename(path)
    gt = ds.GetGeoTransform()
    _check_north_up(gt, name, f"it cannot be resampled to the model's {model_pixel_m:g} m pixels")
    window = window or Window(0, 0, ds.RasterXSize, ds.RasterYSize)
    box = bounds(window, gt)
    source = _crs_label(srs)
    sx, sy = sizes
    if geographic:
        lon, lat = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        target, label = _local_projection(lon, lat)
        res = model_pixel_m / target.GetLinearUnits()
        to_target = osr.CoordinateTransformation(srs, target)
        box = _snap(to_target.TransformBounds(*box, 21), res, aligned=True)
        reason = (f"'{name}' is in {source} with about {sx:.3g} x {sy:.3g} m pixels; resampling to "
                  f"{model_pixel_m:g} m in {label} for the model, then back to the input grid.")
    else:
        target, label = srs, source
        res = model_pixel_m / srs.GetLinearUnits()
        box = _snap(box, res, aligned=False)
        reason = (f"'{name}' has about {sx:.3g} x {sy:.3g} m pixels but the model was trained at "
                  f"{model_pixel_m:g} m; resampling to {model_pixel_m:g} m in {label} for the model, then back "
                  "to the input grid.")
    return ResamplePlan(str(target.ExportToWkt()), label, float(model_pixel_m), res, box, (sx, sy), reason)


def _callback(on_progress: Progress | None, is_cancelled: Cancelled | None) -> object:
    def callback(complete: float, message: object, data: object) -> int:
        if on_progress:
            on_progress(min(max(float(complete), 0.0), 1.0))
        return 0 if is_cancelled and is_cancelled() else 1
    return callback


def _failed(exc: Exception, what: str, is_cancelled: Cancelled | None) -> Exception:
    if is_cancelled and is_cancelled():
        return CancelledError()
    return OutputError(f"GDAL could not {what} ({str(exc).strip()}). Check the disk space and that the raster "
                       "is readable.")


def warp_to_model_grid(path: str, plan: ResamplePlan, out_path: str, is_cancelled: Cancelled | None = None,
                       on_progress: Progress | None = None) -> str:
    """Warp the raster at `path` onto the plan's grid as a tiled, compressed Float32 GeoTIFF; returns `out_path`.

    Nodata is kept: the bands' nodata values when every band has one, else the writer's float nodata (pixels
    masked in the source and pixels outside it get it). Raises CancelledError when `is_cancelled()` turns true.
    """
    ds = open_raster(path)
    try:
        found = [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(ds.RasterCount)]
        nodata = [FLOAT_NODATA if None in found else float(v) for v in found]
        options = gdal.WarpOptions(
            format="GTiff", dstSRS=plan.crs_wkt, outputBounds=plan.bounds, xRes=plan.resolution,
            yRes=plan.resolution, resampleAlg=plan.resampling, outputType=gdal.GDT_Float32,
            dstNodata=" ".join(repr(v) for v in nodata), warpMemoryLimit=WARP_MEMORY_MB, multithread=False,
            creationOptions=gtiff_options(np.dtype(np.float32)), callback=_callback(on_progress, is_cancelled))
        try:
            if gdal.Warp(out_path, ds, options=options) is None:
                raise RuntimeError("gdal.Warp returned nothing")
            _grow_edges(out_path)
        except RuntimeError as exc:
            for leftover in (out_path, out_path + ".aux.xml"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            raise _failed(exc, f"warp '{os.path.basename(path)}' to the model's grid", is_cancelled) from exc
    finally:
        ds = None
    return out_path


def _warp_mask(path: str | None, plan: ResamplePlan, out_path: str) -> str | None:
    """A valid mask (RunOptions.valid_mask) warped by nearest neighbour onto the plan's grid, like the input."""
    if not path:
        return None
    options = gdal.WarpOptions(format="GTiff", dstSRS=plan.crs_wkt, outputBounds=plan.bounds, xRes=plan.resolution,
                               yRes=plan.resolution, resampleAlg="near", outputType=gdal.GDT_Byte, dstNodata=0,
                               creationOptions=["COMPRESS=DEFLATE"])
    if gdal.Warp(out_path, path, options=options) is None:
        raise InputError(f"Cannot warp the mask '{os.path.basename(path)}' to the model's grid.")
    return out_path


def _grow_edges(path: str, pixels: int = EDGE_FILL) -> None:
    """Extend the warped data `pixels` model pixels past its footprint (GDAL's inverse-distance fill, which works
    line by line). Without it, the input pixels along the footprint's edge can find a nodata model pixel as their
    nearest neighbour on the way back; the fill is masked out again where the input is nodata."""
    ds = gdal.Open(path, gdal.GA_Update)
    previous = gdal.GetThreadLocalConfigOption("CPL_TMPDIR", None)
    # its work files go beside `path` (not into the cwd); thread-local, as QGIS runs algorithms in threads
    gdal.SetThreadLocalConfigOption("CPL_TMPDIR", os.path.dirname(os.path.abspath(path)))
    try:
        for index in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(index)
            gdal.FillNodata(band, None, maxSearchDist=pixels, smoothingIterations=0)
    finally:
        gdal.SetThreadLocalConfigOption("CPL_TMPDIR", previous)
        ds = None


def _target(src: gdal.Dataset, out_path: str) -> RasterTarget:
    """The back-warped copy of `src`: its type, nodata, band names, task metadata, and each band's classes (its
    category names and colour table)."""
    src.GetGeoTransform()  # GDAL 3.6 GTiff loads the .aux.xml (category names) lazily: make sure it is read
    band = src.GetRasterBand(1)
    dtype = _NUMPY_TYPES.get(band.DataType)
    if dtype is None:
        raise OutputError(f"'{os.path.basename(out_path)}': {gdal.GetDataTypeName(band.DataType)} rasters "
                          "cannot be warped back; model outputs are Byte, UInt16 or Float32.")
    nodata = band.GetNoDataValue()
    nodata = (FLOAT_NODATA if dtype == np.float32 else 0.0) if nodata is None else nodata
    band_classes = []
    for index in range(1, src.RasterCount + 1):
        b = src.GetRasterBand(index)
        names, table = b.GetCategoryNames() or [], b.GetColorTable()
        band_classes.append([ClassInfo(v, n, "#%02x%02x%02x" % tuple(table.GetColorEntry(v)[:3]) if table
                                       else "#808080") for v, n in enumerate(names) if n])
    # the run's own provenance comes from the staging: not the scratch run's (which names the warped input)
    metadata = {k: v for k, v in (src.GetMetadata() or {}).items()
                if not k.startswith("STATISTICS_") and k not in PROVENANCE_KEYS}
    return RasterTarget(out_path, np.dtype(dtype), float(nodata),
                        [src.GetRasterBand(i + 1).GetDescription() for i in range(src.RasterCount)],
                        band_classes if any(band_classes) else [], metadata)


def _warp_back(stage: Staging, path: str, like_path: str, out_path: str, categorical: bool, window: Window | None,
               valid_bands: Sequence[int] | None, style: str | None, on_progress: Progress | None,
               is_cancelled: Cancelled | None) -> None:
    """Warp `path` onto the input grid into `out_path`, staged (with the QML `style`)."""
    like, src = open_raster(like_path), open_raster(path)
    name = os.path.basename(like_path)
    gt, wkt = like.GetGeoTransform(), like.GetProjection()
    _check_north_up(gt, name, "outputs cannot be warped back onto its grid")
    if not wkt or not src.GetProjection():
        raise InputError(f"'{name}' or '{os.path.basename(path)}' has no CRS, so one cannot be warped onto the "
                         "other. Assign the layer's CRS first.")
    window = window or Window(0, 0, like.RasterXSize, like.RasterYSize)
    target = _target(src, out_path)
    vrt = gdal.Warp("", src, options=gdal.WarpOptions(
        format="VRT", dstSRS=wkt, outputBounds=bounds(window, gt), width=window.w, height=window.h,
        resampleAlg="near" if categorical else "bilinear", dstNodata=repr(target.nodata),
        warpMemoryLimit=WARP_MEMORY_MB, multithread=False))  # lazy: warped chunk by chunk as it is read
    source = RasterSource(like_path, like, [int(b) for b in valid_bands]) if valid_bands else None
    try:
        with RasterWriter(stage, target, window.w, window.h, transform(window, gt), wkt) as writer:
            writer.style_xml = style
            for win in block_windows(window.w, window.h, BLOCK, CHUNK_COLUMNS):
                if is_cancelled and is_cancelled():
                    raise CancelledError()
                array = vrt.ReadAsArray(win.x, win.y, win.w, win.h).reshape(src.RasterCount, win.h, win.w)
                if source is not None:  # nodata wherever the input is nodata, as the engine writes it
                    valid = np.empty((win.h, win.w), dtype=bool)
                    data = np.empty((len(source.bands), win.h, win.w), dtype=np.float32)
                    source.read_rows(window.y + win.y, window.x + win.x, data, valid)
                    array[:, ~valid] = target.nodata
                writer.write(win.x, win.y, array.astype(target.dtype, copy=False))
                if win.x1 == window.w:
                    vrt.FlushCache()
                    if on_progress:
                        on_progress(win.y1 / window.h)
    except RuntimeError as exc:  # GDAL
        raise _failed(exc, f"warp '{os.path.basename(path)}' back onto the input grid", is_cancelled) from exc


def warp_to_input_grid(path: str, like_path: str, out_path: str, categorical: bool, window: Window | None = None,
                       valid_bands: Sequence[int] | None = None, on_progress: Progress | None = None,
                       is_cancelled: Cancelled | None = None, staging: Staging | None = None) -> str:
    """Warp a model output at `path` exactly onto the grid of `like_path` (or of its pixel `window`).

    Same CRS, geotransform, width and height as the input; 'near' for class rasters (`categorical`), 'bilinear'
    for scores. The data type (Byte, UInt16 or Float32), nodata, band descriptions, task metadata, category names
    and colour tables are kept. With `valid_bands`, pixels where those input bands are nodata become nodata.
    Staged: committed here, or with the caller's `staging`.
    """
    check_destinations([Destination(out_path, "the warped output")],
                       [Read(like_path, "the raster whose grid is used"), Read(path, "the raster warped")])
    with staged(staging, is_cancelled) as stage:
        _warp_back(stage, path, like_path, out_path, categorical, window, valid_bands, None, on_progress,
                   is_cancelled)
    return out_path


def _context_window(ds: gdal.Dataset, window: Window, model: Model, px: float | None) -> Window:
    """`window` grown by the model's context (margin + 2 pixels of `px` m), clipped to the raster."""
    sizes, margin = ground_pixel_size(ds), model.card.input.margin
    if not sizes or not px:
        return window
    gx, gy = (math.ceil(((16 if margin is None else margin) + 2) * px / s) for s in sizes)
    x0, y0 = max(0, window.x - gx), max(0, window.y - gy)
    return Window(x0, y0, min(ds.RasterXSize, window.x1 + gx) - x0, min(ds.RasterYSize, window.y1 + gy) - y0)


def _prepare(model: Model, ds: gdal.Dataset, path: str, options: RunOptions, tolerance: float,
             window: Window | None) -> tuple[RunOptions, ResamplePlan | None, TerrainScale | None]:
    """The run's options (a terrain model's search distance resolved), its resample plan and its scale."""
    spec = model.card.input.scale
    scale = None
    if spec is None:
        target = model.card.input.pixel_size_m
    else:  # terrain models run at the DEM's cell size, or coarser when the search reaches too far
        scale = terrain_scale(spec, ground_pixel_size(ds), options.search_m, f"'{os.path.basename(path)}'")
        target, tolerance = scale.coarse_cell_m, 0.0
        options = replace(options, search_m=scale.search_m)
    region = _context_window(ds, window, model, target or mean_pixel_size(ds)) if window else None
    plan = plan_resample(ds, path, target, tolerance, region)
    _check_upsampling(plan, options, path)
    return options, plan, scale


def _check_upsampling(plan: ResamplePlan | None, options: RunOptions, path: str) -> None:
    """Refuse to split each pixel into more than `options.max_upsampling` squared model pixels."""
    if plan is None:
        return
    factor = min(plan.source_pixel_m) / plan.pixel_size_m
    if factor <= options.max_upsampling * (1 + 1e-6):
        return
    cells = plan.width * plan.height
    raise InputError(f"'{os.path.basename(path)}' has {min(plan.source_pixel_m):.3g} m pixels and the model was "
                     f"trained at {plan.pixel_size_m:g} m: reaching it means upsampling {factor:.3g}x "
                     f"({cells / 1e6:,.1f} megapixels), which takes long and invents detail the DEM does not have. "
                     "Use a model made for this resolution (the terrain workflows' default models work at any "
                     f"cell size), or allow it with --max-upsampling {math.ceil(factor)}.")


def _style(path: str) -> str | None:
    return Path(path).read_text(encoding="utf-8") if path else None


def run_at_model_resolution(model: Model | str | os.PathLike[str], input_path: str, output_path: str,
                            options: RunOptions | None = None, on_progress: Progress | None = None,
                            is_cancelled: Cancelled | None = None, tolerance: float = 0.25,
                            staging: Staging | None = None) -> ResampledRun:
    """`run_model` at the model's pixel size (card input.pixel_size_m), with outputs on the input's grid.

    Without a plan (see `plan_resample`) this is `run_model`. Otherwise the input (its `options.extent` grown by
    the model's context, or all of it) is warped into a scratch folder beside the output (always removed), the
    model runs there, and each output is warped back onto the input grid (the extent's window of it): classes by
    nearest neighbour, scores bilinearly, nodata wherever the input is nodata. The outputs are staged: committed
    here when all are complete, or with the caller's `staging`. Progress: 10% warp in, 80% model, 10% warp back.
    """
    options = options or RunOptions()
    progress = on_progress or no_progress
    cancelled = is_cancelled or never_cancelled
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    if not isinstance(model, Model):
        model = load_model(model, options.device, options.threads, options.card)
    ds = open_raster(input_path)
    try:
        window = extent_to_window(ds, options.extent, input_path) if options.extent else None
        options, plan, scale = _prepare(model, ds, input_path, options, tolerance, window)
        size = (window.w, window.h) if window else (ds.RasterXSize, ds.RasterYSize)
        reads = input_reads(ds, input_path) + model.reads
        if plan is not None:  # said and checked here, on the user's raster; the run reads the resampled copy
            note(log, scale.describe() if scale is not None else plan.reason)
            real_name = f"'{os.path.basename(input_path)}'"
            domain = input_domain(ds, input_path, model.card, options, real_name)
            for message in domain:
                log.warning("%s", message)
    finally:
        ds = None
    if plan is None:
        return ResampledRun(run_model(model, input_path, output_path, options, on_progress, is_cancelled,
                                      staging), None)
    started = time.perf_counter()
    labels = options.labels
    destinations = [Destination(output_path, labels.get("output", "the output"))]
    if options.confidence_path:
        destinations.append(Destination(options.confidence_path, labels.get("confidence", "the confidence raster")))
    check_destinations(destinations, reads)
    with staged(staging, cancelled, options.output_format) as stage:
        scratch = stage.folder(output_path, "scratch")
        doing(f"Resampling {real_name} to {plan.pixel_size_m:g} m")
        warped = warp_to_model_grid(input_path, plan, os.path.join(scratch, "input.tif"), cancelled,
                                    part(progress, 0.0, 0.1))
        conf = os.path.join(scratch, "confidence.tif") if options.confidence_path else None
        mask = _warp_mask(options.valid_mask, plan, os.path.join(scratch, "valid_mask.tif"))
        result = run_model(model, warped, os.path.join(scratch, "output.tif"),
                           replace(options, extent=None, confidence_path=conf, valid_mask=mask, output_format="gtiff",
                                   labels={**options.labels, "input": real_name}, input_checked=True),
                           part(progress, 0.1, 0.8), cancelled)
        warnings = domain + result.warnings
        stage.model = (model.card.name, model.card.version, model.sha256)
        for key, value in run_parameters(input_path, options, result).items():
            stage.parameters.setdefault(key, value)
        stage.parameters.setdefault("resampled_to", f"{plan.pixel_size_m:g} m in {plan.crs_label}")
        if scale is not None:
            result = replace(result, scale=scale.describe())
        jobs = [(result.output_path, output_path, result.task in CLASS_TASKS, result.style_path)]
        if result.confidence_path and options.confidence_path:
            jobs.append((result.confidence_path, options.confidence_path, False, result.confidence_style_path))
        doing(f"Bringing the results back to the grid of {real_name}")
        for k, (src, final, is_class, style) in enumerate(jobs):
            _warp_back(stage, src, input_path, final, is_class, window, result.bands, _style(style),
                       part(progress, 0.9 + 0.1 * k / len(jobs), 0.1 / len(jobs)), cancelled)
        if cancelled():
            raise CancelledError()
    progress(1.0)
    qml = [str(Path(job[1]).with_suffix(".qml")) if job[3] else "" for job in jobs]
    done = replace(result, output_path=output_path, confidence_path=jobs[1][1] if len(jobs) > 1 else None,
                   style_path=qml[0], confidence_style_path=qml[1] if len(qml) > 1 else "", warnings=warnings,
                   width=size[0], height=size[1], seconds=time.perf_counter() - started)
    return ResampledRun(done, plan)
