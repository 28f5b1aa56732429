"""Fixed input stems built from a JSON-able spec: the first layer of a model, with no trainable parameter.

A stem turns what the raster holds into what the encoder sees, inside the graph, the same way for every tile:
no per-tile statistic, only local ones over windows of a fixed size, so tiles agree where they overlap once the
card's margin covers :func:`stem_radius`. Specs (``make_stem(spec)``; ``None`` is no stem)::

    {"type": "relative_relief", "radius": 3 or [2, 5, 10], "scale": 10.0}          # nets.RelativeRelief
    {"type": "line_of_sight", "cell_m": 30, "radius_m": 300, "flat_deg": 1.0}      # nets.LineOfSight
    {"type": "normalized_relief", "radius": [1, 2, 4, 8], "window": 8, "floor_m": 0.25, "reference_m": 10.0,
     "magnitude": true}                                                            # NormalizedRelief (below)

Each stem works band by band; with B input bands it gives ``per_band x B`` channels, feature-major
(channel ``k * B + b`` is feature k of band b), which is what :func:`training.pretrain_encoders.adapt_first_conv`
assumes when it adapts a pretrained first convolution to another band count.

Why ``normalized_relief`` for the pretrained terrain encoder
-----------------------------------------------------------
The terrain encoder is pretrained on DEMs from 2 m lidar to 1 km grids and must serve any of them, so its input
has to mean the same thing at every pixel size and never show absolute elevation:

- *Shape channels*, one per radius r (in pixels, not metres, so the stem needs no pixel size):
  ``asinh((z - mean_r(z)) / (s + floor))``, the relative relief at radius r divided by the local relief scale
  ``s = sqrt(mean_W((z - mean_W(z))^2))``, the RMS relief over the same fixed (2W+1)^2 window around every cell.
  Differences of elevation only, so ``stem(z + c) == stem(z)``; and dividing by a *local* scale makes them
  invariant to the vertical scale (``stem(a z) == stem(z)`` for a > 0 wherever s >> floor): a ridge looks like
  a ridge whether it is 3 m high on a lidar grid or 300 m on a 1 km grid. ``floor`` (metres) keeps the flat
  cells of a quantised DEM from turning their rounding noise into full-scale relief; asinh tames the rare
  spikes (a pit in a flat window can reach (2W+1) times the local RMS).
- *Magnitude channel* (``magnitude``): ``log10((s + floor) / reference_m)``, the local relief in decades around
  ``reference_m`` (about -1.6 on a flat lidar plain, 0 at 10 m, 2 at 1 km of RMS relief). The shape channels
  throw the vertical scale away on purpose; this one keeps it, compressed, since relief magnitude separates
  rugged from smooth terrain (ridges of resistant rock from plains of cover). Scaling z by a shifts it by
  log10(a) where s >> floor.

Everything is local over windows of fixed size in pixels, so the stem needs a margin of ``2 W`` pixels
(:func:`stem_radius`): the relief at radius W of every cell of the scale window.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from .nets import LineOfSight, RelativeRelief, local_mean

STEM_TYPES = ("relative_relief", "line_of_sight", "normalized_relief")
_KEYS = {
    "relative_relief": ({"type", "radius", "scale"}, {"type", "radius", "scale"}),
    "line_of_sight": ({"type", "cell_m", "radius_m"}, {"type", "cell_m", "radius_m", "flat_deg"}),
    "normalized_relief": ({"type"}, {"type", "radius", "window", "floor_m", "reference_m", "magnitude"}),
}


class NormalizedRelief(nn.Module):
    """Relief shape at several radii, scale-free, and the local relief magnitude: see the module docstring."""

    def __init__(self, radius: int | Sequence[int] = (1, 2, 4, 8), window: int = 8, floor_m: float = 0.25,
                 reference_m: float = 10.0, magnitude: bool = True) -> None:
        super().__init__()
        self.radii = (radius,) if isinstance(radius, int) else tuple(int(r) for r in radius)
        if not self.radii or min(self.radii) < 1:
            raise ValueError(f"relief radii must be positive integers, not {radius!r}")
        if window < 1 or floor_m <= 0 or reference_m <= 0:
            raise ValueError("window must be >= 1 px, floor_m and reference_m > 0")
        self.window, self.floor, self.reference, self.magnitude = int(window), float(floor_m), float(reference_m), \
            bool(magnitude)
        self.radius = 2 * max(self.window, max(self.radii))

    @property
    def channels(self) -> int:
        return len(self.radii) + int(self.magnitude)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        relief = z - local_mean(z, self.window)
        scale = torch.sqrt(local_mean(relief * relief, self.window)) + self.floor
        shapes = [torch.asinh((relief if r == self.window else z - local_mean(z, r)) / scale) for r in self.radii]
        if self.magnitude:
            shapes.append(torch.log10(scale / self.reference))
        return torch.cat(shapes, dim=1)


def _check(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if kind not in STEM_TYPES:
        raise ValueError(f"stem type is one of {STEM_TYPES}, not {kind!r}")
    required, allowed = _KEYS[kind]
    missing, unknown = required - set(spec), set(spec) - allowed
    if missing or unknown:
        raise ValueError(f"{kind} stem: missing {sorted(missing)}, unknown {sorted(unknown)} (allowed {sorted(allowed)})")
    return kind


Stem = RelativeRelief | LineOfSight | NormalizedRelief


def make_stem(spec: Optional[Mapping[str, Any]]) -> nn.Module:
    """The fixed stem a spec describes (``nn.Identity`` for ``None``)."""
    if spec is None:
        return nn.Identity()
    return _build(spec)


def _build(spec: Mapping[str, Any]) -> Stem:
    kind = _check(spec)
    if kind == "relative_relief":
        radius = spec["radius"]
        return RelativeRelief(int(radius) if isinstance(radius, (int, float)) else [int(r) for r in radius],
                              float(spec["scale"]))
    if kind == "line_of_sight":
        return LineOfSight(float(spec["cell_m"]), float(spec["radius_m"]), float(spec.get("flat_deg", 1.0)))
    options = {k: v for k, v in spec.items() if k != "type"}
    if isinstance(options.get("radius"), (list, tuple)):
        options["radius"] = [int(r) for r in options["radius"]]
    return NormalizedRelief(**options)


def stem_channels(spec: Optional[Mapping[str, Any]], bands: int) -> int:
    """The channels the encoder gets: ``bands`` without a stem, the stem's features per band times ``bands``."""
    if spec is None:
        return int(bands)
    return int(_build(spec).channels) * int(bands)


def stem_radius(spec: Optional[Mapping[str, Any]]) -> int:
    """Pixels of context the stem reads around a cell: the part of the card's margin it needs."""
    if spec is None:
        return 0
    stem = _build(spec)
    return int(stem.pad if isinstance(stem, LineOfSight) else stem.radius)


def terrain_spec(radius: Sequence[int] = (1, 2, 4, 8), window: int = 8, floor_m: float = 0.25,
                 reference_m: float = 10.0, magnitude: bool = True) -> dict[str, Any]:
    """The ``normalized_relief`` spec of the pretrained terrain encoder, JSON-able."""
    if not math.isfinite(floor_m) or not math.isfinite(reference_m):
        raise ValueError("floor_m and reference_m must be finite")
    return {"type": "normalized_relief", "radius": [int(r) for r in radius], "window": int(window),
            "floor_m": float(floor_m), "reference_m": float(reference_m), "magnitude": bool(magnitude)}
