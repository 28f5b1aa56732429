"""The model card of a ``segment`` / ``regress`` model: bands by name, the training normalisation, the ground pixel
size, classes with distinct colours (or the value's name), cross-validated metrics, the command and provenance."""
from __future__ import annotations

import colorsys
from typing import Any, Optional

from .defaults import Plan
from .findings import Findings
from .inputs import describe
from .metrics import finite, metric_names
from .source import Source
from .targets import Dataset

VERSION = "1.0.0"
#: Kelly's colours of maximum contrast (without black and white), then evenly spread hues.
PALETTE = ("#f3c300", "#875692", "#f38400", "#a1caf1", "#be0032", "#c2b280", "#848482", "#008856", "#e68fac",
           "#0067a5", "#f99379", "#604e97", "#f6a600", "#b3446c", "#dcd300", "#882d17", "#8db600", "#654522",
           "#e25822", "#2b3d26")
DEM_STEMS = ("line_of_sight", "relative_relief")


def colours(n: int) -> list[str]:
    """``n`` distinct #rrggbb colours."""
    out = list(PALETTE[:n])
    i = 0
    while len(out) < n:
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.65, 0.85 - 0.25 * ((i // 7) % 2))
        colour = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        if colour not in out:
            out.append(colour)
        i += 1
    return out


def kind_of(source: Optional[Source], given: Optional[str]) -> str:
    if given:
        return given
    stem = (source.stem_spec or {}).get("type") if source else None
    return "dem" if stem in DEM_STEMS else "multispectral" if stem == "log_reflectance" else "any"


def architecture(plan: Plan, source: Optional[Source], outputs: int) -> str:
    text = f"U-Net width {plan.width}, depth {plan.depth}, {outputs} output channel{'s' if outputs > 1 else ''}"
    if source is not None and source.stem_spec:
        spec = {k: v for k, v in source.stem_spec.items() if not isinstance(v, list)}
        text += f", on a fixed {spec.get('type')} stem {spec}"
    if source is not None:
        text += f"; encoder from {source.describe()}"
    return text


def headline(summary: dict[str, Any], task: str, first: str) -> dict[str, float]:
    """Card metrics: the network's cross-validated means and spread, and the baselines' means."""
    out: dict[str, float] = {}
    for metric in metric_names(task):
        s = summary["network"][metric]
        out[f"cv_{metric}"] = round(s["mean"], 4)
        out[f"cv_{metric}_std"] = round(s["std"], 4)
    primary = "rmse" if task == "regression" else "macro_f1"
    out[f"{first}_{primary}"] = round(summary[first][primary]["mean"], 4)
    out[f"random_forest_{primary}"] = round(summary["random_forest"][primary]["mean"], 4)
    return out


def build_card(dataset: Dataset, plan: Plan, source: Optional[Source], normalization: dict[str, Any], margin: int,
               summary: dict[str, Any], validation: dict[str, Any], command: str, findings: Findings,
               name: Optional[str], kind: Optional[str], label_field: str, epochs: int) -> dict[str, Any]:
    task = dataset.task
    first_scene = dataset.scenes[0]
    stems = ", ".join(s.path.rsplit("/", 1)[-1] for s in dataset.scenes)
    what = f"{label_field} ({len(dataset.classes)} classes)" if task != "regression" else dataset.value_name
    first = "mean" if task == "regression" else "majority"
    primary = "rmse" if task == "regression" else "macro_f1"
    net, base, forest = (summary[m][primary] for m in ("network", first, "random_forest"))
    description = (f"A U-Net trained by `python -m training {'regress' if task == 'regression' else 'segment'}` to map "
                   f"{what} from {len(first_scene.bands)} band(s) of {stems}. Spatial {plan.folds}-fold "
                   f"cross-validation x {len(plan.seeds)} seed(s): {primary} {net['mean']:.3f} +- {net['std']:.3f} "
                   f"(random forest {forest['mean']:.3f}, {first} {base['mean']:.3f}). Give it rasters like the "
                   "training ones: the same bands and units"
                   + (f", at about {first_scene.pixel_m:g} m pixels" if first_scene.pixel_m else "") + ".")
    card_input: dict[str, Any] = {
        "kind": kind_of(source, kind),
        "bands": [{"name": n, "unit": u, "description": f"band {b} of {first_scene.path.rsplit('/', 1)[-1]}"}
                  for b, n, u in zip(first_scene.bands, first_scene.band_names, first_scene.band_units)],
        "dtype": "float32", "normalization": normalization, "tile_size": 512, "margin": int(margin),
        "size_multiple": plan.size_multiple}
    if first_scene.pixel_m:
        card_input["pixel_size_m"] = round(first_scene.pixel_m, 4)
    if task == "regression":
        output: dict[str, Any] = {"activation": "none", "names": [dataset.value_name]}
    else:
        output = {"activation": "softmax", "classes": [
            {"value": c.value, "name": c.name, "color": col} for c, col in zip(dataset.classes, colours(len(dataset.classes)))]}
    training: dict[str, Any] = {
        "data": [describe(s) for s in dataset.scenes],
        "labels": {"sources": dataset.labels, "field": label_field,
                   "labelled_pixels": dataset.pixels,
                   **({"pixels_per_class": {c.name: c.pixels for c in dataset.classes}} if dataset.classes else {})},
        "architecture": architecture(plan, source, 1 if task == "regression" else len(dataset.classes)),
        "split": (f"spatial {plan.folds}-fold cross-validation over {plan.block} px blocks x {len(plan.seeds)} seed(s) "
                  f"(seeds {plan.seeds}); each fold's epoch chosen on an inner validation share of its training "
                  f"blocks; the final model trained on every block for {epochs} epochs (the median chosen epoch)"),
        "validation": validation,
        "metrics": headline(summary, task, first),
        "findings": [f.message for f in findings.items],
        "chips": {"size": plan.chip, "stride": plan.stride, "block": plan.block},
        "created_by": f"training/custom {VERSION}",
        "command": command,
        "seed": plan.seeds[0],
    }
    if source is not None:
        training["pretrained_from"] = {"name": source.name, "file": source.path.rsplit("/", 1)[-1], "kind": source.kind,
                                       **{k: v for k, v in source.details.items() if v is not None}}
        if source.stem_spec:
            training["stem"] = source.stem_spec
    return finite({"schema": "deepstrata.card/1", "name": name or f"{what} from {first_scene.path.rsplit('/', 1)[-1]}",
                   "version": VERSION, "task": task, "description": description, "input": card_input,
                   "output": output, "training": training})
