"""The terrain anomaly model scored through the plugin's engine on every DEM: planted anomalies (model vs relative
relief vs robust local z-score), the natural DEM's flag rate at the default threshold, the border frame and nodata
holes, per-kind detection and the depression/rise sign; and the report (README.md + results.json)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from osgeo import gdal

from deepstrata.inference import RunOptions, run_model

from .terrain_anomalies import KINDS, Scene, plant_scene
from .terrain_anomaly_data import BY_NAME, LoadedDem, load, pixel_auc, relative_relief, robust_z
from .terrain_anomaly_net import DEFAULT_CELLS
from .workflow import engine_output, read_output, write_json

EVAL_SEED = 1000  # planted scenes of the report (the head was fitted on seeds 1-3)
#: DEMs whose natural flags are drawn (JPEG, hillshade with depressions blue and rises red)
PICTURES = ("maungawhau_lidar_2m", "minnesota_lidar", "holyrood_lidar_dsm_2p5m", "cape_peninsula_srtm3s", "rhine_30s")
#: Real features on the Maungawhau lidar: a longer search and a lower threshold than the card's (see the README)
REAL_FEATURES = ("maungawhau_lidar_2m", 48.0, 4.0)
PER_KIND = 10
FRAME = 3


@dataclass
class DemResult:
    name: str
    split: str
    about: str
    size: tuple[int, int]
    cell: tuple[float, float]
    search_m: float
    planted: int
    positives: int
    auc: dict[str, float]
    flag_rate: float  # natural DEM, default threshold
    frame_ratio: float  # natural DEM: rate in the outer 3-px frame / interior rate
    hole_ratio: float  # natural DEM with holes punched: rate within 3 px of the holes / away from them
    frame_flags: tuple[int, int]  # flagged cells in the frame, in the interior (natural DEM)
    frame_ratio_p99: float  # the same at the score 1 % of the interior reaches (both rates measurable)
    hole_ratio_p99: float
    kinds: dict[str, dict[str, Any]]
    sign_correct: str  # planted anomalies whose mean signed residual has the planted sign
    seconds: float


def write_like(path: Path, z: np.ndarray, like: str) -> str:
    src = gdal.Open(like)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), z.shape[1], z.shape[0], 1, gdal.GDT_Float32,
                                              ["COMPRESS=DEFLATE", "TILED=YES"])
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    band.WriteArray(z.astype(np.float32))
    ds = None
    return str(path)


def run(model: Path, raster: str) -> tuple[np.ndarray, np.ndarray]:
    """(score, signed residual) through the engine at the model's default search distance; NaN at nodata."""
    out, _ = engine_output(model, raster, threads=1)
    return out[0], out[1]


def rate_ratio(flagged: np.ndarray, valid: np.ndarray, near: np.ndarray) -> tuple[float, int, int]:
    """(rate near / rate elsewhere, flagged near, flagged elsewhere) over valid cells."""
    a, b = flagged & near & valid, flagged & ~near & valid
    rate_near = a.sum() / max((near & valid).sum(), 1)
    rate_far = b.sum() / max((~near & valid).sum(), 1)
    ratio = float(rate_near / rate_far) if rate_far else (0.0 if rate_near == 0 else float("inf"))
    return ratio, int(a.sum()), int(b.sum())


def holes(shape: tuple[int, int], seed: int = 7, count: int = 8) -> np.ndarray:
    """Deterministic round nodata holes (radius 4-15 cells) away from the border."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    for _ in range(count):
        r = int(rng.integers(4, 16))
        y, x = int(rng.integers(30, max(31, shape[0] - 30))), int(rng.integers(30, max(31, shape[1] - 30)))
        mask |= (rows - y) ** 2 + (cols - x) ** 2 <= r * r
    return mask


def ring(mask: np.ndarray, width: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=width) & ~mask


def kinds_of(scene: Scene, score: np.ndarray, residual: np.ndarray, threshold: float) -> tuple[dict, str]:
    negatives = scene.normal & np.isfinite(score)
    out: dict[str, dict[str, Any]] = {}
    right = total = 0
    for kind in KINDS:
        found, signs = [], []
        for i, p in enumerate(scene.planted):
            if p.kind != kind:
                continue
            cells = scene.labels == i + 1
            found.append(bool(np.nanmax(np.where(cells, score, -np.inf)) >= threshold))
            mean = float(np.nanmean(residual[cells])) if cells.any() else 0.0
            signs.append(np.sign(mean) == p.sign)
        mask = scene.kind_mask(kind) & np.isfinite(score)
        out[kind] = {"auc": round(pixel_auc(score, mask, negatives), 4) if mask.any() else None,
                     "detected": f"{sum(found)}/{len(found)}", "sign": f"{sum(signs)}/{len(signs)}"}
        right, total = right + sum(signs), total + len(signs)
    return out, f"{right}/{total}"


def evaluate(model: Path, name: str, split: str, threshold: float, folder: Path,
             pictures: Path | None = None) -> DemResult:
    import time

    started = time.perf_counter()
    dem: LoadedDem = load(name)
    search = DEFAULT_CELLS * (dem.cell[0] + dem.cell[1]) / 2
    natural, natural_residual = run(model, dem.path)
    valid = np.isfinite(dem.elevation) & np.isfinite(natural)
    flagged = valid & (natural >= threshold)
    frame = np.zeros(valid.shape, dtype=bool)
    frame[:FRAME], frame[-FRAME:], frame[:, :FRAME], frame[:, -FRAME:] = True, True, True, True
    # the frame of the valid data: the raster's edge and the edge of nodata outside the DEM (sea, basin)
    frame |= ring(~np.isfinite(dem.elevation), FRAME)
    frame_ratio, in_frame, inside = rate_ratio(flagged, valid, frame)
    cut = float(np.quantile(natural[valid & ~frame], 0.99))
    frame_p99 = rate_ratio(valid & (natural >= cut), valid, frame)[0]
    shape = (int(dem.elevation.shape[0]), int(dem.elevation.shape[1]))
    punched = np.where(holes(shape), np.nan, dem.elevation)
    holed, _ = run(model, write_like(folder / f"{name}_holes.tif", punched, dem.path))
    hvalid = np.isfinite(punched) & np.isfinite(holed) & ~frame
    beside = ring(np.isnan(punched) & ~np.isnan(dem.elevation), FRAME)
    hole_ratio = rate_ratio(hvalid & (holed >= threshold), hvalid, beside)[0]
    hole_p99 = rate_ratio(hvalid & (holed >= float(np.quantile(holed[hvalid & ~beside], 0.99))), hvalid, beside)[0]
    if pictures is not None and name in PICTURES:
        picture(dem, natural, natural_residual, threshold, pictures / f"{name}_natural.jpg")
    if pictures is not None and name == REAL_FEATURES[0]:
        target = str(folder / f"{name}_search.tif")
        run_model(str(model), dem.path, target, RunOptions(device="cpu", threads=1, search_m=REAL_FEATURES[1]))
        out = read_output(target)
        picture(dem, out[0], out[1], REAL_FEATURES[2], pictures / f"{name}_search{REAL_FEATURES[1]:g}m_threshold"
                f"{REAL_FEATURES[2]:g}.jpg")
    scene = plant_scene(dem.elevation, dem.cell, EVAL_SEED, PER_KIND)
    score, residual = run(model, write_like(folder / f"{name}_planted.tif", scene.elevation, dem.path))
    pos, neg = scene.footprint & np.isfinite(score), scene.normal & np.isfinite(score)
    auc = {"model": round(pixel_auc(score, pos, neg), 4),
           "relative_relief": round(pixel_auc(relative_relief(scene.elevation, dem.cell, search), pos, neg), 4),
           "robust_z": round(pixel_auc(robust_z(scene.elevation, dem.cell, search), pos, neg), 4)}
    kinds, sign = kinds_of(scene, score, residual, threshold)
    source = BY_NAME.get(name)
    return DemResult(dem.name, split, source.about if source else "", shape, dem.cell, search,
                     len(scene.planted), int(pos.sum()), auc, float(flagged.sum() / max(valid.sum(), 1)),
                     frame_ratio, hole_ratio, (in_frame, inside), frame_p99, hole_p99, kinds, sign,
                     round(time.perf_counter() - started, 1))


def evaluate_all(model: Path, names: Sequence[str], train: set[str], threshold: float,
                 folder: Path, pictures: Path | None = None) -> list[DemResult]:
    results = []
    for name in names:
        split = "training" if name in train else (BY_NAME[name].split if name in BY_NAME else "unseen")
        results.append(evaluate(model, name, split, threshold, folder, pictures))
        r = results[-1]
        print(f"{r.name} ({r.split}): AUC model {r.auc['model']:.3f}, relief {r.auc['relative_relief']:.3f}, "
              f"robust z {r.auc['robust_z']:.3f}; natural flagged {100 * r.flag_rate:.3f} %; frame x"
              f"{r.frame_ratio:.2f}, holes x{r.hole_ratio:.2f} (at the interior's 99th percentile: x"
              f"{r.frame_ratio_p99:.2f}, x{r.hole_ratio_p99:.2f}); sign right {r.sign_correct}; {r.seconds:.0f} s",
              flush=True)
    return results


def _row(r: DemResult) -> str:
    a = r.auc
    best = max(a["relative_relief"], a["robust_z"])
    mark = "**" if a["model"] > best else ""
    cell = f"{r.cell[0]:.3g}" if abs(r.cell[0] - r.cell[1]) < 0.01 * r.cell[0] else f"{r.cell[0]:.3g} x {r.cell[1]:.3g}"
    goal = "" if r.split != "unseen" else (" met" if a["model"] >= 0.95 and r.flag_rate <= 0.001 else " **missed**")
    return (f"| {r.name} | {r.split}{goal} | {cell} | {r.search_m:.4g} | {r.planted} / {r.positives} | "
            f"{mark}{a['model']:.3f}{mark} | {a['relative_relief']:.3f} | {a['robust_z']:.3f} | "
            f"{100 * r.flag_rate:.3f} % | {r.frame_ratio:.2f} ({r.frame_flags[0]}/{r.frame_flags[1]}) | "
            f"{r.hole_ratio:.2f} | {r.frame_ratio_p99:.2f} / {r.hole_ratio_p99:.2f} | {r.sign_correct} |")


def write_report(folder: Path, results: Sequence[DemResult], threshold: float, command: str) -> None:
    """results.json and tables.md (the README quotes them; training.json holds the recipe and the fit)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "results.json", {"command": command, "threshold": threshold,
                                         "results": [asdict(r) for r in results]})
    lines = ["| DEM | split | cell (m) | search (m) | planted / cells | model AUC | relative relief AUC | "
             "robust z AUC | natural flagged | frame ratio (frame/interior flags) | hole ratio | frame / hole ratio "
             "at p99 | sign right |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(r) for r in results]
    kind_lines = ["| DEM | " + " | ".join(KINDS) + " |", "|---|" + "---|" * len(KINDS)]
    for r in results:
        kind_lines.append(f"| {r.name} | " + " | ".join(
            f"{r.kinds[k]['auc'] if r.kinds[k]['auc'] is not None else '-'} ({r.kinds[k]['detected']})"
            for k in KINDS) + " |")
    (folder / "tables.md").write_text("\n".join(lines) + "\n\n" + "\n".join(kind_lines) + "\n", encoding="utf-8")
    if os.environ.get("DEEPSTRATA_REPORT_QUIET") is None:
        print("\n".join(lines))
        print("\n".join(kind_lines))


def picture(dem: LoadedDem, score: np.ndarray, residual: np.ndarray, threshold: float, path: Path) -> Path:
    """A picture (JPEG or PNG by the extension): the DEM's hillshade with flagged cells in blue (depression) or red
    (rise), dilated by one cell."""
    from scipy import ndimage

    z = np.where(np.isfinite(dem.elevation), dem.elevation, np.nanmean(dem.elevation))
    gy, gx = np.gradient(z, dem.cell[1], dem.cell[0])
    shade = np.clip(0.5 + (-gx - gy) / (2 * np.sqrt(1 + gx ** 2 + gy ** 2)), 0, 1) * 0.8 + 0.1
    grey = (np.where(np.isfinite(dem.elevation), shade, 1.0) * 255).astype(np.uint8)
    rgb = np.stack([grey] * 3)
    flagged = np.isfinite(score) & (score >= threshold)
    for channel, sign in ((0, 1), (2, -1)):
        hit = ndimage.binary_dilation(flagged & (np.sign(residual) == sign))
        rgb[:, hit] = 0
        rgb[channel, hit] = 255
    ds = gdal.GetDriverByName("MEM").Create("", z.shape[1], z.shape[0], 3, gdal.GDT_Byte)
    for i in range(3):
        ds.GetRasterBand(i + 1).WriteArray(rgb[i])
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    gdal.GetDriverByName("JPEG" if jpeg else "PNG").CreateCopy(str(path), ds, options=["QUALITY=80"] if jpeg else [])
    aux = Path(str(path) + ".aux.xml")
    if aux.exists():
        aux.unlink()
    return path
