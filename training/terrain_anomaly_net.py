"""The terrain anomaly detector: an analytic, NaN-aware feature stem at the scale the user asks for, and a small
per-pixel head learned on planted anomalies (training/terrain_anomalies.py).

Graph inputs: ``elevation`` (N, 1, H, W) in metres, NaN at nodata and outside the raster (card ``input.nodata:
"nan"``), and ``scale`` (3,) = [cell_x_m, cell_y_m, search_m] (card ``input.scale``). The search distance is the
neighbourhood: the largest anomaly to look for. In cells, R = search_m / cell, clamped to [1, MAX_CELLS], separately
along x and y (geographic grids have unequal sides). Every statistic is a box sum with fractional edges, computed
from valid cells only (NaN -> 0 and a count of valid neighbours), so nothing is invented at borders and voids.

Features at each valid cell (relief in metres, expressed relative to the cell size and to local roughness, so a
1 m lidar DEM and a 1 km grid are handled alike):

- residuals r_k = z - mean of z over a box of half-width R * f_k, f = FRACTIONS (fine to coarse);
- roughness q_k = mean |r_k| over the R box around the cell, plus a floor EPS_SLOPE * cell size;
- t_k = r_k / q_k (signed), log(q_k / cell), and log of the valid-neighbour fraction.

The head (1x1 convolutions) maps them to a logit: output channel 0 is that anomaly score, channel 1 the signed
residual r_k in metres at the scale where |t_k| is largest (negative: depression, positive: rise). Outputs are NaN where the
input is NaN.
"""
from __future__ import annotations

import math

import torch
from torch import nn

MAX_CELLS = 24
MIN_CELLS = 2
DEFAULT_CELLS = 16
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
EPS_SLOPE = 0.01  # roughness floor: 1 % of the cell size in metres (a 0.6 degree step between neighbours)
EPS_M = 0.02  # and 2 cm (the vertical precision of good lidar)
CLOSED_AT = (0.5, 1.0)  # scales with the eight-sector closedness features
FEATURES = 3 * len(FRACTIONS) + 2 * len(CLOSED_AT) + 2
MARGIN = 2 * MAX_CELLS + 2  # mean at R, then roughness over R around it; +2 for fractional edges


def _kernel(radius: torch.Tensor, side: int = 0, power: int = 0) -> torch.Tensor:
    """A 1-D box of half-width `radius` cells with fractional end weights over -MAX_CELLS..MAX_CELLS, times
    (d / radius) ** power; side +1 keeps d >= 1 only, -1 d <= -1 only, 0 all."""
    d = torch.arange(-MAX_CELLS, MAX_CELLS + 1, dtype=torch.float32)
    w = torch.clamp(radius + 0.5 - d.abs(), 0.0, 1.0)
    if side:
        w = w * (d * side >= 1).to(torch.float32)
    return w * (d / radius) ** power if power else w


def separable(x: torch.Tensor, kx: list[torch.Tensor], ky: list[torch.Tensor]) -> torch.Tensor:
    """Channel i of x (N, C, H, W) filtered by kx[i] along x then ky[i] along y (zero beyond the tile)."""
    c, k = x.shape[1], 2 * MAX_CELLS + 1
    wx = torch.stack(kx).reshape(c, 1, 1, k)
    wy = torch.stack(ky).reshape(c, 1, k, 1)
    x = nn.functional.conv2d(x, wx, padding=(0, MAX_CELLS), groups=c)
    return nn.functional.conv2d(x, wy, padding=(MAX_CELLS, 0), groups=c)


def box(x: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor) -> torch.Tensor:
    """Sums of each channel of x over a (2ry+1) x (2rx+1) box."""
    c = x.shape[1]
    return separable(x, [_kernel(rx)] * c, [_kernel(ry)] * c)


#: (x side, y side) of the eight sectors around a cell: E, NE, N, NW, W, SW, S, SE (y grows downwards).
SECTORS = ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))


def _plane(z0: torch.Tensor, v: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Least-squares plane z = a + b u + c w over the valid cells of the box (u, w = offsets / radius), ridge-
    regularised towards flat where the valid cells are too few or collinear. Returns (a, b, c, count)."""
    vz = v * z0
    f, x1, x2 = _kernel(rx), _kernel(rx, power=1), _kernel(rx, power=2)
    g, y1, y2 = _kernel(ry), _kernel(ry, power=1), _kernel(ry, power=2)
    s = separable(torch.cat([v, v, v, v, v, v, vz, vz, vz], dim=1),
                  [f, x1, f, x2, f, x1, f, x1, f], [g, g, y1, g, y2, y1, g, g, y1])
    s0, sx, sy, sxx, syy, sxy, zz, zx, zy = (s[:, i:i + 1] for i in range(9))
    n = torch.clamp(s0, min=1e-6)
    sxx, syy = sxx + 1e-4 * n, syy + 1e-4 * n  # only where the valid cells are (nearly) collinear
    # Cramer's rule on [[s0 sx sy] [sx sxx sxy] [sy sxy syy]] [a b c] = [zz zx zy]
    det = s0 * (sxx * syy - sxy * sxy) - sx * (sx * syy - sxy * sy) + sy * (sx * sxy - sxx * sy)
    det = torch.where(det.abs() < 1e-9, torch.full_like(det, 1e-9), det)
    a = (zz * (sxx * syy - sxy * sxy) - sx * (zx * syy - sxy * zy) + sy * (zx * sxy - sxx * zy)) / det
    b = (s0 * (zx * syy - sxy * zy) - zz * (sx * syy - sxy * sy) + sy * (sx * zy - zx * sy)) / det
    c = (s0 * (sxx * zy - zx * sxy) - sx * (sx * zy - zx * sy) + zz * (sx * sxy - sxx * sy)) / det
    return a, b, c, s0


def _closedness(z0: torch.Tensor, v: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor, plane: tuple[torch.Tensor, ...],
                residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(depression, rise): how far every one of the eight sectors, detrended by the plane, lies above (below) the
    cell. A sector without valid cells counts 0 (no evidence), so a cell is closed only with all eight around it."""
    a, b, c, _ = plane
    vz = v * z0
    kx = {s: _kernel(rx, side=s) for s in (-1, 0, 1)}
    ky = {s: _kernel(ry, side=s) for s in (-1, 0, 1)}
    ux = {s: _kernel(rx, side=s, power=1) for s in (-1, 0, 1)}
    uy = {s: _kernel(ry, side=s, power=1) for s in (-1, 0, 1)}
    xs, ys, inputs = [], [], []
    for sx, sy in SECTORS:
        xs += [kx[sx], kx[sx], ux[sx], kx[sx]]
        ys += [ky[sy], ky[sy], ky[sy], uy[sy]]
        inputs += [v, vz, v, v]
    s = separable(torch.cat(inputs, dim=1), xs, ys)
    diffs = []
    for j in range(len(SECTORS)):
        n, sz, su, sw = (s[:, 4 * j + i:4 * j + i + 1] for i in range(4))
        m = torch.clamp(n, min=1e-6)
        detrended = sz / m - (a + b * su / m + c * sw / m)
        diffs.append(torch.where(n > 0.5, detrended - residual, torch.zeros_like(n)))
    stacked = torch.cat(diffs, dim=1)
    return torch.amin(stacked, dim=1, keepdim=True), torch.amin(-stacked, dim=1, keepdim=True)


class TerrainFeatures(nn.Module):
    """The analytic stem: (elevation, scale) -> (features (N, FEATURES, H, W), residual at R in metres)."""

    def forward(self, z: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cell_x, cell_y, search = scale[0], scale[1], scale[2]
        cell = torch.sqrt(cell_x * cell_y)
        rx = torch.clamp(search / cell_x, MIN_CELLS / 2, float(MAX_CELLS))
        ry = torch.clamp(search / cell_y, MIN_CELLS / 2, float(MAX_CELLS))
        valid = torch.logical_not(torch.isnan(z))
        v = valid.to(z.dtype)
        # A per-tile reference keeps float32 sums precise; it cancels exactly in every difference.
        reference = torch.sum(torch.where(valid, z, torch.zeros_like(z)), dim=(1, 2, 3), keepdim=True) / \
            torch.clamp(torch.sum(v, dim=(1, 2, 3), keepdim=True), min=1.0)
        z0 = torch.where(valid, z - reference, torch.zeros_like(z))
        floor = EPS_SLOPE * cell + EPS_M
        features, residuals, strengths = [], [], []
        for f in FRACTIONS:
            fx, fy = torch.clamp(rx * f, min=1.0), torch.clamp(ry * f, min=1.0)
            plane = _plane(z0, v, fx, fy)
            r = torch.where(valid, z0 - plane[0], torch.zeros_like(z0))
            rough = box(torch.cat([r.abs(), v], dim=1), rx, ry)
            q = rough[:, :1] / torch.clamp(rough[:, 1:], min=1e-6) + floor
            t = r / q
            features += [t, t.abs(), torch.log(q / cell)]
            if f in CLOSED_AT:
                low, high = _closedness(z0, v, fx, fy, plane, r)
                features += [low / q, high / q]
            residuals.append(r)
            strengths.append(t.abs())
        # the sign channel: the residual at the scale where the cell stands out most (a small pit on a ridge is
        # a depression at its own scale, though the ridge lifts it above the plane of the whole search distance)
        best = torch.argmax(torch.cat(strengths, dim=1), dim=1, keepdim=True)
        residual = torch.gather(torch.cat(residuals, dim=1), 1, best)
        count = box(v, rx, ry)
        full = (2 * rx + 1) * (2 * ry + 1)
        features.append(torch.log(torch.clamp(count / full, min=1e-3)))
        features.append(torch.log(torch.clamp(search / cell, min=1e-3)) * torch.ones_like(z0))
        out = torch.cat(features, dim=1)
        return torch.where(valid, out, torch.zeros_like(out)), residual


class TerrainAnomalyNet(nn.Module):
    """Stem + a per-pixel MLP head -> (N, 2, H, W): [anomaly score (logit), signed residual in metres]."""

    mean: torch.Tensor  # feature standardisation (buffers, set by training.terrain_anomaly_fit.fit_head)
    std: torch.Tensor

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.stem = TerrainFeatures()
        self.register_buffer("mean", torch.zeros(1, FEATURES, 1, 1))
        self.register_buffer("std", torch.ones(1, FEATURES, 1, 1))
        self.head = nn.Sequential(nn.Conv2d(FEATURES, hidden, 1), nn.GELU(), nn.Conv2d(hidden, hidden, 1), nn.GELU(),
                                  nn.Conv2d(hidden, 1, 1))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head((features - self.mean) / self.std)

    def forward(self, z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        features, residual = self.stem(z, scale)
        score = self.logits(features)
        nan = torch.full_like(z, math.nan)
        valid = torch.logical_not(torch.isnan(z))
        return torch.cat([torch.where(valid, score, nan), torch.where(valid, residual, nan)], dim=1)
