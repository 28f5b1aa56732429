"""README.md of the geology report, written from its JSON so the prose and the figures never disagree."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .ratios import CITATIONS, CLASSES, Thresholds


def _f(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def readme(document: dict[str, Any], model: Path, seconds: float) -> str:
    d, t = document, Thresholds()
    rec, margin = d["recipe"], d["margin"]
    classes = ["| class | precision | recall | F1 | test pixels | predicted |", "|---|---|---|---|---|---|"]
    classes += [f"| {c['name']} | {_f(c['precision'])} | {_f(c['recall'])} | {_f(c['f1'])} | {c['support']} | "
                f"{c['predicted']} |" for c in d["classes"]]
    pixels = d["pixels_by_split"]
    rules = ["| value | class | colour | rule | train / validation / test pixels |", "|---|---|---|---|---|"]
    rules += [f"| {v} | {n} | `{c}` | {rule} | {pixels['train'][n]} / {pixels['validation'][n]} / "
              f"{pixels['test'][n]} |" for v, n, c, rule in CLASSES]
    scenes = [f"| {name} | {s['pixels']} | {_f(s['overall_accuracy'])} | {_f(s['macro_f1'])} |"
              for name, s in d["test_scenes"].items()]
    (other_name, other), = d["other_sensor"].items()
    abstain = {name: sum(s["where_rules_abstain"][name] for s in d["test_scenes"].values())
               for name in d["test_scenes"][next(iter(d["test_scenes"]))]["where_rules_abstain"]}
    rare = [n for n, c in pixels["train"].items() if c < 500]
    return "\n".join([
        "# Geology model: surface materials from band ratios (transfer learning)",
        "",
        f"`{model}` ({model.stat().st_size / 1e6:.1f} MB): a U-Net that maps water, vegetation, ferric iron oxides, "
        "ferrous iron, clay / hydroxyl, other bare rock and soil, and cloud from six bands (Landsat 8/9 OLI "
        "bands 2-7 as Level-1 DN; Sentinel-2 and Landsat TM converted to that unit, `training/sensors.py`). Its "
        "encoder was pretrained as an autoencoder on unlabelled chips, then fine-tuned on labels from the cited "
        "band-ratio rules (`training/ratios.py`).",
        "",
        f"Command (from the repository root): `{d['command']}`. Run time {seconds:.0f} s in all (training "
        f"{d['seconds']:.0f} s), {rec['threads']} torch threads, seed {rec['seed']}.",
        "",
        "## Held-out result",
        "",
        f"On the test blocks ({d['total']} rule-labelled pixels never seen in pretraining or training), scored "
        f"through the plugin's engine on the exported file: overall accuracy **{d['overall_accuracy']:.3f}**, "
        f"macro-F1 **{d['macro_f1']:.3f}**. The truth is the rule labels, so these figures measure how faithfully "
        "the network reproduces the ratio rules on unseen ground, not agreement with a field map.",
        "",
        *classes,
        "",
        "| test scene | pixels | overall accuracy | macro-F1 |", "|---|---|---|---|", *scenes,
        "",
        "![confusion matrix](geology_confusion.png)",
        "",
        f"Another sensor: over the whole Landsat 5 TM scene ({other_name}; 1988, never used in training or "
        f"pretraining, converted from TM DN like any TM scene) the model agrees with the rules at "
        f"{_f(other['overall_accuracy'])} overall accuracy (macro-F1 {_f(other['macro_f1'])} over the classes "
        f"present, {other['pixels']} pixels).",
        "",
        "Maps (true colour | rule labels | model output; test blocks outlined, white = unlabelled):",
        "",
        *[f"![{name}](map_{name}.png)" for name in [*d["test_scenes"], other_name]],
        "",
        "Where the rules abstain (pixels in a gap between two rules, e.g. 0.2 <= NDVI < 0.3), the model still "
        "assigns a class; in the test blocks it chose: " + ", ".join(f"{k} {v}" for k, v in abstain.items() if v)
        + ".",
        "",
        "## Classes and the rules that label them",
        "",
        "Computed on top-of-atmosphere reflectance (Landsat: the MTL rescaling and sun elevation; the Sentinel-2 "
        "patch is L2A surface reflectance, used as it is). First match wins: cloud, water, vegetation, then the bare "
        "classes. A bare pixel goes to the ratio that exceeds its threshold by the largest factor; if none comes "
        f"within {t.margin:.0%} of its threshold it is other bare rock and soil; best factors within +-{t.margin:.0%} "
        "of 1 are left unlabelled, as are pixels with 0.2 <= NDVI < 0.3, invalid bands, or a denominator below "
        "0.001. The thresholds are this project's choices; the citations are for the indices and ratios.",
        "",
        *rules,
        "",
        *[f"- {c}" for c in CITATIONS],
        "",
        "## Training",
        "",
        f"- Scenes: the Landsat 8 OLI crop (`training/datasets/landsat8_florida`) and the Sentinel-2 patch "
        f"(`training/datasets/sentinel2_para`). Chips of {rec['chip']} px every {rec['stride']} px inside blocks of "
        f"{rec['block']} px; blocks split 70/15/15 into train/validation/test (seed {rec['seed']}).",
        f"- Pretraining: a convolutional autoencoder (width {rec['width']}, depth {rec['depth']}) on "
        f"{d['pretrain_chips']} unlabelled chips outside the test blocks, up to {rec['pretrain_epochs']} epochs.",
        f"- Fine-tuning: the autoencoder's encoder in a U-Net; encoder frozen for {rec['freeze_epochs']} epochs, then "
        f"everything trained, the encoder at {rec['encoder_lr_factor']:g} x lr (lr {rec['lr']:g}); class weights: "
        f"median-frequency weights to the power {rec['weight_power']:g}, capped at {rec['max_weight']:g}; "
        f"{d['train_chips']} training chips: the train-block chips and {rec['jitter_copies']} radiometric copies of "
        f"them, each chip's bands scaled by gains exp(N(0, {rec['jitter_sigma']:g})) and relabelled by the same "
        "rules (`training/spectral.py`), so the rare classes gain examples near their thresholds; best validation "
        f"macro-F1 at epoch {d['finetune_best_epoch']} of {d['finetune_epochs']}.",
        "- First layer: log reflectance (`training/spectral.py`): the card's z-score is undone inside the graph, so "
        "every ratio rule is a linear threshold on the network's inputs and a brightness factor (sun angle) is a "
        "common offset.",
        f"- Margin {margin['margin']} px, measured (`training/receptive.py`): beyond it, tiles without outside "
        f"context change the class of {margin['changed']:.3%} of pixels and no probability by more than "
        f"{margin['max_shift']:.2f}. Tile edges must be multiples of {2 ** rec['depth']}.",
        "",
        "## Limitations",
        "",
        "- The scenes are forest, farmland, a town, rivers and cumulus cloud: no outcrop and no alteration zone. "
        f"The mineral classes rest on few pixels (training pixels under 500: {', '.join(rare) or 'none'}); their "
        "F1 on a handful of test pixels is noise, not a measurement. Validate on a scene with known geology before "
        "relying on them.",
        "- Ratio classes are not minerals: red roofs and iron-stained water can be 'ferric', wet or shaded soil "
        "'ferrous', and vegetation residue shifts 6/7. The rules are thresholds on TOA reflectance; surface "
        "reflectance products move the ratios (the Sentinel-2 patch here is L2A).",
        "- The Sentinel-2 patch is at about 10 m while the card says 30 m (the Landsat scenes'); the engine warns "
        "for it. Scores are agreement with the rules, so they cannot be better than the rules themselves.",
        "",
    ])
