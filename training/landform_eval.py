"""The landform model's report: held-out test blocks of the training DEM, and agreement on a lidar DEM at another
resolution, every figure computed from the exported model run by the plugin's engine.

Lidar (1 m) against a 30 m model, three ways:

- ``resampled_30m``: what the plugin does (and its warning tells users to do): average the DEM to the model's
  30 m, classify, compare with the geomorphons of the same 30 m DEM. A 400 m lidar tile is only 13 x 13 cells
  at 30 m, so this number rests on very few cells and is reported with its count.
- ``scale_matched``: both axes stretched by 30 (1 m cells become 30 m cells, elevations x 30). Every slope
  angle is unchanged, so the geomorphons are exactly those of the 1 m DEM with a search of
  ``search_radius_m / 30`` metres, and the model sees the lidar's landforms at the scale it was trained on:
  a test of transfer to another terrain and sensor at the whole tile's 160 000 cells.
- ``native_1m``: the 1 m DEM given as it is (the plugin warns): the relief is 30 times smaller than the model
  expects, which shows why resampling matters.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
from osgeo import gdal

from .evaluate import classification_report, confusion_matrix, report
from .geomorphons import CLASSES, geomorphons
from .geomorphons_io import Dem, read_dem, write_dem
from .render import write_class_png
from .workflow import block_mask, engine_output, write_json

IDS = [value for value, _, _ in CLASSES]
NAMES = [name for _, name, _ in CLASSES]


def _agreement(truth: np.ndarray, predicted: np.ndarray, mask: Optional[np.ndarray] = None) -> tuple[np.ndarray, dict]:
    keep = (truth > 0) & (predicted > 0) if mask is None else mask & (truth > 0) & (predicted > 0)
    cm = confusion_matrix(truth[keep], predicted[keep], IDS)
    body = classification_report(cm, NAMES)
    return cm, {"pixels": int(keep.sum()), "overall_accuracy": body["overall_accuracy"], "macro_f1": body["macro_f1"]}


def lidar_agreement(model: Path, lidar_path: str, search_radius_m: float, flat_deg: float, pixel_m: float,
                    folder: Path, reports: Path) -> dict[str, Any]:
    lidar = read_dem(lidar_path)
    factor = pixel_m / lidar.cell_size
    results: dict[str, Any] = {"file": lidar_path, "cell_size_m": lidar.cell_size, "model_pixel_m": pixel_m}

    coarse_path = folder / "lidar_30m.tif"
    gdal.Warp(str(coarse_path), lidar_path, xRes=pixel_m, yRes=pixel_m, resampleAlg="average",
              dstNodata=-9999.0, outputType=gdal.GDT_Float32)
    coarse = read_dem(coarse_path)
    predicted, _ = engine_output(model, coarse_path)
    _, results["resampled_30m"] = _agreement(
        geomorphons(coarse.elevation, coarse.cell_size, search_radius_m, flat_deg), predicted)

    stretched_path = write_dem(folder / "lidar_stretched.tif", lidar.elevation * factor, pixel_m, lidar)
    truth = geomorphons(lidar.elevation, lidar.cell_size, search_radius_m / factor, flat_deg)
    predicted, _ = engine_output(model, stretched_path)
    cm, results["scale_matched"] = _agreement(truth, predicted)
    results["scale_matched"]["geomorphon_search_m_at_1m"] = search_radius_m / factor
    report(reports, "lidar_scale_matched", cm=cm, names=NAMES,
           title="Lidar 1 m, scale-matched: CNN vs geomorphons")
    write_class_png(truth, reports / "lidar_geomorphons.png", CLASSES)
    write_class_png(predicted, reports / "lidar_cnn.png", CLASSES)

    native, result = engine_output(model, lidar_path)
    _, results["native_1m"] = _agreement(truth, native)
    results["native_1m"]["engine_warnings"] = result.warnings
    return results


def evaluate_and_report(model: Path, recipe: Any, trained: Any, dem: Dem, lidar: Optional[str], reports: Path,
                        command: str) -> dict[str, float]:
    """Write the reports; return the card's headline figures (held-out test blocks)."""
    reports.mkdir(parents=True, exist_ok=True)
    truth = geomorphons(dem.elevation, dem.cell_size, recipe.search_radius_m, recipe.flat_deg)
    predicted, run = engine_output(model, recipe.dem)
    test = block_mask(truth.shape, trained.blocks, recipe.block, "test")
    keep = test & (truth > 0) & (predicted > 0)
    cm = confusion_matrix(truth[keep], predicted[keep], IDS)
    _, everywhere = _agreement(truth, predicted)
    extra: dict[str, Any] = {
        "command": command, "dem": recipe.dem, "test_pixels": int(keep.sum()),
        "whole_dem_agreement": everywhere, "engine": {"provider": run.provider, "tiles": run.tiles,
                                                      "tile_size": run.tile_size, "overlap": run.overlap},
        "margin": {"px": trained.margin.margin, "class_changes_beyond": trained.margin.changed,
                   "max_probability_shift": trained.margin.max_shift},
        "training": {"chips": trained.train_chips, "best_epoch": trained.best_epoch, "seconds": trained.seconds,
                     "history": [e.__dict__ for e in trained.history]},
    }
    headline = report(reports, "heldout", cm=cm, names=NAMES, title="Landforms, held-out test blocks", extra=extra)
    write_class_png(truth, reports / "srtm_geomorphons.png", CLASSES, outline=test)
    write_class_png(predicted, reports / "srtm_cnn.png", CLASSES, outline=test)
    if lidar:
        with tempfile.TemporaryDirectory(prefix="deepstrata-lidar-") as folder:
            agreement = lidar_agreement(model, lidar, recipe.search_radius_m, recipe.flat_deg, 30.0, Path(folder),
                                        reports)
        write_json(reports / "lidar.json", {"command": command, **agreement})
        headline["lidar_scale_matched_accuracy"] = agreement["scale_matched"]["overall_accuracy"]
    return {k: round(float(v), 4) for k, v in headline.items()}
