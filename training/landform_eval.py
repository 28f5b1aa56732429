"""The landform model's report: every DEM of :mod:`training.dems` classified by the exported model through the
plugin's engine at its default scale, against GRASS ``r.geomorphon`` run once with the same search distance in
metres (flat 1 degree, skip 0); border and void checks; time per megapixel; previews at three scales.

Agreement counts the cells r.geomorphon classifies (it leaves the outer search distance null). The frame and hole
checks (:mod:`training.borders`) count every valid cell of the model's map.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal

from deepstrata.inference.engine.georef import ground_pixel_size, srs_of
from deepstrata.inference.engine.model import load_model
from deepstrata.inference.engine.options import RunOptions
from deepstrata.inference.engine.scale import terrain_scale
from deepstrata.inference.workflows.resample import run_at_model_resolution

from . import grass
from .borders import excess, frame, frame_ratios, hole_ratios, inset_frame, near, punch_holes
from .dems import DEMS, DemEntry, elevation, materialise, write_with_holes
from .evaluate import classification_report, confusion_matrix, report
from .geomorphons import CLASSES
from .render import write_classes_over_hillshade
from .workflow import read_output, write_json

IDS = [value for value, _, _ in CLASSES]
MIN_CELLS = 200  # a frame with fewer valid cells (a basin mask's edge) has no meaningful shares
NAMES = [name for _, name, _ in CLASSES]
PREVIEWS = {"minnesota_1m": "landforms_lidar_1m.png", "bigtujunga_30m": "landforms_30m.png",
            "rhine_1km": "landforms_1km.png"}  # the workflow page's pictures at three scales
DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def classify(model: str | Path, dem: str, search_m: float | None = None) -> tuple[np.ndarray, float, str]:
    """(classes, seconds, scale sentence) of the model run through the engine on `dem`, on the CPU."""
    with tempfile.TemporaryDirectory(prefix="deepstrata-eval-") as folder:
        out = os.path.join(folder, "forms.tif")
        started = time.perf_counter()
        done = run_at_model_resolution(os.fspath(model), dem, out, RunOptions(device="cpu", search_m=search_m))
        seconds = time.perf_counter() - started
        return read_output(out), seconds, done.result.scale


def default_search(model: str | Path, dem: str) -> tuple[float, float]:
    """(search distance in metres, mean cell size) the engine picks for `dem`."""
    spec = load_model(os.fspath(model), "cpu").card.input.scale
    if spec is None:
        raise ValueError(f"{model} is not a terrain model with a scale input (card input.scale)")
    ds = gdal.Open(dem)
    sizes = ground_pixel_size(ds)
    ds = None
    scale = terrain_scale(spec, sizes, None)
    return scale.search_m, (scale.cell_x_m + scale.cell_y_m) / 2


def agreement(reference: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    keep = (reference > 0) & (predicted > 0)
    cm = confusion_matrix(reference[keep], predicted[keep], IDS)
    body = classification_report(cm, NAMES)
    return cm, {"cells": int(keep.sum()), "agreement": round(body["overall_accuracy"], 4),
                "macro_f1": round(body["macro_f1"], 4),
                "f1": {c["name"]: None if c["f1"] is None else round(c["f1"], 3) for c in body["classes"]}}


def _cells(dem: str) -> tuple[float, float]:
    ds = gdal.Open(dem)
    sizes = ground_pixel_size(ds)
    ds = None
    assert sizes is not None
    return sizes


def _crs(dem: str) -> str:
    ds = gdal.Open(dem)
    srs = srs_of(ds)
    ds = None
    if srs is None:
        return "none"
    code = srs.GetAuthorityCode(None)
    return f"EPSG:{code}" if code else srs.GetName()


def score(model: str | Path, entry: DemEntry, folder: Path, reports: Path) -> dict[str, Any]:
    dem = materialise(entry, folder)
    search_m, cell = default_search(model, dem)
    predicted, seconds, scale = classify(model, dem)
    reference = grass.geomorphon(dem, search_m, 1.0, 0)
    cm, found = agreement(reference, predicted)
    valid = predicted > 0
    reach = math.ceil(search_m / min(_cells(dem)))  # cells beyond it from edges and voids: whole lines
    inner = ~frame(predicted.shape, reach + 1) & ~near(~valid, reach)
    _, interior = agreement(np.where(inner, reference, 0), predicted)
    edge_ratios = frame_ratios(predicted, valid, IDS)
    framed = int((frame(predicted.shape, 3) & valid).sum())
    holes = hole_ratios(predicted, valid, IDS)
    edge_truth, edge_cells, void_truth, void_cells = borders_against_truth(model, dem, reference, reach)
    worst_frame = max(edge_truth.values()) if edge_cells >= MIN_CELLS else None
    worst_void = max(void_truth.values()) if void_cells >= MIN_CELLS else None
    row = {"dem": entry.label, "role": entry.role, "relief": entry.relief, "file": dem if entry.factor == 1 else
           f"{entry.path} averaged x{entry.factor}", "crs": _crs(dem), "cell_m": round(cell, 2),
           "size": list(predicted.shape[::-1]), "search_m": round(search_m, 1), "scale": scale, **found,
           "interior": {"cells": interior["cells"], "agreement": interior["agreement"],
                        "macro_f1": interior["macro_f1"]},
           "frame_cells": edge_cells, "frame_ratio_max": None if worst_frame is None else round(worst_frame, 2),
           "frame_ratios": {NAMES[k - 1]: round(v, 2) for k, v in edge_truth.items()},
           "void_cells": void_cells, "void_ratio_max": None if worst_void is None else round(worst_void, 2),
           "void_ratios": {NAMES[k - 1]: round(v, 2) for k, v in void_truth.items()},
           "raw_frame_cells": framed, "raw_frame_ratios": {NAMES[k - 1]: round(v, 2) for k, v in edge_ratios.items()},
           "raw_void_ratios": {NAMES[k - 1]: round(v, 2) for k, v in holes.items()} if (~valid).any() else None,
           "seconds": round(seconds, 2), "s_per_mpx": round(seconds / (predicted.size / 1e6), 2)}
    slug = entry.label.replace(" ", "_").replace("(", "").replace(")", "")
    report(reports / "confusion", slug, cm=cm, names=NAMES, title=f"{entry.label}: network vs r.geomorphon")
    (reports / "confusion" / f"{slug}_confusion.png").unlink()  # the CSV and JSON hold it; keep the repository lean
    if entry.factor == 1 and entry.name in PREVIEWS:
        z = elevation(dem)
        cells = _cells(dem)
        write_classes_over_hillshade(predicted, z, cells, reports / f"{entry.name}_network.png", CLASSES)
        write_classes_over_hillshade(reference, z, cells, reports / f"{entry.name}_rgeomorphon.png",
                                     CLASSES)
        write_classes_over_hillshade(predicted, z, cells, DOCS / PREVIEWS[entry.name], CLASSES)
    return row


def borders_against_truth(model: str | Path, dem: str, reference: np.ndarray,
                          reach: int) -> tuple[dict[int, float], int, dict[int, float], int]:
    """(frame ratios, frame cells, void ratios, ring cells) against r.geomorphon of the whole DEM: the model's map
    of the DEM cut `reach` + 1 cells smaller on every side, in its outer 3 cells, and of the DEM with holes punched
    in it, within 3 cells of the holes, each against the reference at the same cells (whose lines are whole)."""
    inset = reach + 1
    rows, cols, edge = inset_frame(reference.shape, inset)
    holes = punch_holes(reference > 0, reach)
    with tempfile.TemporaryDirectory(prefix="deepstrata-borders-") as folder:
        cut = os.path.join(folder, "inset.tif")
        gdal.Translate(cut, dem, srcWin=[inset, inset, reference.shape[1] - 2 * inset,
                                              reference.shape[0] - 2 * inset])
        inner, _, _ = classify(model, cut)
        holed, _, _ = classify(model, write_with_holes(dem, holes, os.path.join(folder, "holed.tif")))
    truth = reference[rows, cols]
    zone = edge & (inner > 0) & (truth > 0)
    ring = near(holes, 3) & ~holes & (holed > 0) & (reference > 0)
    return excess(inner, truth, zone, IDS), int(zone.sum()), excess(holed, reference, ring, IDS), int(ring.sum())


def _ratio(value: float | None, cells: int) -> str:
    return f"{value:.2f}" if value is not None else f"n/a ({cells} cells)"


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| DEM | role | cells | CRS | size | search | agreement | macro-F1 | interior agreement | interior "
             "macro-F1 | frame ratio | void ratio | s/Mpx |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        i = r["interior"]
        lines.append(f"| {r['dem']} | {r['role']} | {r['cell_m']:g} m | {r['crs']} | {r['size'][0]}x{r['size'][1]} | "
                     f"{r['search_m']:g} m | **{r['agreement']:.3f}** | {r['macro_f1']:.3f} | {i['agreement']:.3f} | "
                     f"{i['macro_f1']:.3f} | "
                     f"{_ratio(r['frame_ratio_max'], r['frame_cells'])} | "
                     f"{_ratio(r['void_ratio_max'], r['void_cells'])} | "
                     f"{r['s_per_mpx']:.2f} |")
    return "\n".join(lines)


def evaluate(model: str | Path, reports: Path, folder: Path, command: str,
             history: list[dict[str, float]]) -> dict[str, Any]:
    """Score every DEM, write training/reports/landforms; return the card's metrics (unseen DEMs)."""
    reports.mkdir(parents=True, exist_ok=True)
    rows = [score(model, entry, folder, reports) for entry in DEMS]
    unseen = [r for r in rows if r["role"] == "unseen"]
    metrics = {"unseen_min_agreement": min(r["agreement"] for r in unseen),
               "unseen_min_macro_f1": min(r["macro_f1"] for r in unseen),
               "unseen_mean_agreement": round(float(np.mean([r["agreement"] for r in unseen])), 4)}
    write_json(reports / "dems.json", {"command": command, "reference": "GRASS r.geomorphon -m search=<search_m> "
                                       "flat=1 skip=0", "rows": rows, "history": history, "metrics": metrics})
    (reports / "table.md").unlink(missing_ok=True)
    (reports / "README.md").write_text(_readme(rows, metrics, command, learned_flatness(model)), encoding="utf-8")
    return metrics


def learned_flatness(model: str | Path) -> float:
    """The flatness threshold (degrees) the exported network learnt: exp(log_flat), read from its graph."""
    import onnx
    from onnx import numpy_helper

    for init in onnx.load(os.fspath(model)).graph.initializer:
        if init.name == "log_flat":
            return math.degrees(math.exp(float(numpy_helper.to_array(init))))
    return float("nan")


def _readme(rows: list[dict[str, Any]], metrics: dict[str, Any], command: str, flat_deg: float) -> str:
    """The report's README: how the figures were made, and every DEM's."""
    unseen = [r for r in rows if r["role"] == "unseen"]
    misses = [r["dem"] for r in unseen if r["agreement"] < 0.9 or r["macro_f1"] < 0.8]
    frames = [r["dem"] for r in rows if r["frame_ratio_max"] is not None and r["frame_ratio_max"] > 1.5]
    voids = [r["dem"] for r in rows if r["void_ratio_max"] is not None and r["void_ratio_max"] > 1.5]
    return f"""# Landforms: the shipped geomorphon network (`resources/models/landforms_geomorphon.onnx`)

Made by (from the repository root, `PYTHONPATH=.build/plugins`; `make models` runs it):

    {command}

Every figure below comes from the exported model run through the plugin's engine (CPU, default tiling) at each
DEM's default scale (10 cells), against GRASS GIS `r.geomorphon` run once on the same file with the same search
distance in metres (`-m search=<metres> flat=1 skip=0`, GRASS {grass_version()}): one run, no radius chosen on
the DEM being scored. `dems.json` holds every row with its per-class F1, frame and void ratios;
`confusion/` the confusion matrices.

- **Split** (`training/dems.py`, fixed before training): trained on the geomorphons of four projected DEMs and
  three of them averaged 4x (steep mountains 25-120 m, a volcanic cone in a city at 2 and 8 m lidar, glaciated
  hills at 90 m). **Unseen**, never used to train or tune: a 1 m lidar DEM of glacial kettles (Minnesota), a
  10 m NED DEM of piedmont hills in EPSG:4269, SRTM 3" of a coastal mountain and plain (Cape Peninsula) and of
  plains and canyons (Texas) in EPSG:4326, the Cape DEM averaged 4x (about 340 m), and the Rhine basin at 30"
  (about 1 km, Alps to the North Sea plain). A lidar DSM (buildings and trees) is reported as a DSM case.
- **Network** (`training/geomorphon_net.py`): the lines of sight in the graph (at any cell size, from the
  scale input), a soft ternary whose flatness threshold was learnt (started at 2 degrees, ended at
  {flat_deg:.3f}), the form table (started from the paper's) and a small context
  branch trained on crops whose edges and voids cut the lines, against the forms of the whole DEM.
- **Agreement** counts the cells r.geomorphon classifies (it leaves a frame as wide as the search distance
  empty); **interior** only the cells whose eight lines are whole (the search distance away from edges and
  voids), where both follow the same rules. **Frame ratio**: the DEM cut smaller by the search distance and one
  cell on every side is classified as if it were the raster; in its outer 3 cells, the largest over the ten forms
  of the form's share divided by its share in r.geomorphon of the whole DEM at the same cells, where every line
  is whole (shares under 2 % count as 2 %): what the edge changed, and not the geography along it (a raw ratio,
  frame against interior of one map, mixes the two: `raw_frame_ratios` in `dems.json`). **Void ratio**: the same
  for the cells within 3 cells of square holes punched through the DEM (3 cells, the search distance and twice
  it wide, on a grid), against r.geomorphon of the DEM without them. Either is left out (n/a) when it covers
  fewer than 200 cells. Target: at most 1.5.
- **s/Mpx**: seconds per megapixel of the whole run on the shared 2-core machine (see also
  `benchmarks/bench_terrain_scale.py`).

{_table(rows)}

Unseen DEMs: lowest agreement {metrics["unseen_min_agreement"]:.3f}, mean {metrics["unseen_mean_agreement"]:.3f};
lowest macro-F1 {metrics["unseen_min_macro_f1"]:.3f}. Goal per resolution class: 0.90 and 0.80.
{"Below the goal: " + ", ".join(misses) + "." if misses else "Every unseen DEM meets both goals."}
{"Frame ratio above 1.5: " + ", ".join(frames) + "." if frames else "No frame ratio above 1.5."}
{"Void ratio above 1.5: " + ", ".join(voids) + "." if voids else "No void ratio above 1.5."}

| lidar 1 m: network | r.geomorphon | 30 m: network | r.geomorphon | 1 km: network | r.geomorphon |
|---|---|---|---|---|---|
| ![](minnesota_1m_network.png) | ![](minnesota_1m_rgeomorphon.png) | ![](bigtujunga_30m_network.png) | ![](bigtujunga_30m_rgeomorphon.png) | ![](rhine_1km_network.png) | ![](rhine_1km_rgeomorphon.png) |
"""


def grass_version() -> str:
    import shutil
    import subprocess

    if not shutil.which("grass"):
        return "not installed"
    done = subprocess.run(["grass", "--version"], capture_output=True, text=True, timeout=60)
    return (done.stdout or done.stderr).splitlines()[0].replace("GRASS GIS ", "") if (done.stdout or done.stderr) \
        else "unknown"
