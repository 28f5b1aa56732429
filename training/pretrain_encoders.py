"""``python -m training pretrain-encoders``: small encoders pretrained without labels on the shared rasters.

Two encoders (``nets.Encoder``, width 16, depth 2), each the encoder half of a masked convolutional autoencoder:

- **terrain** (``training/encoders/terrain.pt``): one band of raw elevation through the fixed
  ``normalized_relief`` stem (:mod:`training.stems`: relief shape at 1, 2, 4, 8 px, scale-free, and the log local
  relief), so it serves DEMs of any pixel size and never sees absolute elevation. Chips come from eight DEMs of
  ``../shared/data/dem`` at their own pixel sizes (2 m lidar to 1 km) and mean-pooled by 2 and 4, which spreads
  the scales further.
- **spectral** (``training/encoders/spectral.pt``): six bands, blue, green, red, NIR, SWIR1, SWIR2 in this order,
  each z-scored over its own raster (``"input": "zscore"``), from Landsat 7 ETM+, Landsat 8 OLI (Level-1 and
  surface reflectance) and Sentinel-2 MSI scenes.

Objective: masked reconstruction. The encoder's input (the stem's output, or the z-scored bands) has random
square patches (``mask_patch`` px, ``mask_ratio`` of them) set to 0, and a decoder without skip connections
(``nets.ConvAutoencoder``) reconstructs the whole unmasked input (mean squared error over every pixel and
channel); ``--mask-ratio 0`` gives the plain autoencoder. Hiding patches makes the encoder infer them from
their surroundings, which asks it for context (what a ridge or a clearing continues into), not just a
compressed copy of the pixels.

Kept out of pretraining, and named in the report: the Hamersley DTM (the terrain transfer goal), two DEMs kept for
evaluation elsewhere in the project (``minnesota_lidar``: the landform model's lidar test; ``bigtujunga``: the
DEM the landform and terrain-anomaly models train and test on), the Landsat 5 Amazon scene and its polygons (the
spectral transfer goal) with the SRTM of that scene, and the Sentinel-2 Virginia scene (only its 20 m and 60 m
bands are there: no blue, green or red at 20 m). The reconstruction error is reported on the held-out rasters
against two trivial baselines (predict 0, the mean of the normalised input; fill each hidden pixel with the local
mean of the visible ones and copy the visible ones).

Deterministic (fixed seeds, one torch thread, deterministic algorithms); a few minutes per encoder on one core.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from . import encoder_checkpoint
from .encoder_report import readme
from .encoder_sources import (SPECTRAL, SPECTRAL_HELD_OUT, SPECTRAL_KEPT_OUT, TERRAIN, TERRAIN_HELD_OUT, Source, cut_chips,
                              pool, read_source, sample, zscore)
from .data import augment_batch
from .nets import ConvAutoencoder
from .stems import make_stem, stem_channels, stem_radius, terrain_spec
from .train import seed_everything, torch_settings
from .workflow import command_line, write_json

log = logging.getLogger(__name__)

DATA = "../shared/data"
OUT = "training/encoders"
REPORTS = "training/reports/encoders"
SPECTRAL_BANDS = ["blue", "green", "red", "nir", "swir1", "swir2"]


@dataclass(frozen=True)
class Recipe:
    kind: str = "terrain"
    width: int = 16
    depth: int = 2
    chip: int = 32
    stride: int = 16
    scales: tuple[int, ...] = (1,)        # mean-pooling factors applied to every source
    max_chips: int = 500                  # per source and scale, drawn at random (seeded)
    eval_chips: int = 200                 # per held-out raster
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    mask_ratio: float = 0.5
    mask_patch: int = 4
    seed: int = 0
    threads: int = 1
    stem: Optional[dict[str, Any]] = field(default=None, hash=False, compare=False)


RECIPES = {
    "terrain": Recipe("terrain", scales=(1, 2, 4), max_chips=400, epochs=8, stem=terrain_spec()),
    "spectral": Recipe("spectral", stride=8, scales=(1,), max_chips=800, epochs=12),
}


@dataclass
class Chips:
    images: np.ndarray                        # (N, B, size, size), as the encoder's stem takes them
    rows: list[dict[str, Any]]                # per source and scale: name, path(s), pixel size, chips


def gather(sources: Sequence[Source], recipe: Recipe, data: str | os.PathLike[str], limit: int,
           scales: Sequence[int], stride: int) -> Chips:
    """Chips of every source at every pooling factor, at most ``limit`` of each (seeded draw)."""
    rng = np.random.default_rng(recipe.seed)
    images, rows = [], []
    for source in sources:
        image, size_m = read_source(source, data)
        if recipe.kind == "spectral":
            image = zscore(image)[0]
        for factor in scales:
            found = cut_chips(pool(image, factor), recipe.chip, stride)
            kept = sample(found, limit, rng)
            images.append(kept)
            rows.append({"name": source.name, "files": source.files, "note": source.note, "scale": factor,
                         "pixel_size_m": round(size_m * factor, 2), "chips_available": int(len(found)),
                         "chips": int(len(kept))})
            log.info("%s x%d (%.1f m): %d of %d chips", source.name, factor, size_m * factor, len(kept), len(found))
    bands = len(sources[0].bands)
    stacked = np.concatenate(images) if images else np.empty((0, bands, recipe.chip, recipe.chip), np.float32)
    return Chips(stacked, rows)


# -------------------------------------------------------------------------------------------------- pretraining

def features(stem: torch.nn.Module, chips: np.ndarray, batch: int = 256) -> np.ndarray:
    """The stem's output for every chip (the stem is fixed and commutes with flips and quarter turns, so it is
    computed once)."""
    with torch.no_grad():
        return np.concatenate([stem(torch.from_numpy(chips[i:i + batch])).numpy()
                               for i in range(0, len(chips), batch)]) if len(chips) else chips


def patch_mask(shape: Sequence[int], ratio: float, patch: int, generator: torch.Generator) -> torch.Tensor:
    """(N, 1, H, W) float: 0 on the hidden patches (``ratio`` of the ``patch`` px squares), 1 elsewhere."""
    n, _, h, w = shape
    if ratio <= 0:
        return torch.ones((n, 1, h, w))
    cells = torch.rand((n, 1, -(-h // patch), -(-w // patch)), generator=generator) >= ratio
    return cells.float().repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)[:, :, :h, :w]


@dataclass
class Pretrained:
    autoencoder: ConvAutoencoder
    losses: list[float]
    seconds: float


def pretrain(inputs: np.ndarray, recipe: Recipe) -> Pretrained:
    """Train a ``ConvAutoencoder`` to rebuild the (stem) ``inputs`` from their masked copies: AdamW, cosine rate,
    a random flip / quarter turn per chip, a fresh mask per batch."""
    started = time.perf_counter()
    with torch_settings(recipe.threads, True):
        rng = seed_everything(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)
        model = ConvAutoencoder(inputs.shape[1], recipe.width, recipe.depth)
        optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=1e-4)
        steps = recipe.epochs * -(-len(inputs) // recipe.batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
        dummy = np.zeros((len(inputs), *inputs.shape[2:]), dtype=np.int64)
        losses = []
        for epoch in range(recipe.epochs):
            model.train()
            order, total = rng.permutation(len(inputs)), 0.0
            for start in range(0, len(inputs), recipe.batch_size):
                index = order[start:start + recipe.batch_size]
                batch, _ = augment_batch(inputs[index], dummy[index], rng)
                target = torch.from_numpy(batch)
                keep = patch_mask(target.shape, recipe.mask_ratio, recipe.mask_patch, generator)
                loss = F.mse_loss(model(target * keep), target)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total += float(loss.detach()) * len(index)
            losses.append(total / max(len(inputs), 1))
            log.info("%s epoch %d/%d: reconstruction loss %.4f", recipe.kind, epoch + 1, recipe.epochs, losses[-1])
    model.eval()
    return Pretrained(model, losses, time.perf_counter() - started)


def visible_mean(x: torch.Tensor, keep: torch.Tensor, radius: int = 4) -> torch.Tensor:
    """The mean of the visible pixels over a (2r+1)^2 window (0 where none is visible): a trivial inpainting."""
    k = 2 * radius + 1
    total = F.avg_pool2d(x * keep, k, stride=1, padding=radius, count_include_pad=True)
    count = F.avg_pool2d(keep, k, stride=1, padding=radius, count_include_pad=True)
    return torch.where(count > 0, total / count.clamp_min(1e-6), torch.zeros_like(total))


@torch.no_grad()
def reconstruction(model: ConvAutoencoder, inputs: np.ndarray, recipe: Recipe, seed: int = 12345) -> dict[str, Any]:
    """Mean squared error of the autoencoder and of the trivial baselines, over all pixels and over the hidden
    ones, with one fixed mask per chip (the same for every method)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    sums = {k: [0.0, 0.0] for k in ("autoencoder", "zero", "visible_mean")}
    terms = [0, 0]
    for start in range(0, len(inputs), 128):
        x = torch.from_numpy(inputs[start:start + 128])
        keep = patch_mask(x.shape, recipe.mask_ratio, recipe.mask_patch, generator)
        hidden = (1 - keep).expand_as(x)
        guesses = {"autoencoder": model(x * keep), "zero": torch.zeros_like(x),
                   "visible_mean": x * keep + visible_mean(x, keep) * (1 - keep)}
        if recipe.mask_ratio <= 0:  # nothing hidden: the trivial inpainting is the 9x9 local mean itself
            guesses["visible_mean"] = visible_mean(x, keep)
        for key, guess in guesses.items():
            error = (guess - x) ** 2
            sums[key][0] += float(error.sum())
            sums[key][1] += float((error * hidden).sum())
        terms[0] += x.numel()
        terms[1] += int(hidden.sum())
    out: dict[str, Any] = {"chips": int(len(inputs))}
    for key, (total, masked) in sums.items():
        out[key] = {"all_pixels": round(total / max(terms[0], 1), 5),
                    "hidden_pixels": round(masked / terms[1], 5) if terms[1] else None}
    return out


# ----------------------------------------------------------------------------------------------- one encoder

@dataclass
class Built:
    document: dict[str, Any]                  # the checkpoint
    report: dict[str, Any]


def build(recipe: Recipe, data: str | os.PathLike[str], sources: Sequence[Source],
          held_out: Sequence[Source], kept_out: Sequence[tuple[str, str]] = ()) -> Built:
    """Gather chips, pretrain, score on the held-out rasters, and assemble the checkpoint and its report."""
    started = time.perf_counter()
    spec = recipe.stem
    stem = make_stem(spec)
    bands = len(sources[0].bands)
    train = gather(sources, recipe, data, recipe.max_chips, recipe.scales, recipe.stride)
    inputs = features(stem, train.images)
    pretrained = pretrain(inputs, recipe)
    held = []
    for source in held_out:
        chips = gather([source], recipe, data, recipe.eval_chips, (1,), recipe.chip)
        held.append({**chips.rows[0], "reconstruction": reconstruction(pretrained.autoencoder,
                                                                        features(stem, chips.images), recipe)})
    seen = np.random.default_rng(recipe.seed).permutation(len(inputs))[:recipe.eval_chips]
    trained_on = reconstruction(pretrained.autoencoder, inputs[np.sort(seen)], recipe)
    sizes = sorted({row["pixel_size_m"] for row in train.rows})
    objective = (f"masked autoencoder ({recipe.mask_ratio:.0%} of {recipe.mask_patch} px patches hidden)"
                 if recipe.mask_ratio > 0 else "autoencoder")
    source_line = (f"{recipe.kind} encoder: {objective} pretrained by `python -m training pretrain-encoders` on "
                   f"{len(train.images)} unlabelled {recipe.chip} px chips of {len(sources)} rasters "
                   f"({min(sizes):g}-{max(sizes):g} m pixels), seed {recipe.seed}")
    document = encoder_checkpoint.checkpoint(
        pretrained.autoencoder.encoder, bands=bands, stem=spec, input="raw" if recipe.kind == "terrain" else "zscore",
        source=source_line, pretrained_on=[f for s in sources for f in s.files],
        held_out=[f for s in held_out for f in s.files] + [path for path, _ in kept_out],
        band_names=["elevation"] if recipe.kind == "terrain" else list(SPECTRAL_BANDS), pixel_sizes_m=sizes)
    report = {
        "kind": recipe.kind, "recipe": {**asdict(recipe), "scales": list(recipe.scales)},
        "objective": objective, "stem": spec, "stem_radius_px": stem_radius(spec),
        "encoder_channels": stem_channels(spec, bands), "band_names": document["band_names"],
        "input": document["input"], "pretrained_on": train.rows, "chips": int(len(train.images)),
        "held_out": held, "kept_out": [{"path": p, "why": why} for p, why in kept_out], "epoch_losses": [round(v, 5) for v in pretrained.losses],
        "reconstruction_on_training_chips": trained_on, "pretrain_seconds": round(pretrained.seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "parameters": int(sum(v.numel() for v in document["state"].values() if v.is_floating_point())),
    }
    return Built(document, report)


# ------------------------------------------------------------------------------------------------------------ CLI

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training pretrain-encoders", description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("terrain", "spectral"), help="build one encoder (default: both)")
    p.add_argument("--out", default=OUT, help=f"checkpoint folder (default {OUT})")
    p.add_argument("--reports", default=REPORTS, help=f"report folder (default {REPORTS})")
    p.add_argument("--data", default=DATA, help=f"the shared data folder (default {DATA})")
    p.add_argument("--epochs", type=int, help="epochs (default: the recipe's, 8 terrain, 12 spectral)")
    p.add_argument("--max-chips", type=int, help="chips per raster and scale (default: the recipe's)")
    p.add_argument("--mask-ratio", type=float, help="share of hidden patches (0: plain autoencoder; default 0.5)")
    p.add_argument("--threads", type=int, default=1)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv or [])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kinds = [args.only] if args.only else ["terrain", "spectral"]
    sources = {"terrain": (TERRAIN, TERRAIN_HELD_OUT, ()), "spectral": (SPECTRAL, SPECTRAL_HELD_OUT, SPECTRAL_KEPT_OUT)}
    reports: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        recipe = RECIPES[kind]
        changes = {k: v for k, v in (("epochs", args.epochs), ("max_chips", args.max_chips),
                                     ("mask_ratio", args.mask_ratio)) if v is not None}
        recipe = replace(recipe, threads=args.threads, **changes)
        built = build(recipe, args.data, *sources[kind])
        path = encoder_checkpoint.save(built.document, Path(args.out) / f"{kind}.pt")
        reports[kind] = {**built.report, "checkpoint": str(path), "size_bytes": path.stat().st_size,
                         "source": built.document["source"], "command": command_line(["pretrain-encoders", *argv])}
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) in {built.report['seconds']:.0f} s")
    folder = Path(args.reports)
    previous = folder / "encoders.json"
    if args.only and previous.exists():  # keep the other encoder's report
        import json

        reports = {**json.loads(previous.read_text(encoding="utf-8")).get("encoders", {}), **reports}
        reports = {k: reports[k] for k in ("terrain", "spectral") if k in reports}
    write_json(previous, {"encoders": reports})
    (folder / "README.md").write_text(readme(reports, args.out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
