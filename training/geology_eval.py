"""The geology model's card and report. Every figure comes from the exported model run by the plugin's engine:

- held out: the test blocks of the training scenes (Landsat 8 OLI, Sentinel-2 MSI), against the rule labels;
- another sensor: the whole Landsat 5 TM scene, never seen in training or pretraining, against its rule labels;
- where the rules abstain (unlabelled pixels of the test blocks), what the model says instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .evaluate import classification_report, confusion_matrix, report
from .geology import IDS, OTHER_SENSOR, Prepared, Recipe, Trained, write_inputs
from .ratios import CITATIONS, CLASSES, Thresholds, label
from .render import class_rgb, edges
from .sensors import SENSOR_BANDS, Calibrated, calibrate
from .workflow import block_mask, engine_output, rounded

NAMES = [name for _, name, *_ in CLASSES]
PALETTE = [(value, name, colour) for value, name, colour, _ in CLASSES]
WAVELENGTHS = ("0.45-0.51", "0.53-0.59", "0.64-0.67", "0.85-0.88", "1.57-1.65", "2.11-2.29")
OTHER_NAMES = ("blue", "green", "red", "near infrared", "shortwave infrared 1", "shortwave infrared 2")


def card(recipe: Recipe, prepared: Prepared, trained: Trained, metrics: dict[str, float],
         command: str) -> dict[str, Any]:
    t, r = Thresholds(), recipe
    bands = [{"name": oli, "unit": "DN",
              "description": f"{what} ({um} um): Landsat 8/9 OLI band {oli[1:]} Level-1 DN; Sentinel-2 {msi} or "
                             f"Landsat 4/5 TM {tm} converted (see the model description)"}
             for oli, msi, tm, what, um in zip(SENSOR_BANDS["oli"], SENSOR_BANDS["msi"], SENSOR_BANDS["tm"],
                                               OTHER_NAMES, WAVELENGTHS)]
    return {
        "schema": "deepstrata.card/1",
        "name": "Surface materials from Landsat 8/9 OLI (band-ratio geology, 7 classes)",
        "version": "1.0.0",
        "task": "segmentation",
        "description": (
            "A U-Net that maps the surface-material units exploration geologists read from band ratios: water, "
            "vegetation, ferric iron oxides (OLI 4/2), ferrous iron (6/5), clay / hydroxyl (6/7), other bare rock "
            "and soil, and cloud. Give it Landsat 8 or 9 Level-1 bands 2-7 as downloaded (DN, 30 m). Sentinel-2 "
            "bands B02, B03, B04, B8A, B11, B12 (10-30 m; it saw a 10 m patch in training) must first be converted "
            "to this unit: 5 x DN + 5000 before processing baseline 04.00 (January 2022), 5 x DN from it on; any "
            "reflectance r (0-1) becomes 50000 r + 5000. It was trained on labels from fixed ratio thresholds on top-of-atmosphere reflectance, "
            "on two small, mostly forested scenes: treat the mineral classes as a screening aid to check in the "
            "field, not as a geological map (see training.metrics and the report)."),
        "input": {
            "kind": "multispectral",
            "bands": bands,
            "dtype": "float32",
            "normalization": prepared.normalization,
            "pixel_size_m": 30.0,
            "tile_size": 512,
            "margin": trained.margin.margin,
            "size_multiple": trained.model.size_multiple,
        },
        "output": {
            "activation": "softmax",
            "classes": [{"value": v, "name": n, "color": c, "description": d} for v, n, c, d in CLASSES],
        },
        "training": {
            "data": "Landsat 8 OLI L1T LC80200392015216LGN00 (2015-08-04, Florida/Alabama; 384 x 384 px crop; "
                    "USGS public domain) and a Sentinel-2 L2A patch (Para, Brazil; 247 x 237 px at about 10 m; "
                    "Copernicus open data, via RStoolbox, GPL-3); see training/datasets/*/PROVENANCE.txt",
            "labels": ("per-pixel rules on top-of-atmosphere reflectance (training/ratios.py): cloud = Fmask "
                       "potential-cloud tests without thermal; water = MNDWI > "
                       f"{t.water_mndwi:g}; vegetation = NDVI >= {t.vegetation_ndvi:g}; bare = NDVI < "
                       f"{t.bare_ndvi:g}, then the ratio furthest above its threshold: OLI 4/2 >= {t.ferric_4_2:g} "
                       f"ferric, 6/5 >= {t.ferrous_6_5:g} ferrous, 6/7 >= {t.hydroxyl_6_7:g} clay / hydroxyl, "
                       f"else other bare (gaps of +-{t.margin:.0%} around the thresholds, and 0.2 <= NDVI < 0.3, "
                       "are unlabelled). Thresholds are this project's; the indices and ratios are cited."),
            "citations": list(CITATIONS),
            "pretrained_from": (f"ConvAutoencoder (width {r.width}, depth {r.depth}) trained on "
                                f"{trained.pretrain_chips} unlabelled {r.chip} px chips of the same Landsat 8 and "
                                "Sentinel-2 scenes (test blocks excluded), best reconstruction error "
                                f"{trained.pretrain.best_metric:.4f} at epoch {trained.pretrain.best_epoch}; its "
                                f"encoder frozen for {r.freeze_epochs} epochs, then fine-tuned at 0.1 x lr"),
            "architecture": f"U-Net width {r.width}, depth {r.depth}, with a log-reflectance first layer "
                            "(training/spectral.py) so band ratios are linear in its inputs",
            "augmentation": f"random flips and quarter turns; {r.jitter_copies} copies of the training chips with "
                            f"band gains exp(N(0, {r.jitter_sigma:g})), relabelled by the same rules",
            "split": f"spatial blocks of {r.block} px, 70/15/15 train/validation/test; metrics on the test blocks",
            "metrics": metrics,
            "seed": r.seed,
            "created_by": "training/geology.py",
            "command": command,
        },
    }


def rgb_preview(reflectance: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 true-colour preview (red, green, blue), each band stretched between its 2nd and 98th
    percentiles; invalid pixels white."""
    rgb = np.asarray(reflectance[[2, 1, 0]], dtype=np.float64)
    lo, hi = np.nanpercentile(rgb, 2, axis=(1, 2)), np.nanpercentile(rgb, 98, axis=(1, 2))
    scaled = np.clip((rgb - lo[:, None, None]) / np.maximum(hi - lo, 1e-9)[:, None, None], 0, 1)
    return (np.nan_to_num(scaled, nan=1.0) * 255).astype(np.uint8).transpose(1, 2, 0)


def triptych(scene: Calibrated, rules: np.ndarray, predicted: np.ndarray, path: Path,
             outline: np.ndarray | None = None) -> Path:
    """True colour | rule labels | model output side by side, the test blocks outlined in black."""
    panels = [rgb_preview(scene.reflectance), class_rgb(rules, PALETTE), class_rgb(predicted, PALETTE)]
    if outline is not None:
        for panel in panels[1:]:
            panel[edges(outline)] = 0
    height, width = rules.shape
    canvas = np.full((height, 3 * width + 16, 3), 255, dtype=np.uint8)
    for i, panel in enumerate(panels):
        canvas[:, i * (width + 8):i * (width + 8) + width] = panel
    Image.fromarray(canvas, "RGB").quantize(colors=128).save(path, format="PNG", optimize=True)
    return path


def _scores(truth: np.ndarray, predicted: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    keep = keep & (truth > 0) & (predicted > 0)
    cm = confusion_matrix(truth[keep], predicted[keep], IDS)
    body = classification_report(cm, NAMES) if cm.sum() else {"overall_accuracy": None, "macro_f1": None}
    return cm, {"pixels": int(keep.sum()), "overall_accuracy": body["overall_accuracy"],
                "macro_f1": body["macro_f1"], "confusion_matrix": cm.tolist()}


def pixels_by_split(prepared: Prepared, block: int) -> dict[str, dict[str, int]]:
    """Rule-labelled pixels of each class in the train, validation and test blocks of all scenes."""
    out = {}
    for split in ("train", "validation", "test"):
        counts = np.zeros(max(IDS) + 1, dtype=np.int64)
        for i, labels in enumerate(prepared.labels):
            counts += np.bincount(labels[block_mask(labels.shape, prepared.split.blocks, block, split, i)],
                                  minlength=len(counts))
        out[split] = {name: int(counts[value]) for value, name, _ in PALETTE}
    return out


def _abstained(truth: np.ndarray, predicted: np.ndarray, keep: np.ndarray) -> dict[str, int]:
    counts = np.bincount(predicted[keep & (truth == 0) & (predicted > 0)], minlength=max(IDS) + 1)
    return {name: int(counts[value]) for value, name, _ in PALETTE}


def evaluate_and_report(model: Path, recipe: Recipe, prepared: Prepared, trained: Trained, reports: Path,
                        command: str, folder: Path) -> dict[str, float]:
    """Score ``model`` (the exported file) through the engine; write the report files; return the headline."""
    reports.mkdir(parents=True, exist_ok=True)
    total = np.zeros((len(IDS), len(IDS)), dtype=np.int64)
    scenes: dict[str, Any] = {}
    for i, scene in enumerate(prepared.scenes):
        source = scene.scene.path if scene.scene.sensor == "oli" else prepared.inputs[i]  # raw OLI DN as shipped
        predicted, _ = engine_output(model, source, threads=recipe.threads)
        test = block_mask(predicted.shape, prepared.split.blocks, recipe.block, "test", i)
        cm, scenes[scene.scene.name] = _scores(prepared.labels[i], predicted, test)
        scenes[scene.scene.name]["where_rules_abstain"] = _abstained(prepared.labels[i], predicted, test)
        total += cm
        triptych(scene, prepared.labels[i], predicted, reports / f"map_{scene.scene.name}.png", test)
    other = calibrate(OTHER_SENSOR)
    rules = label(other.reflectance)
    image, _ = write_inputs(other, rules, folder)
    predicted, _ = engine_output(model, image, threads=recipe.threads)
    _, unseen = _scores(rules, predicted, np.ones(rules.shape, dtype=bool))
    triptych(other, rules, predicted, reports / f"map_{OTHER_SENSOR.name}.png")
    extra = {"command": command, "seconds": round(trained.seconds, 1), "recipe": vars(recipe),
             "test_scenes": scenes, "other_sensor": {OTHER_SENSOR.name: unseen},
             "margin": vars(trained.margin), "pixels_by_split": pixels_by_split(prepared, recipe.block),
             "train_chips": trained.train_chips,
             "pretrain_chips": trained.pretrain_chips, "finetune_best_epoch": trained.finetune.best_epoch,
             "finetune_epochs": len(trained.finetune.history)}
    headline = report(reports, "geology", cm=total, names=NAMES, extra=extra,
                      title="Geology (surface materials), held-out test blocks")
    metrics = rounded(headline)
    if unseen["overall_accuracy"] is not None:
        metrics["landsat5_tm_agreement"] = round(float(unseen["overall_accuracy"]), 4)
    return metrics
