"""The index layers and the spectral units of a multispectral scene, written window by window.

`plan_spectral` looks at a decimated read of the scene (at most 512 px a side) once: the scene stretch of each
index layer (indices.py) and, for the units, the per-scene standardisation of the features and the k-means
centroids (kmeans.py). The features of a pixel are its five stretched index layers and the natural log of its six
reflectances (floored as for the indices), each standardised to mean 0, standard deviation 1 over the sample.
`write_spectral` then reads the scene in whole block rows and writes, per window, the Float32 index raster (one
band per layer, nodata where any of the six bands is nodata) and the units raster (UInt8, 0 = nodata, units 1..k,
a colour table and a paletted style), and counts per unit its pixels, its mean index values and, given the class
raster of the same run, its geology classes. Every step is per pixel once the plan is made, so the result does not
depend on the window size.
"""
from __future__ import annotations

import colorsys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from osgeo import gdal

from ..engine.card import ClassInfo
from ..engine.errors import CancelledError
from ..engine.progress import Cancelled, Progress, never_cancelled, no_progress
from ..engine.raster import RasterSource, band_validity, open_raster
from ..engine.staging import Staging, staged
from ..engine.style import multiband_qml, paletted_qml
from ..engine.windows import block_windows, round_up
from ..engine.writer import BLOCK, FLOAT_NODATA, RasterTarget, RasterWriter
from .indices import FLOOR, INDICES, SENSORS, Stretch, compute_indices, descriptions
from .inspect import decimated
from .kmeans import KMeans, assign, choose_k, kmeans

gdal.UseExceptions()

SAMPLE_SIDE = 512
KMEANS_SAMPLE = 20000
UNITS_NODATA = 0
MAX_UNITS = 20
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5")  # matplotlib's tab10 then tab20's light shades
_CHUNK = 8 * BLOCK  # columns per window: bounded memory on very wide scenes


@dataclass(frozen=True)
class SpectralPlan:
    bands: list[int]  # raster bands (1-based) of blue, green, red, NIR, SWIR1, SWIR2
    mult: np.ndarray  # reflectance = raw * mult + add, per band
    add: np.ndarray
    sensor: str  # key of indices.SENSORS, for the band descriptions
    stretch: Stretch
    mean: np.ndarray | None = None  # feature standardisation (units only)
    std: np.ndarray | None = None
    fit: KMeans | None = None
    how: str = ""  # how k was chosen, for the log
    scores: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitStat:
    value: int
    pixels: int
    percent: float
    means: dict[str, float]  # index key -> mean stretched value (0..1)
    geology: str = ""  # the most common class of the geology raster in the unit
    geology_percent: float = 0.0
    color: str = ""

    @property
    def label(self) -> str:
        """'unit 2 (18.1 %): high hydroxyl / clay, mostly clay / hydroxyl'."""
        names = {index.key: index.name for index in INDICES}
        high = sorted((v, k) for k, v in self.means.items() if v >= 0.6)[::-1][:2]
        parts = [f"high {names.get(k, k)}" for _, k in high]
        if self.geology:
            parts.append(f"mostly {self.geology}")
        return f"unit {self.value} ({self.percent:.1f} %)" + (": " + ", ".join(parts) if parts else "")


@dataclass
class SpectralResult:
    indices_path: str = ""
    indices_style: str = ""
    units_path: str = ""
    units_style: str = ""
    units: list[UnitStat] = field(default_factory=list)


def features(rho: np.ndarray, stretched: np.ndarray) -> np.ndarray:
    """(n, 11) features of (6, n) reflectance and (5, n) stretched indices (not yet standardised)."""
    return np.concatenate([stretched, np.log(np.maximum(rho, FLOOR))], axis=0).T.astype(np.float64)


def plan_spectral(path: str, bands: Sequence[int], mult: Sequence[float], add: Sequence[float], sensor: str = "common",
                  units: bool = False, k: int | None = None, seed: int = 0, valid_mask: str = "") -> SpectralPlan:
    """The scene stretch and (with `units`) the k-means fit, from a decimated read of the scene. `k`: the number of
    units, or None to choose it from 3..12 by silhouette. `valid_mask`: a raster on the scene's grid, 0 = masked
    (clouds: RunOptions.valid_mask)."""
    m, a = np.asarray(mult, np.float64), np.asarray(add, np.float64)
    raw, valid = decimated(path, bands, side=SAMPLE_SIDE)
    if valid_mask:
        mask = open_raster(valid_mask)
        valid &= mask.ReadAsArray(0, 0, mask.RasterXSize, mask.RasterYSize, buf_xsize=valid.shape[1],
                                  buf_ysize=valid.shape[0], band_list=[1]).reshape(valid.shape) > 0
    rho = raw * m[:, None, None].astype(np.float32) + a[:, None, None].astype(np.float32)
    values = compute_indices(rho)
    stretch = Stretch.from_sample(values, valid)
    plan = SpectralPlan(list(bands), m, a, sensor if sensor in SENSORS else "common", stretch)
    if not units:
        return plan
    x = features(rho[:, valid], stretch.apply(values[:, valid]))
    rng = np.random.default_rng(seed)
    if len(x) > KMEANS_SAMPLE:
        x = x[rng.choice(len(x), size=KMEANS_SAMPLE, replace=False)]
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    z = (x - mean) / std
    scores: dict[int, float] = {}
    if k:
        fit = kmeans(z, min(int(k), MAX_UNITS), seed)
        how = f"k = {fit.k} as given"
    else:
        fit, scores = choose_k(z, seed=seed)
        tried = ", ".join(f"{n}: {s:.3f}" for n, s in scores.items())
        how = f"k = {fit.k} chosen by the highest mean silhouette on the sample (k: silhouette {tried})" if scores \
            else f"k = {fit.k}: the sample holds only {fit.k} distinct pixel value{'s' if fit.k != 1 else ''}"
    return SpectralPlan(plan.bands, m, a, plan.sensor, stretch, mean, std, fit,
                        f"{how}; k-means++ with seed {seed} on {len(z)} pixels of a decimated read", scores)


def palette(k: int) -> list[str]:
    """k distinct colours: the 20 of PALETTE, then hues by the golden angle."""
    colours = list(PALETTE[:k])
    for i in range(len(colours), k):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.9)
        colours.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return colours


def write_spectral(path: str, plan: SpectralPlan, indices_path: str = "", units_path: str = "",
                   classes_path: str = "", classes: Sequence[ClassInfo] = (), staging: Staging | None = None,
                   is_cancelled: Cancelled | None = None, on_progress: Progress | None = None,
                   rows: int | None = None, columns: int = _CHUNK, valid_mask: str = "") -> SpectralResult:
    """Write the index raster and/or the units raster (`plan` must hold a fit for the units), reading the scene in
    windows of `rows` (default: whole block rows of the file, whole tile rows of the outputs) by `columns`.
    `classes_path`: a class raster on the scene's grid (the geology of the same run, perhaps staged) whose classes
    the units legend counts. `valid_mask`: a raster on the scene's grid, 0 = masked (nodata in both outputs)."""
    cancelled, progress = is_cancelled or never_cancelled, on_progress or no_progress
    fit = plan.fit if units_path else None
    if fit is None and units_path:
        raise ValueError("the plan holds no k-means fit: plan_spectral(..., units=True)")
    result = SpectralResult()
    k = fit.k if fit is not None else 0
    colours = palette(k)
    with staged(staging, cancelled) as stage, ExitStack() as stack:
        ds = open_raster(path)
        source = RasterSource(path, ds, plan.bands, plan.mult.astype(np.float32), plan.add.astype(np.float32))
        width, height = source.width, source.height
        grid = (width, height, source.geotransform, source.projection)
        class_ds = open_raster(stage.current(classes_path)) if classes_path else None
        if class_ds is not None and (class_ds.RasterXSize, class_ds.RasterYSize) != (width, height):
            class_ds = None  # not on the scene's grid: the legend goes without the geology
        class_band = class_ds.GetRasterBand(1) if class_ds is not None else None
        mask_ds = open_raster(valid_mask) if valid_mask else None
        counts, sums = np.zeros(k + 1, np.int64), np.zeros((k + 1, len(INDICES)))
        hist = np.zeros((k + 1, 256), np.int64)
        index_writer = unit_writer = None
        if indices_path:
            meta = {"DEEPSTRATA_INDICES": ",".join(i.key for i in INDICES)}
            index_writer = stack.enter_context(RasterWriter(
                stage, RasterTarget(indices_path, np.dtype(np.float32), FLOAT_NODATA, descriptions(plan.sensor),
                                    metadata=meta), *grid))
            _band_metadata(index_writer.ds, plan)
            index_writer.style_xml = multiband_qml((1, 2, 3), (0.0, 1.0))
        if fit is not None:
            unit_classes = [ClassInfo(j + 1, f"unit {j + 1}", colours[j]) for j in range(k)]
            unit_writer = stack.enter_context(RasterWriter(
                stage, RasterTarget(units_path, np.dtype(np.uint8), UNITS_NODATA, ["spectral units"], [unit_classes],
                                    {"DEEPSTRATA_UNITS_K": str(k), "DEEPSTRATA_UNITS_METHOD": plan.how}), *grid))
        step = rows or _rows(int(ds.GetRasterBand(plan.bands[0]).GetBlockSize()[1]))
        for win in block_windows(width, height, step, columns):
            if cancelled():
                raise CancelledError()
            rho = np.empty((len(plan.bands), win.h, win.w), np.float32)
            valid = np.empty((win.h, win.w), bool)
            source.read_rows(win.y, win.x, rho, valid)  # scaled to reflectance by the source
            if mask_ds is not None:
                valid &= mask_ds.GetRasterBand(1).ReadAsArray(win.x, win.y, win.w, win.h) > 0
            stretched = plan.stretch.apply(compute_indices(rho))
            if index_writer is not None:
                index_writer.write(win.x, win.y, np.where(valid[None], stretched, np.float32(FLOAT_NODATA)))
            if unit_writer is not None and fit is not None and plan.mean is not None and plan.std is not None:
                z = (features(rho[:, valid], stretched[:, valid]) - plan.mean) / plan.std
                labels = assign(z, fit.centroids) + 1
                out = np.zeros((win.h, win.w), np.uint8)
                out[valid] = labels
                unit_writer.write(win.x, win.y, out[None])
                counts += np.bincount(labels, minlength=k + 1)
                for i, layer in enumerate(stretched[:, valid]):
                    sums[:, i] += np.bincount(labels, weights=layer, minlength=k + 1)
                if class_band is not None:
                    found = class_band.ReadAsArray(win.x, win.y, win.w, win.h)
                    ok = band_validity(class_band, found.astype(np.float32), win)[valid]
                    pairs = labels[ok] * 256 + np.clip(found[valid][ok], 0, 255).astype(np.int64)
                    hist += np.bincount(pairs, minlength=hist.size).reshape(hist.shape)
            if win.x + win.w == width:
                progress((win.y + win.h) / height)
        if unit_writer is not None:
            result.units = _legend(counts, sums, hist, classes if class_band is not None else (), colours)
            unit_writer.style_xml = paletted_qml([ClassInfo(u.value, u.label, u.color) for u in result.units])
            unit_writer.ds.GetRasterBand(1).SetDefaultRAT(attribute_table(result.units))
            result.units_path, result.units_style = units_path, unit_writer.style_path
        if index_writer is not None:
            result.indices_path, result.indices_style = indices_path, index_writer.style_path
        source.close()
        ds = class_band = class_ds = mask_ds = None
    return result


def _rows(block: int) -> int:
    """Rows per window: whole block rows of the input that make whole tile rows of the outputs (each output tile
    compressed once), unless the input's blocks are much taller than a tile."""
    return round_up(BLOCK, block) if block <= 4 * BLOCK else BLOCK


def _band_metadata(ds: gdal.Dataset, plan: SpectralPlan) -> None:
    for i, index in enumerate(INDICES):
        band = ds.GetRasterBand(i + 1)
        band.SetMetadataItem("INDEX", index.key)
        band.SetMetadataItem("REFERENCE", index.reference)
        band.SetMetadataItem("STRETCH_LOW", f"{plan.stretch.low[i]:.9g}")
        band.SetMetadataItem("STRETCH_HIGH", f"{plan.stretch.high[i]:.9g}")
        band.SetMetadataItem("SCALE", "ln" if index.log_scale else "linear")


def _legend(counts: np.ndarray, sums: np.ndarray, hist: np.ndarray, classes: Sequence[ClassInfo],
            colours: Sequence[str]) -> list[UnitStat]:
    total = max(int(counts[1:].sum()), 1)
    names = {c.value: c.name for c in classes}
    stats = []
    for j in range(1, len(counts)):
        n = int(counts[j])
        means = {index.key: float(sums[j, i] / n) if n else float("nan") for i, index in enumerate(INDICES)}
        geology, share = "", 0.0
        if names and hist[j].sum():
            best = int(np.argmax(hist[j]))
            geology, share = names.get(best, str(best)), 100.0 * float(hist[j, best]) / float(hist[j].sum())
        stats.append(UnitStat(j, n, 100.0 * n / total, means, geology, share, colours[j - 1]))
    return stats


def attribute_table(units: Sequence[UnitStat]) -> gdal.RasterAttributeTable:
    """The units legend as a raster attribute table: value, label, pixels, percent, mean index layers, geology, and
    the colour (QGIS and GDAL read it from the .aux.xml beside the GeoTIFF)."""
    keys = [index.key for index in INDICES]
    columns = [("value", gdal.GFT_Integer, gdal.GFU_MinMax), ("unit", gdal.GFT_String, gdal.GFU_Name),
               ("pixels", gdal.GFT_Integer, gdal.GFU_PixelCount), ("percent", gdal.GFT_Real, gdal.GFU_Generic)]
    columns += [(f"mean_{k}", gdal.GFT_Real, gdal.GFU_Generic) for k in keys]
    columns += [("geology", gdal.GFT_String, gdal.GFU_Generic), ("geology_percent", gdal.GFT_Real, gdal.GFU_Generic)]
    columns += [(c, gdal.GFT_Integer, usage) for c, usage in (("red", gdal.GFU_Red), ("green", gdal.GFU_Green),
                                                             ("blue", gdal.GFU_Blue))]
    table = gdal.RasterAttributeTable()
    for name, kind, usage in columns:
        table.CreateColumn(name, kind, usage)
    table.SetRowCount(len(units))
    for row, u in enumerate(units):
        rgb = [int(u.color[i:i + 2], 16) for i in (1, 3, 5)]
        values: list[Any] = [u.value, u.label, u.pixels, u.percent] + [u.means[k] for k in keys] + \
            [u.geology, u.geology_percent] + rgb
        for col, ((_, kind, _), value) in enumerate(zip(columns, values)):
            if kind == gdal.GFT_Integer:
                table.SetValueAsInt(row, col, int(value))
            elif kind == gdal.GFT_Real:
                table.SetValueAsDouble(row, col, float(value))
            else:
                table.SetValueAsString(row, col, str(value))
    return table


def format_units(units: Sequence[UnitStat]) -> str:
    """The legend as a text table for the log."""
    keys = [i.key for i in INDICES]
    head = f"{'unit':>4}  {'share %':>7}  " + "  ".join(f"{k:>8}" for k in keys) + "  geology"
    lines = [head]
    for u in units:
        geology = f"{u.geology} ({u.geology_percent:.0f} %)" if u.geology else "-"
        lines.append(f"{u.value:>4}  {u.percent:>7.2f}  " + "  ".join(f"{u.means[k]:>8.3f}" for k in keys)
                     + f"  {geology}")
    return "\n".join(lines)
