"""Fitting the terrain anomaly head on planted anomalies, calibrating its threshold on natural terrain, and scoring
detector and baselines on a scene. Used by training/dem_anomaly.py."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .terrain_anomalies import KINDS, Scene, plant_scene
from .terrain_anomaly_data import LoadedDem, pixel_auc, relative_relief, robust_z
from .terrain_anomaly_net import DEFAULT_CELLS, FEATURES, TerrainAnomalyNet

log = logging.getLogger(__name__)


def search_m(dem: LoadedDem, cells: float = DEFAULT_CELLS) -> float:
    """The default search distance: `cells` times the mean cell side (as the engine's default_cells does)."""
    return float(cells * (dem.cell[0] + dem.cell[1]) / 2)


def scale_tensor(dem: LoadedDem, search: float) -> torch.Tensor:
    return torch.tensor([dem.cell[0], dem.cell[1], search], dtype=torch.float32)


def features(net: TerrainAnomalyNet, z: np.ndarray, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        f, r = net.stem(torch.from_numpy(z.astype(np.float32))[None, None], scale)
    return f[0], r[0, 0]


def score(net: TerrainAnomalyNet, z: np.ndarray, scale: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(score, signed residual) of the whole DEM at once, NaN at nodata (the graph's own outputs)."""
    with torch.no_grad():
        out = net(torch.from_numpy(z.astype(np.float32))[None, None], scale)[0].numpy()
    return out[0], out[1]


@dataclass
class Samples:
    x: list[torch.Tensor] = field(default_factory=list)
    y: list[torch.Tensor] = field(default_factory=list)

    def add(self, feats: torch.Tensor, scene: Scene, negatives: int, rng: np.random.Generator) -> None:
        pos = np.flatnonzero(scene.footprint.ravel())
        normal = np.flatnonzero(scene.normal.ravel())
        neg = rng.choice(normal, size=min(negatives, len(normal)), replace=False)
        flat = feats.reshape(FEATURES, -1)
        self.x += [flat[:, pos].T, flat[:, neg].T]
        self.y += [torch.ones(len(pos)), torch.zeros(len(neg))]


def collect(dems: Sequence[LoadedDem], seeds: Sequence[int], per_kind: int, negatives: int, net: TerrainAnomalyNet,
            search_cells: Sequence[float] = (DEFAULT_CELLS,)) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of planted cells (positives) and of untouched natural cells (negatives) from every DEM and seed."""
    samples = Samples()
    for dem in dems:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            scene = plant_scene(dem.elevation, dem.cell, seed, per_kind)
            for cells in search_cells:
                feats, _ = features(net, scene.elevation, scale_tensor(dem, search_m(dem, cells)))
                samples.add(feats, scene, negatives, rng)
        log.info("%s: features of %d scenes", dem.name, len(seeds))
    return torch.cat(samples.x), torch.cat(samples.y)


def fit_head(net: TerrainAnomalyNet, x: torch.Tensor, y: torch.Tensor, steps: int = 800, lr: float = 3e-3,
             seed: int = 0, batch: int = 16384) -> list[float]:
    """Standardise the features, then fit the head by class-balanced binary cross-entropy (Adam, minibatches)."""
    torch.manual_seed(seed)
    net.mean.copy_(x.mean(0).reshape(1, -1, 1, 1))
    net.std.copy_(x.std(0).clamp_min(1e-3).reshape(1, -1, 1, 1))
    for layer in net.head:
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()
    optimizer = torch.optim.Adam(net.head.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    pos_weight = (y == 0).sum() / (y == 1).sum().clamp_min(1)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        index = torch.randint(0, len(y), (min(batch, len(y)),), generator=generator)
        logits = net.logits(x[index].reshape(-1, FEATURES, 1, 1)).reshape(-1)
        loss = loss_fn(logits, y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            losses.append(round(loss.item(), 4))
    return losses


@dataclass
class Evaluation:
    name: str
    split: str
    cell: tuple[float, float]
    search_m: float
    planted: int
    positives: int
    auc: dict[str, float]  # model, relative_relief, robust_z
    flag_rate: float  # of the natural (unplanted) DEM at the threshold
    frame_ratio: float  # flag rate in the outer 3-px frame / interior, on the natural DEM
    kinds: dict[str, dict[str, float | str]]


def evaluate(net: TerrainAnomalyNet, dem: LoadedDem, split: str, threshold: float, seed: int, per_kind: int = 10,
             natural: np.ndarray | None = None) -> Evaluation:
    """The detector and both baselines on one planted scene, and the flag rate of the natural DEM."""
    search = search_m(dem)
    scale = scale_tensor(dem, search)
    scene = plant_scene(dem.elevation, dem.cell, seed, per_kind)
    s, _ = score(net, scene.elevation, scale)
    pos, neg = scene.footprint, scene.normal
    auc = {"model": pixel_auc(s, pos, neg),
           "relative_relief": pixel_auc(relative_relief(scene.elevation, dem.cell, search), pos, neg),
           "robust_z": pixel_auc(robust_z(scene.elevation, dem.cell, search), pos, neg)}
    kinds: dict[str, dict[str, float | str]] = {}
    for kind in KINDS:
        mask = scene.kind_mask(kind)
        found = [bool(np.nanmax(np.where(scene.labels == i + 1, s, -np.inf)) >= threshold)
                 for i, p in enumerate(scene.planted) if p.kind == kind]
        kinds[kind] = {"auc": pixel_auc(s, mask, neg) if mask.any() else float("nan"),
                       "detected": f"{sum(found)}/{len(found)}"}
    nat = score(net, dem.elevation, scale)[0] if natural is None else natural
    valid = np.isfinite(nat)
    flagged = (nat >= threshold) & valid
    frame = np.zeros(valid.shape, dtype=bool)
    frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = True, True, True, True
    inner_rate = flagged[~frame].sum() / max(valid[~frame].sum(), 1)
    frame_rate = flagged[frame].sum() / max(valid[frame].sum(), 1)
    return Evaluation(dem.name, split, dem.cell, search, len(scene.planted), int(pos.sum()), auc,
                      float(flagged.sum() / valid.sum()),
                      float(frame_rate / inner_rate) if inner_rate else (0.0 if frame_rate == 0 else float("inf")),
                      kinds)


def calibrate(net: TerrainAnomalyNet, dems: Sequence[LoadedDem], rate: float) -> tuple[float, dict[str, float]]:
    """The fixed threshold: the highest, over the calibration DEMs (natural terrain), of the score that a
    fraction `rate` of their cells reach. Returns it and each DEM's own quantile."""
    per_dem = {}
    for dem in dems:
        s, _ = score(net, dem.elevation, scale_tensor(dem, search_m(dem)))
        per_dem[dem.name] = float(np.quantile(s[np.isfinite(s)], 1.0 - rate))
    return max(per_dem.values()), per_dem
