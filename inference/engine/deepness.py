"""Cards for models exported for the Deepness plugin: its metadata keys turned into a deepstrata card dict."""
from __future__ import annotations

import colorsys
import json
from typing import Any, Mapping

from .card import SCHEMA
from .errors import CardError

KEYS = ("model_type", "class_names", "tile_size", "tiles_overlap", "standardization_mean",
        "standardization_std", "resolution")
_TASKS = {"segmentor": "segmentation", "regressor": "regression"}
SOURCE = "Deepness metadata"


def has_deepness_metadata(meta: Mapping[str, str]) -> bool:
    return "model_type" in meta


def _json(meta: Mapping[str, str], key: str, default: Any) -> Any:
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise CardError(key, f"is not valid JSON: {meta[key][:60]!r}", SOURCE) from exc


def palette(n: int) -> list[str]:
    """n distinct colours, evenly spaced in hue."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.9)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return out


def card_from_deepness(meta: Mapping[str, str], channels: int, name: str) -> dict[str, Any]:
    """A card dict equivalent to Deepness' metadata; `channels` is the model's input channel count."""
    kind = meta.get("model_type", "")
    if kind not in _TASKS:
        raise CardError("model_type", f"Deepness '{kind}' models are not supported (only "
                        f"{', '.join(_TASKS)}); DeepStrata runs per-pixel models", SOURCE)
    tile = int(float(_json(meta, "tile_size", 512)))
    overlap_pct = float(_json(meta, "tiles_overlap", 15))
    names = _json(meta, "class_names", {})
    mean = [float(v) * 255 for v in _json(meta, "standardization_mean", [0.0] * channels)]
    std = [float(v) * 255 for v in _json(meta, "standardization_std", [1.0] * channels)]
    card: dict[str, Any] = {
        "schema": SCHEMA,
        "name": name,
        "task": _TASKS[kind],
        "description": "Model exported for the Deepness plugin (card derived from its metadata).",
        "input": {
            "kind": "rgb" if channels == 3 else "any",
            "bands": [{"name": f"band {i + 1}"} for i in range(channels)],
            "normalization": {"method": "zscore", "mean": mean, "std": std},
            "tile_size": tile,
            "margin": int(tile * overlap_pct / 100 / 2),
        },
        "output": {"activation": "none"},
        "training": {"source": "Deepness metadata"},
    }
    if "resolution" in meta:
        card["input"]["pixel_size_m"] = float(_json(meta, "resolution", 100)) / 100.0
    if card["task"] == "segmentation":
        if not isinstance(names, dict) or not names:
            raise CardError("class_names", "is required for a segmentor", SOURCE)
        ordered = [names[k] for k in sorted(names, key=lambda k: int(k))]
        colors = palette(len(ordered))
        card["output"]["classes"] = [{"value": i + 1, "name": str(n), "color": c}
                                     for i, (n, c) in enumerate(zip(ordered, colors))]
    return card
