"""``python -m training landforms``: the shipped landform network, trained on geomorphons of many DEMs.

The network (:mod:`training.geomorphon_net`) computes the geomorphon lines of sight in its graph at whatever cell
size and search distance the run has, and learns the flatness threshold, the soft ternary and the form table's
map from labels: the geomorphons (:mod:`training.geomorphons`, which reproduces r.geomorphon) of the training
DEMs of :mod:`training.dems`, at search distances of 3 to 24 cells. Samples are crops, with their lines computed
once; the loss counts only cells whose eight lines are whole, since lines cut short by an edge or a void
are the ones the network treats differently on purpose (it continues the terrain; r.geomorphon judges what is
left). The unseen DEMs are scored by :mod:`training.landform_eval` against GRASS ``r.geomorphon``, through the plugin's
engine. Run from the repository root; ``--help`` lists the knobs.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import onnx
import torch
from torch.nn import functional as F

from .borders import frame, near
from .dems import DemEntry, entries, materialise
from .export import export_model
from .geomorphon_net import GeomorphonNet
from .geomorphons import CLASSES, geomorphons
from .geomorphons_io import read_dem
from .train import seed_everything
from .workflow import command_line

log = logging.getLogger(__name__)

OUTPUT = "resources/models/landforms_geomorphon.onnx"
REPORTS = "training/reports/landforms"


@dataclass(frozen=True)
class Recipe:
    max_cells: int = 24
    default_cells: int = 10
    scales: tuple[int, ...] = (3, 5, 8, 12, 16, 20, 24)  # search distances, in cells, the labels are made at
    flat_deg: float = 1.0  # the labels' flatness threshold (the network starts at 2 and learns it)
    chip: int = 48
    crops: int = 10  # per DEM, scale and kind of crop
    epochs: int = 20
    lr: float = 0.02
    settle_epochs: int = 4  # then with every cell whose lines are cut weighing the same (_loss)
    settle_lr: float = 0.005
    seed: int = 0
    threads: int = 1
    train: tuple[DemEntry, ...] = field(default_factory=lambda: tuple(entries("train")))


@dataclass
class Samples:
    high: torch.Tensor
    low: torch.Tensor
    seen: torch.Tensor
    valid: torch.Tensor
    labels: torch.Tensor  # 0 where the loss ignores the cell

    def __len__(self) -> int:
        return int(self.labels.shape[0])


KINDS = ("interior", "edge", "void")


def crops_of(dem: np.ndarray, cell: float, recipe: Recipe, net: GeomorphonNet, rng: np.random.Generator) -> list:
    """(high, low, seen, valid, labels) of random crops of `dem` at every search distance of the recipe.

    The labels are the forms of the whole DEM, kept where all eight lines are whole in it. Three kinds of crop:
    "interior" (the lines are computed with the crop's margin, so every labelled cell sees what the labels saw),
    "edge" (the crop alone, as if it were the raster: its edge cuts the lines of the cells near it, and they
    must still get the form the whole DEM gives them) and "void" (an interior crop with nodata holes punched
    in it: the cells around the holes likewise).
    """
    pad = recipe.max_cells + 2
    size = recipe.chip + 2 * pad
    rows, cols = dem.shape
    if rows < size or cols < size:
        raise ValueError(f"a {cols}x{rows} DEM is smaller than one {size} px training crop")
    found = []
    for cells in recipe.scales:
        search = cells * cell
        labels = geomorphons(dem, cell, search, recipe.flat_deg).astype(np.int64)
        whole = ~near(np.isnan(dem), cells) & ~frame(dem.shape, cells + 1)
        truth = np.where(whole, labels, 0)
        scale = torch.tensor([cell, cell, search], dtype=torch.float32)
        for kind in KINDS:
            for _ in range(recipe.crops):
                y, x = int(rng.integers(0, rows - size + 1)), int(rng.integers(0, cols - size + 1))
                crop = dem[y:y + size, x:x + size].astype(np.float32)
                target = truth[y:y + size, x:x + size].copy()
                if kind != "edge":
                    inner = np.zeros(target.shape, bool)
                    inner[pad:-pad, pad:-pad] = True
                    target[~inner] = 0
                if kind == "void":
                    for _ in range(int(rng.integers(1, 4))):
                        h, w = (int(v) for v in rng.integers(2, max(3, cells) + 1, 2))
                        hy, hx = (int(rng.integers(pad, size - pad - v)) for v in (h, w))
                        crop[hy:hy + h, hx:hx + w] = np.nan
                    target[np.isnan(crop)] = 0
                if (target > 0).sum() < 0.1 * recipe.chip ** 2:
                    continue
                z = torch.from_numpy(crop)[None, None]
                with torch.no_grad():
                    high, low, seen = net.lines(z, scale)
                found.append((high[0], low[0], seen[0], ~torch.isnan(z[0]), torch.from_numpy(target)))
    return found


def gather(recipe: Recipe, net: GeomorphonNet, folder: Path) -> Samples:
    rng = np.random.default_rng(recipe.seed)
    found = []
    for entry in recipe.train:
        dem = read_dem(materialise(entry, folder))
        started = time.perf_counter()
        found += crops_of(dem.elevation, dem.cell_size, recipe, net, rng)
        log.info("%s: %.0f m cells, crops in %.1f s", entry.label, dem.cell_size, time.perf_counter() - started)
    high, low, seen, valid, labels = (torch.stack(parts) for parts in zip(*found))
    return Samples(high, low, seen, valid, labels)


def _loss(logits: torch.Tensor, target: torch.Tensor, seen: torch.Tensor, weights: torch.Tensor,
          settle: bool) -> torch.Tensor:
    """Cross-entropy on the labelled cells (target -1: ignored), rare forms weighing more. Settling, only where
    the eight lines are whole: where the edge or a void cuts them the form is uncertain, and a weighted loss
    settles the doubt on the rare forms (a frame of ridges, 2-2.8 times their share in r.geomorphon of the whole
    DEM on unseen DEMs); there every cell weighs the same, so the forms keep their shares."""
    if not settle:
        return F.cross_entropy(logits, target, weight=weights, ignore_index=-1)
    keep = target >= 0
    per_cell = F.cross_entropy(logits, target.clamp(min=0), reduction="none")
    whole = (seen >= 1).all(1)
    weight = torch.where(whole, weights[target.clamp(min=0)], torch.ones_like(per_cell)) * keep
    return (per_cell * weight).sum() / weight.sum().clamp(min=1e-6)


def fit(recipe: Recipe, samples: Samples, net: GeomorphonNet) -> list[dict[str, float]]:
    """Cross-entropy on the labelled cells (:func:`_loss`): `epochs` weighted, then `settle_epochs` settling the
    cut lines at a lower rate; returns the loss and accuracy per epoch."""
    counts = torch.bincount(samples.labels.flatten(), minlength=11)[1:].double()
    weights = (counts.sum() / counts.clamp(min=1)).sqrt()
    weights = (weights / weights[counts > 0].min()).clamp(max=10.0).float()
    optimiser = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    history = []
    generator = torch.Generator().manual_seed(recipe.seed)
    for epoch in range(recipe.epochs + recipe.settle_epochs):
        settle = epoch >= recipe.epochs
        if epoch == recipe.epochs:
            optimiser = torch.optim.Adam(net.parameters(), lr=recipe.settle_lr)
        order = torch.randperm(len(samples), generator=generator)
        total, right, cells = 0.0, 0, 0
        for start in range(0, len(order), 16):
            batch = order[start:start + 16]
            logits = net.classify(samples.high[batch], samples.low[batch], samples.seen[batch],
                                  samples.valid[batch])
            target = samples.labels[batch] - 1  # -1: ignored
            loss = _loss(logits, target, samples.seen[batch], weights, settle)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            keep = target >= 0
            total += loss.item() * int(keep.sum())
            right += int((logits.argmax(1)[keep] == target[keep]).sum())
            cells += int(keep.sum())
        history.append({"epoch": epoch + 1, "loss": total / max(cells, 1), "accuracy": right / max(cells, 1),
                        "flat_deg": math.degrees(net.log_flat.exp().item())})
        log.info("epoch %d: loss %.4f, accuracy %.4f, flatness %.3f deg", epoch + 1, history[-1]["loss"],
                 history[-1]["accuracy"], history[-1]["flat_deg"])
    return history


def card(recipe: Recipe, net: GeomorphonNet, metrics: dict[str, Any], command: str, note: str = "",
         history: Sequence[dict[str, float]] = ()) -> dict[str, Any]:
    r = recipe
    flat = math.degrees(net.log_flat.exp().item())
    return {
        "schema": "deepstrata.card/1",
        "name": "Landforms from DEM (geomorphon network, 10 classes, any scale)" + (" - fine-tuned" if note else ""),
        "version": "3.0.0",
        "task": "segmentation",
        "description": (
            "The ten geomorphon landforms (Jasiewicz & Stepinski 2013) at any cell size, from 1 m lidar to 1 km "
            "grids, in any CRS. The graph computes the lines of sight at the run's search distance (default "
            f"{r.default_cells} cells of the DEM; up to {r.max_cells} cells, coarser cells beyond) from elevation "
            f"differences only; a learned head turns them into forms (learned flatness threshold {flat:.2f} "
            "degrees). Nodata and the raster's edge end a line of sight; a line with no terrain at all continues "
            "the opposite one, so edges and voids get no invented ridges or valleys. Trained on geomorphons of "
            "seven DEM variants; judged against GRASS r.geomorphon on DEMs it never saw (see the report)."
            + (f" {note}" if note else "")),
        "input": {
            "kind": "dem",
            "bands": [{"name": "elevation", "unit": "m", "description": "Elevation in metres"}],
            "dtype": "float32",
            "normalization": {"method": "none"},
            "nodata": "nan",
            "scale": {"input": "scale", "default_cells": r.default_cells, "max_cells": r.max_cells,
                      "min_cells": 2},
            "tile_size": 512,
            "margin": net.margin,
        },
        "output": {
            "activation": "softmax",
            "classes": [{"value": v, "name": n, "color": c} for v, n, c in CLASSES],
        },
        "training": {
            "data": "; ".join(sorted({f"{d.label}: {d.relief}" for d in r.train})) +
                    " (training/dems.py; provenance in training/datasets)",
            "labels": f"geomorphons by training/geomorphons.py (r.geomorphon's rules; flat {r.flat_deg:g} deg, skip "
                      f"0) at search distances of {', '.join(map(str, r.scales))} cells",
            "architecture": "in-graph lines of sight (8 directions), soft ternary with learned flatness and "
                            "sharpness, soft (n-, n+) table lookup (learned, started from the paper's table), "
                            "3x3 context branch",
            "fit": f"Adam, {r.epochs} epochs at {r.lr:g} with class-weighted cross-entropy, then {r.settle_epochs} "
                   f"at {r.settle_lr:g} where cells whose lines the edge or a void cuts weigh the same",
            "unseen": sorted({d.label for d in entries("unseen")}),
            "metrics": metrics,
            "history": [{k: round(v, 4) for k, v in epoch.items()} for epoch in history],
            "seed": r.seed,
            "created_by": "training/landforms.py",
            "command": command,
        },
    }


def build(recipe: Recipe, folder: Path) -> tuple[GeomorphonNet, list[dict[str, float]]]:
    seed_everything(recipe.seed)
    torch.set_num_threads(recipe.threads)
    net = GeomorphonNet(recipe.max_cells)
    samples = gather(recipe, net, folder)
    log.info("%d crops, %d labelled cells", len(samples), int((samples.labels > 0).sum()))
    history = fit(recipe, samples, net)
    return net.eval(), history


def export(net: GeomorphonNet, recipe: Recipe, metrics: dict[str, Any], command: str, path: str | Path,
           note: str = "", history: Sequence[dict[str, float]] = ()) -> Path:
    return export_model(net, card(recipe, net, metrics, command, note, history), path, sizes=(64, 96),
                        tolerance=2e-3,
                        extras={"scale": np.array([30.0, 30.0, 300.0], np.float32)})


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training landforms", description=__doc__.splitlines()[0])
    p.add_argument("--output", default=OUTPUT, help=f"the .onnx to write (default {OUTPUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS}); '' for none")
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--crops", type=int, default=Recipe.crops, help="crops per DEM and search distance")
    p.add_argument("--seed", type=int, default=Recipe.seed)
    p.add_argument("--threads", type=int, default=Recipe.threads)
    p.add_argument("--evaluate", metavar="MODEL", help="no training: score MODEL (a landform model made by this "
                   "command) on every DEM and rewrite the reports")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .landform_eval import evaluate

    argv = list(argv or [])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    recipe = Recipe(epochs=args.epochs, crops=args.crops, seed=args.seed, threads=args.threads)
    command = command_line(["landforms", *argv])
    if args.evaluate:
        with tempfile.TemporaryDirectory(prefix="deepstrata-landforms-") as folder:
            raw = json.loads({p.key: p.value for p in onnx.load(args.evaluate).metadata_props}["deepstrata"])
            scored = evaluate(args.evaluate, Path(args.reports or REPORTS), Path(folder), command,
                              raw["training"].get("history", []))
        print(f"scored {args.evaluate}; unseen {scored}")
        return 0
    with tempfile.TemporaryDirectory(prefix="deepstrata-landforms-") as folder:
        net, history = build(recipe, Path(folder))
        # Export with empty metrics so the engine scores the very graph that ships, then again with them.
        draft = Path(folder) / "draft.onnx"
        export(net, recipe, {}, command, draft)
        metrics: dict[str, Any] = {}
        if args.reports:
            metrics = evaluate(draft, Path(args.reports), Path(folder), command, history)
    path = export(net, recipe, metrics, command, args.output, history=history)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); unseen {metrics}")
    return 0
