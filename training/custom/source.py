"""A pretrained encoder to start from (``--from``) and its fixed stem, as recorded in cards and checkpoints.

Stem specs are small dicts: ``line_of_sight`` (cell_m, radius_m, flat_deg), ``relative_relief`` (radius or radii,
scale), ``log_reflectance`` (the graph's scale, shift, log_mean, log_std and floor); any other ``type`` is built
by ``training.stems.make_stem`` (the encoder pretraining's stems), imported only when needed. ``input`` says how
the raster is normalised for the stem: ``zscore`` (the user's per-band statistics), ``mean`` (the user's mean,
the source's std: stems on elevation differences in metres), ``fixed`` (the source card's normalisation, which
the stem undoes) or ``raw`` (no normalisation).
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from ..nets import LineOfSight, RelativeRelief
from ..spectral import LogReflectance
from .findings import Refused

INPUTS = ("zscore", "mean", "fixed", "raw")


@dataclass
class Source:
    name: str                              # as given to --from
    path: str
    kind: str                              # "onnx" or "checkpoint"
    width: int
    depth: int
    encoder_bands: int                     # input channels of the encoder (after the stem)
    state: dict[str, torch.Tensor]         # nets.Encoder state_dict
    stem: Optional[nn.Module] = None
    stem_spec: Optional[dict[str, Any]] = None
    stem_bands: Optional[int] = None       # raster bands the stem takes
    input: str = "zscore"
    normalization: Optional[dict[str, Any]] = None  # the source card's (for "fixed", and the std of "mean")
    fused: bool = False                    # batch norms folded into the convolutions (an exported graph)
    pixel_size_m: Optional[float] = None
    verified: Optional[float] = None       # largest feature difference against the ONNX graph
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        stem = f", stem {self.stem_spec.get('type')}" if self.stem_spec else ""
        return f"{self.name} ({self.kind}: encoder width {self.width}, depth {self.depth}{stem})"


def _line_of_sight(spec: dict[str, Any]) -> nn.Module:
    return LineOfSight(float(spec["cell_m"]), float(spec["radius_m"]), float(spec.get("flat_deg", 1.0)))


def _relative_relief(spec: dict[str, Any]) -> nn.Module:
    radius = spec.get("radii", spec.get("radius"))
    return RelativeRelief(radius if isinstance(radius, int) else [int(r) for r in radius], float(spec["scale"]))


def _log_reflectance(spec: dict[str, Any]) -> nn.Module:
    bands = len(spec["log_mean"])
    stem = LogReflectance({"method": "zscore", "mean": [0.0] * bands, "std": [1.0] * bands}, spec["log_mean"],
                          spec["log_std"], float(spec["floor"]))
    with torch.no_grad():
        stem.scale.copy_(torch.tensor(spec["scale"], dtype=torch.float32).view(1, bands, 1, 1))
        stem.shift.copy_(torch.tensor(spec["shift"], dtype=torch.float32).view(1, bands, 1, 1))
    return stem


BUILDERS = {"line_of_sight": _line_of_sight, "relative_relief": _relative_relief,
            "log_reflectance": _log_reflectance}


def stem_from_spec(spec: dict[str, Any]) -> nn.Module:
    """The stem a spec describes; types this module does not know go to ``training.stems.make_stem``."""
    kind = spec.get("type")
    if kind in BUILDERS:
        try:
            return BUILDERS[str(kind)](spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused(f"the stem spec {spec} cannot be built: {exc}") from exc
    try:
        stems = importlib.import_module("..stems", __package__)
    except ImportError as exc:
        raise Refused(f"the encoder has a stem of type {kind!r}, built by training/stems.py, which this checkout "
                      "lacks: update the checkout (the encoder pretraining adds it).") from exc
    return copy.deepcopy(stems.make_stem({k: v for k, v in spec.items() if k != "input"}))


def stem_channels(stem: nn.Module, bands: int, size: int = 32) -> int:
    """Output channels of ``stem`` on a ``bands``-band input."""
    with torch.no_grad():
        return int(stem.eval()(torch.zeros(1, bands, size, size)).shape[1])


def stem_margin(stem: Optional[nn.Module]) -> int:
    """Pixels of context the stem reads around a pixel (its pad or radius)."""
    if stem is None:
        return 0
    return int(getattr(stem, "pad", getattr(stem, "radius", 0)) or 0)
