"""``python -m training landforms-finetune``: the landform network fitted to an analyst's own landform map.

An expert map rarely draws the lines exactly where r.geomorphon does: a different sense of what is flat, broader
ridges, another scale. Given the DEM and the map (polygons with a class field whose values are the ten forms'
names, or a label raster with those names as categories), this starts from the shipped network's weights
(read back from ``resources/models/landforms_geomorphon.onnx``, or any model this command wrote), keeps the lines of sight
(they have no weights) and fits what can be learned: the flatness threshold and sharpness, the form table and
the context branch. The labelled area is split into spatial blocks; the held-out blocks are scored before and
after, through the plugin's engine, and the model is written only when it improves on them.

    python -m training landforms-finetune --dem dem.tif --labels my_map.gpkg --field form --output mine.onnx
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from deepstrata.inference import RunOptions
from deepstrata.inference.engine.georef import ground_pixel_size
from deepstrata.inference.workflows.resample import run_at_model_resolution

from .data.errors import DataError
from .data.grid import open_raster
from .data.labels import image_grid, load_labels
from .dems import elevation
from .geomorphon_net import GeomorphonNet
from .geomorphons import CLASSES
from .landforms import Recipe, export
from .train import seed_everything
from .workflow import command_line, read_output, write_json

log = logging.getLogger(__name__)

START = "resources/models/landforms_geomorphon.onnx"
NAMES = {name: value for value, name, _ in CLASSES}


@dataclass
class Tuned:
    net: GeomorphonNet
    search_m: float
    before: float  # agreement with the held-out labels, the starting model
    after: float  # and the fine-tuned one
    held_out: int  # labelled cells held out


def load_network(path: str | Path) -> GeomorphonNet:
    """The network of a landform model exported by ``python -m training landforms`` (or by this command), its
    weights read back from the ONNX initialisers, and checked: PyTorch must give what onnxruntime gives."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    card = json.loads({p.key: p.value for p in proto.metadata_props}.get("deepstrata", "{}"))
    scale = card.get("input", {}).get("scale") or {}
    biases = [name for name, value in weights.items() if value.shape == (1, 10, 1, 1)]
    if "max_cells" not in scale:
        raise DataError(f"{path} is not a landform network exported by 'python -m training landforms': start from "
                        f"the shipped one ({START}) or one fine-tuned from it.")
    net = GeomorphonNet(int(scale["max_cells"]))
    wanted = [name for name in net.state_dict() if name != "bias"]  # the bias is folded into a constant
    if any(name not in weights or weights[name].shape != tuple(net.state_dict()[name].shape) for name in wanted) \
            or len(biases) != 1:
        raise DataError(f"{path} is not a landform network exported by 'python -m training landforms': start from "
                        f"the shipped one ({START}) or one fine-tuned from it.")
    state = {name: torch.from_numpy(weights[name].copy()) for name in wanted}
    state["bias"] = torch.from_numpy(weights[biases[0]].reshape(10).copy())
    net.load_state_dict(state)
    net.eval()
    z = np.cumsum(np.random.default_rng(0).normal(0, 3, (64, 64)), axis=1).astype(np.float32)
    feed = np.array([30.0, 30.0, 300.0], np.float32)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": z[None, None], "scale": feed})[0]
    with torch.no_grad():
        got = net(torch.from_numpy(z)[None, None], torch.from_numpy(feed)).numpy()
    if not np.allclose(got, expected, atol=2e-3):
        raise DataError(f"The weights read back from {path} do not reproduce it; start from {START}.")
    return net


def _blocks(labels: np.ndarray, block: int, held_out: float, seed: int) -> np.ndarray:
    """(H, W) bool: the labelled cells in the held-out blocks (about `held_out` of the labelled blocks)."""
    rows, cols = -(-labels.shape[0] // block), -(-labels.shape[1] // block)
    labelled = [(r, c) for r in range(rows) for c in range(cols)
                if (labels[r * block:(r + 1) * block, c * block:(c + 1) * block] > 0).any()]
    if len(labelled) < 2:
        raise DataError(f"The labels cover {len(labelled)} block of {block} x {block} cells: at least two are needed "
                        "to hold one out. Label a larger area, or pass a smaller --block.")
    rng = np.random.default_rng(seed)
    count = max(1, round(held_out * len(labelled)))
    chosen = [labelled[i] for i in rng.choice(len(labelled), count, replace=False)]
    mask = np.zeros(labels.shape, bool)
    for r, c in chosen:
        mask[r * block:(r + 1) * block, c * block:(c + 1) * block] = True
    return mask & (labels > 0)


def _agreement(model: Path, dem: str, search_m: float, labels: np.ndarray, where: np.ndarray) -> float:
    with tempfile.TemporaryDirectory(prefix="deepstrata-finetune-") as folder:
        out = Path(folder) / "forms.tif"
        run_at_model_resolution(str(model), dem, str(out), RunOptions(device="cpu", search_m=search_m))
        forms = read_output(out)
    return float((forms[where] == labels[where]).mean())


def finetune(dem: str, labels_path: str, field: Optional[str], search_m: Optional[float], start: GeomorphonNet,
             folder: Path, epochs: int = 60, block: int = 64, held_out: float = 0.3, seed: int = 0) -> Tuned:
    """Fit `start` to the labels on the training blocks; score both on the held-out blocks through the engine.

    `folder` receives start.onnx and tuned.onnx (the latter is what the command ships)."""
    seed_everything(seed)
    try:
        labels = load_labels(labels_path, image_grid(dem), field, NAMES)
    except DataError as error:
        if "class mapping" not in str(error):  # a class outside the ten forms (the message names it) gets the fix
            raise
        raise DataError(f"{error} Fine-tuning keeps the ten geomorphon forms ({', '.join(NAMES)}): name your "
                        "classes after the nearest of them.") from None
    truth = labels.array.astype(np.int64)
    test = _blocks(truth, block, held_out, seed)
    ds = open_raster(dem)
    sizes = ground_pixel_size(ds)
    ds = None
    if sizes is None:
        raise DataError(f"{dem} has no CRS: its cell size in metres is unknown. Assign its CRS first.")
    search = search_m or 10.0 * (sizes[0] + sizes[1]) / 2
    command = "python -m training landforms-finetune"
    export(start.eval(), Recipe(), {}, command, folder / "start.onnx")
    before = _agreement(folder / "start.onnx", dem, search, truth, test)
    z = torch.from_numpy(elevation(dem))[None, None]
    scale = torch.tensor([sizes[0], sizes[1], search], dtype=torch.float32)
    net = start.train()
    with torch.no_grad():
        high, low, seen = net.lines(z, scale)
    valid = ~torch.isnan(z)
    target = torch.from_numpy(np.where(test, 0, truth))[None] - 1  # -1: not labelled, or held out
    optimiser = torch.optim.Adam(net.parameters(), lr=0.02)
    for epoch in range(epochs):
        loss = F.cross_entropy(net.classify(high, low, seen, valid), target, ignore_index=-1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if epoch % 10 == 0 or epoch == epochs - 1:
            log.info("epoch %d: loss %.4f, flatness %.2f deg", epoch + 1, loss.item(),
                     math.degrees(net.log_flat.exp().item()))
    net.eval()
    export(net, Recipe(), {}, command, folder / "tuned.onnx")
    after = _agreement(folder / "tuned.onnx", dem, search, truth, test)
    return Tuned(net, search, before, after, int(test.sum()))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training landforms-finetune", description=__doc__.splitlines()[0])
    p.add_argument("--dem", required=True, help="the DEM the map was drawn on (elevations in metres, any CRS)")
    p.add_argument("--labels", required=True, help="the map: polygons (any OGR format) or a label raster")
    p.add_argument("--field", help="the polygons' class field (values: flat, peak, ridge, ... pit)")
    p.add_argument("--output", required=True, help="the fine-tuned .onnx to write")
    p.add_argument("--search-m", type=float, help="search distance in metres (default: 10 cells of the DEM)")
    p.add_argument("--from", dest="start", default=START, help=f"the landform model to start from (default {START})")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--block", type=int, default=64, help="spatial blocks (cells) of the held-out split")
    p.add_argument("--held-out", type=float, default=0.3, help="share of the labelled blocks held out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", help="also write the figures and the command to this JSON file")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv or [])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="deepstrata-finetune-") as folder:
            tuned = finetune(args.dem, args.labels, args.field, args.search_m, load_network(args.start),
                             Path(folder), args.epochs, args.block, args.held_out, args.seed)
            metrics = {"held_out_cells": tuned.held_out, "agreement_before": round(tuned.before, 4),
                       "agreement_after": round(tuned.after, 4), "search_m": tuned.search_m}
            print(json.dumps(metrics))
            if args.report:
                write_json(args.report, {"command": command_line(["landforms-finetune", *argv]), "dem": args.dem,
                                         "labels": args.labels, "start": args.start, **metrics,
                                         "learned_flat_deg": math.degrees(tuned.net.log_flat.exp().item())})
            if tuned.after <= tuned.before:
                print(f"Fine-tuning did not improve the agreement with the held-out part of the map "
                      f"({tuned.before:.3f} -> {tuned.after:.3f}); nothing written. Label more area, or check "
                      "that the map and the DEM line up.")
                return 1
            note = (f"Fine-tuned on the map {Path(args.labels).name} over {Path(args.dem).name}: agreement with its "
                    f"held-out blocks {tuned.before:.3f} before, {tuned.after:.3f} after.")
            export(tuned.net, Recipe(), {"finetuned_on": args.labels, **metrics},
                   command_line(["landforms-finetune", *argv]), args.output, note)
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    print(f"wrote {args.output}")
    return 0
