"""``python -m training landforms``: the shipped landform CNN, trained on geomorphons of the SRTM DEM.

Labels are the ten geomorphon forms (:mod:`training.geomorphons`) of the DEM itself, so any DEM can train its
own model. The U-Net sees the steepest upward and downward slope along eight lines of sight from each
cell (:class:`training.nets.LineOfSight`, computed inside the graph from elevation differences), never absolute
elevation, and learns the forms from them. Chips are split by spatial blocks; the held-out
test blocks are scored through the plugin's engine (:mod:`training.landform_eval`), which also reports the
agreement on the 1 m lidar DEM. Run from the repository root; ``--help`` lists the knobs.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .data import block_split, class_weights, extract_chips
from .export import export_model
from .geomorphons import CLASSES
from .geomorphons_io import read_dem, write_forms
from .nets import LineOfSight, UNet
from .receptive import MarginCheck, effective_margin
from .train import TrainConfig, seed_everything, train
from .workflow import command_line

log = logging.getLogger(__name__)

DEM = "training/datasets/srtm_bigtujunga/bigtujunga.tif"
OUTPUT = "resources/models/landforms_unet.onnx"
REPORTS = "training/reports/landforms"


@dataclass(frozen=True)
class Recipe:
    dem: str = DEM
    search_radius_m: float = 300.0
    flat_deg: float = 1.0
    cell_m: float = 30.0
    width: int = 16
    depth: int = 2
    chip: int = 64
    stride: int = 16
    block: int = 128
    epochs: int = 25
    patience: int = 8
    seed: int = 0
    threads: int = 1


@dataclass
class Trained:
    model: UNet
    normalization: dict[str, Any]
    blocks: dict
    history: list
    best_epoch: int
    train_chips: int
    seconds: float
    margin: MarginCheck


def build_model(recipe: Recipe) -> UNet:
    stem = LineOfSight(recipe.cell_m, recipe.search_radius_m, recipe.flat_deg)
    return UNet(stem.channels, len(CLASSES), width=recipe.width, depth=recipe.depth, stem=stem)


def fit(recipe: Recipe, labels_path: Path) -> Trained:
    """Chips, block split, class-weighted training; the model holds its best validation epoch's weights."""
    started = time.perf_counter()
    chips = extract_chips([(recipe.dem, labels_path)], recipe.chip, recipe.stride, block=recipe.block)
    split = block_split(chips.origins, recipe.chip, recipe.block, (0.7, 0.15, 0.15), recipe.seed)
    train_set, val_set = chips.subset(split.indices("train")), chips.subset(split.indices("validation"))
    ids = [value for value, _, _ in CLASSES]
    weights = class_weights(train_set.labels, ids, "median")
    # Only the mean is removed: elevations stay in metres, which the line-of-sight slopes need (and the mean
    # cancels inside the stem anyway; nodata cells become the training mean, not 0 m).
    elevations = train_set.images[np.isfinite(train_set.images)]
    normalization = {"method": "zscore", "mean": [round(float(elevations.mean()), 3)], "std": [1.0]}
    config = TrainConfig(epochs=recipe.epochs, batch_size=16, lr=2e-3, seed=recipe.seed, patience=recipe.patience,
                         cosine=True,
                         class_weights=[min(w, 10.0) for w in weights.weights], normalization=normalization,
                         threads=recipe.threads)
    seed_everything(recipe.seed)
    model = build_model(recipe)
    result = train(model, train_set, val_set, config, "segmentation")
    margin = effective_margin(model, margin_sample(recipe.dem, normalization), model.size_multiple,
                              floor=int(getattr(model.stem, "pad", 0)))
    log.info("effective margin %d px (class changes beyond it %.2g%%, probability shift %.3f)",
             margin.margin, 100 * margin.changed, margin.max_shift)
    return Trained(model, normalization, dict(split.blocks), result.history, result.best_epoch, len(train_set),
                   time.perf_counter() - started, margin)


def margin_sample(dem_path: str, normalization: dict[str, Any], size: int = 384) -> np.ndarray:
    """A normalised (1, size, size) window from the middle of the DEM for :func:`effective_margin`."""
    z = read_dem(dem_path).elevation
    y, x = max((z.shape[0] - size) // 2, 0), max((z.shape[1] - size) // 2, 0)
    window = z[y:y + size, x:x + size].astype(np.float32)
    window = np.where(np.isfinite(window), window - normalization["mean"][0], 0.0)
    return window[None].astype(np.float32)


def card(recipe: Recipe, trained: Trained, metrics: dict[str, float], command: str) -> dict[str, Any]:
    r = recipe
    return {
        "schema": "deepstrata.card/1",
        "name": "Landforms from DEM (geomorphon U-Net, 10 classes)",
        "version": "2.0.0",
        "task": "segmentation",
        "description": (
            "A U-Net trained to reproduce the ten geomorphon landforms (Jasiewicz & Stepinski 2013; search radius "
            f"{r.search_radius_m:g} m, flatness {r.flat_deg:g} degree) on a 30 m SRTM DEM of steep mountains. It "
            "sees only slopes along eight lines of sight (computed in the graph), never absolute elevation. Give it a "
            "DEM in metres at about 30 m; resample finer DEMs first. Flat, shoulder and footslope were rare in "
            "the training terrain, so gentle landscapes are its weak side (see the report)."),
        "input": {
            "kind": "dem",
            "bands": [{"name": "elevation", "unit": "m", "description": "Elevation in metres"}],
            "dtype": "float32",
            "normalization": trained.normalization,
            "pixel_size_m": 30.0,
            "tile_size": 512,
            "margin": trained.margin.margin,
            "size_multiple": trained.model.size_multiple,
        },
        "output": {
            "activation": "softmax",
            "classes": [{"value": v, "name": n, "color": c} for v, n, c in CLASSES],
        },
        "training": {
            "data": "SRTM 1 arc-second DEM reprojected to 30 m, Big Tujunga, San Gabriel Mountains, California "
                    "(public domain; training/datasets/srtm_bigtujunga/PROVENANCE.txt)",
            "labels": f"geomorphons computed by training/geomorphons.py (search {r.search_radius_m:g} m, flat "
                      f"{r.flat_deg:g} deg); Jasiewicz, J., Stepinski, T. (2013) Geomorphons - a pattern "
                      "recognition approach to classification and mapping of landforms. Geomorphology 182, 147-156",
            "architecture": f"U-Net width {r.width}, depth {r.depth}, on a fixed LineOfSight stem (steepest up and "
                            f"down slope along 8 directions out to {r.search_radius_m:g} m at {r.cell_m:g} m cells)",
            "split": f"spatial blocks of {r.block} px: 70/15/15 train/validation/test; metrics on the test blocks",
            "metrics": metrics,
            "seed": r.seed,
            "created_by": "training/landforms.py",
            "command": command,
        },
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training landforms", description=__doc__.splitlines()[0])
    p.add_argument("--dem", default=DEM, help=f"training DEM in metres, metric CRS (default {DEM})")
    p.add_argument("--lidar", default="training/datasets/minnesota_lidar/dem.tif",
                   help="a DEM at another resolution for the agreement check ('' to skip)")
    p.add_argument("--output", default=OUTPUT, help=f"the .onnx to write (default {OUTPUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    p.add_argument("--search-radius", type=float, default=Recipe.search_radius_m, help="geomorphon search, m")
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--width", type=int, default=Recipe.width)
    p.add_argument("--depth", type=int, default=Recipe.depth)
    p.add_argument("--chip", type=int, default=Recipe.chip)
    p.add_argument("--stride", type=int, default=Recipe.stride)
    p.add_argument("--block", type=int, default=Recipe.block)
    p.add_argument("--seed", type=int, default=Recipe.seed)
    p.add_argument("--threads", type=int, default=Recipe.threads)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .landform_eval import evaluate_and_report

    argv = list(argv or [])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    recipe = Recipe(dem=args.dem, search_radius_m=args.search_radius, epochs=args.epochs, width=args.width,
                    depth=args.depth, chip=args.chip, stride=args.stride, block=args.block, seed=args.seed,
                    threads=args.threads)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="deepstrata-landforms-") as folder:
        labels = Path(folder) / "geomorphons.tif"
        write_forms(recipe.dem, labels, recipe.search_radius_m, recipe.flat_deg)
        trained = fit(recipe, labels)
        command = command_line(["landforms", *argv])
        # Export first with empty metrics so the engine can score the very file that ships, then again with them.
        draft = Path(folder) / "draft.onnx"
        export_model(trained.model, card(recipe, trained, {}, command), draft, sizes=(64, 128))
        dem = read_dem(recipe.dem)
        metrics = evaluate_and_report(draft, recipe, trained, dem, args.lidar or None, Path(args.reports), command)
    path = export_model(trained.model, card(recipe, trained, metrics, command), args.output, sizes=(64, 128))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); held-out {metrics}")
    return 0
