"""PNG previews for reports: class maps in their card colours, optionally with the outline of a mask (the
held-out blocks), so a reader sees at a glance what a model produced."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

NODATA_RGB = (255, 255, 255)
OUTLINE_RGB = (0, 0, 0)


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def class_rgb(classes: np.ndarray, palette: Sequence[tuple[int, str, str]]) -> np.ndarray:
    """(H, W, 3) uint8: each (value, name, "#rrggbb") class in its colour, anything else white."""
    lut = np.full((max(v for v, _, _ in palette) + 1, 3), NODATA_RGB, dtype=np.uint8)
    for value, _, colour in palette:
        lut[value] = _rgb(colour)
    ids = np.asarray(classes, dtype=np.int64)
    inside = (ids >= 0) & (ids < len(lut))
    out = np.full((*ids.shape, 3), NODATA_RGB, dtype=np.uint8)
    out[inside] = lut[ids[inside]]
    return out


def edges(mask: np.ndarray) -> np.ndarray:
    """The cells of ``mask`` that touch a cell outside it (4-neighbourhood)."""
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return m & ~inner


def write_class_png(classes: np.ndarray, path: str | os.PathLike[str], palette: Sequence[tuple[int, str, str]],
                    outline: Optional[np.ndarray] = None) -> Path:
    rgb = class_rgb(classes, palette)
    if outline is not None:
        rgb[edges(outline)] = OUTLINE_RGB
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(target, format="PNG", optimize=True)
    return target
