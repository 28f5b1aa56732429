"""What every model recipe (landforms, geology, anomaly, abu) shares: the command recorded in the card, running
an exported model through the plugin's own engine, the pixels of held-out blocks, and JSON reports.

Evaluating through the engine (not PyTorch) means the reported figures are what an analyst gets in QGIS:
same tiling, blending, normalisation and nodata rules.
"""
from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from osgeo import gdal

from deepstrata.inference import RunOptions, RunResult, run_model

from .data.splits import BlockKey

PathLike = str | os.PathLike[str]


def command_line(argv: Sequence[str]) -> str:
    """The exact command, for the card and the report: ``python -m training <argv>``."""
    return "python -m training " + shlex.join(list(argv))


def read_output(path: PathLike) -> np.ndarray:
    """A written output raster as an array: (H, W) for one band, (B, H, W) for several. Class rasters keep
    their integer ids (0 = nodata); float rasters get NaN where they hold nodata."""
    ds = gdal.Open(os.fspath(path))
    if ds is None:
        raise FileNotFoundError(f"cannot open {path}")
    array = ds.ReadAsArray()
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if nodata is not None:
            array[array == np.float32(nodata)] = np.nan
    return array


def engine_output(model: PathLike, raster: PathLike, *, bands: Optional[Sequence[int]] = None,
                  tile_size: Optional[int] = None, threads: int = 0) -> tuple[np.ndarray, RunResult]:
    """Run the exported ``model`` over ``raster`` with the plugin's engine on the CPU; return the output
    array (see :func:`read_output`) and the engine's RunResult. Nothing is left on disk."""
    options = RunOptions(bands=list(bands) if bands else None, device="cpu", tile_size=tile_size,
                         threads=threads)
    with tempfile.TemporaryDirectory(prefix="deepstrata-eval-") as folder:
        out = os.path.join(folder, "output.tif")
        result = run_model(os.fspath(model), os.fspath(raster), out, options)
        return read_output(out), result


def block_mask(shape: Sequence[int], blocks: Mapping[BlockKey, str], block: int, split: str = "test",
               raster: int = 0) -> np.ndarray:
    """(H, W) bool: the pixels of raster ``raster`` inside the blocks assigned to ``split``."""
    mask = np.zeros((shape[0], shape[1]), dtype=bool)
    for (index, column, row), name in blocks.items():
        if index == raster and name == split:
            mask[row * block:(row + 1) * block, column * block:(column + 1) * block] = True
    return mask


def write_json(path: PathLike, document: Any) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return target


def rounded(metrics: Mapping[str, float], digits: int = 4) -> dict[str, float]:
    """Headline figures for a card: plain floats, rounded."""
    return {k: round(float(v), digits) for k, v in metrics.items()}
