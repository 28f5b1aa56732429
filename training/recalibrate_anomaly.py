"""Recalibrate the bundled spectral anomaly model's fixed threshold on real scenes of every supported sensor, as
the plugin converts them (``python -m training.recalibrate_anomaly [--write]``; numpy, GDAL, onnxruntime, onnx).

Each scene goes through :func:`inference.workflows.presets.resolve_preset` ("auto", as Detect anomalies does with
INPUT only), its cloud mask when one is found, and the plugin's engine. The model's raw error is recovered from
the engine's score and the card's current calibration. The new calibration is the median and MAD of the error
pooled over the calibration scenes (the same number of pixels from each), and the threshold is the one
(on a 0.1 grid) whose flagged shares on the calibration scenes are closest to 0.1 % in log terms (the mean of
|log10(share / 0.1 %)|, shares below 0.001 % counted as 0.001 %). The held-out scenes are scored with it
and reported. Only the card is rewritten (``--write``); the graph is kept byte for byte.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from osgeo import gdal

from deepstrata.inference import RunOptions, load_model, run_model
from deepstrata.inference.engine.atomic_file import write_atomically
from deepstrata.inference.engine.errors import DeepStrataError
from deepstrata.inference.workflows.presets import resolve_preset
from deepstrata.inference.workflows.sensors.masks import write_valid_mask

gdal.UseExceptions()
REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODEL = REPO / "resources" / "models" / "anomaly_multispectral.onnx"
REPORT = REPO / "training" / "reports" / "anomaly_multispectral" / "CALIBRATION.md"
MAD_SCALE = 1.4826
FLAG = 0.001
PIXELS_PER_SCENE = 50000
# the card as training/ms_anomaly.py wrote it, before any recalibration: the report's "before" columns
ORIGINAL = {"median": 0.071798, "mad": 0.05645, "threshold": 67.0}


@dataclass(frozen=True)
class Scene:
    name: str
    path: Path
    sensor: str
    role: str  # "calibration" or "held out"


SCENES = (
    Scene("landsat8_florida", DATA / "multispectral/landsat8_florida/l8_B1-B7_stack.vrt", "Landsat 8 OLI L1 (DN, MTL)",
          "calibration"),
    Scene("landsat7_northcarolina", DATA / "multispectral/landsat7_etm_northcarolina/lsat7_2000_B1-B5-B7_stack.vrt",
          "Landsat 7 ETM+", "calibration"),
    Scene("sentinel2_l2a_amazon", DATA / "landcover/landsat5_amazon/sen2_L2A_12band_epsg4326.tif",
          "Sentinel-2 L2A", "calibration"),
    Scene("landsat5_amazon", DATA / "landcover/landsat5_amazon/LT5_B1-B7_stack.vrt", "Landsat 5 TM L1 (MTL)",
          "held out"),
    Scene("landsat8_sr_amazon", DATA / "multispectral/landsat8_sr_amazon/LC08_232066_20190727.tif",
          "Landsat 8 OLI L2 surface reflectance", "held out"),
    Scene("bundled_sample", REPO / "resources/samples/LC80200392015216LGN00_B2-B7_sample.tif",
          "Landsat 8 OLI L1 (DN, the plugin's sample)", "held out"),
)


def card_of(path: Path) -> dict[str, Any]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return json.loads({p.key: p.value for p in proto.metadata_props}["deepstrata"])


def scene_errors(model: Path, scene: Scene, folder: str) -> tuple[np.ndarray, str]:
    """The model's raw per-pixel error over the scene's valid pixels, and what the preset said."""
    loaded = load_model(str(model), "cpu")
    mapping = resolve_preset(str(scene.path), loaded.card, "auto")
    options = RunOptions(bands=mapping.bands, input_scale=mapping.scale, input_offset=mapping.offset, device="cpu")
    if mapping.mask is not None:
        options.valid_mask = write_valid_mask(mapping.mask, str(scene.path), os.path.join(folder, "mask.tif"))[0]
    out = os.path.join(folder, f"{scene.name}.tif")
    run_model(str(model), str(scene.path), out, options)
    ds = gdal.Open(out)  # kept open while its band is read
    band = ds.GetRasterBand(1)
    score = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    valid = np.isfinite(score) & (score != nodata if nodata is not None else True)
    ds = None
    spec = loaded.card.output.anomaly
    assert spec is not None
    return score[valid] * MAD_SCALE * spec.mad + spec.median, mapping.description


def calibrate(errors: Sequence[np.ndarray], seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([e[rng.choice(len(e), PIXELS_PER_SCENE, replace=len(e) < PIXELS_PER_SCENE)]
                             for e in errors])
    median = float(np.median(pooled))
    mad = float(np.median(np.abs(pooled - median)))
    scores = [(e - median) / (MAD_SCALE * mad) for e in errors]

    def miss(threshold: float) -> float:  # mean |log10(share / 0.1 %)|, shares floored at 1e-5
        return float(np.mean([abs(np.log10(max(float((z >= threshold).mean()), 1e-5) / FLAG)) for z in scores]))

    grid = np.round(np.arange(1.0, 100.0, 0.1), 1)
    return {"median": median, "mad": mad, "threshold": float(min(grid, key=miss))}


def rewrite_card(path: Path, calibration: dict[str, float], command: str, shares: dict[str, float]) -> None:
    """Replace the card's calibration and threshold; the graph and every other field stay as they are."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    card = json.loads(props["deepstrata"])
    anomaly = card["output"]["anomaly"]
    anomaly["calibration"] = {"median": round(calibration["median"], 6), "mad": round(calibration["mad"], 6)}
    anomaly["threshold"] = round(calibration["threshold"], 2)
    training = card.setdefault("training", {})
    training["calibration"] = (
        "fixed: median and MAD of the engine's squared error pooled over real scenes of Landsat 8 OLI L1, "
        "Landsat 7 ETM+ and Sentinel-2 L2A as the plugin's band presets convert them (50000 pixels each, clouds "
        "masked where a mask was found); threshold: the one whose flagged shares on those scenes are closest to "
        "0.1 % in log terms (training/reports/anomaly_multispectral/CALIBRATION.md)")
    training["recalibration"] = {"command": command, "flagged_share_per_scene": shares}
    props["deepstrata"] = json.dumps(card)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    write_atomically(path, proto.SerializeToString())


def report(rows: list[dict[str, Any]], old: dict[str, float], new: dict[str, float], command: str) -> str:
    import onnx
    import onnxruntime

    lines = ["# Spectral anomaly model: the fixed calibration, per scene", "",
             "Generated by `training/recalibrate_anomaly.py`; do not edit by hand. Each scene as Detect anomalies "
             "runs it with INPUT only (band preset 'auto', cloud mask when found), scored by the plugin's engine. "
             "The calibration scenes set the card's median, MAD (pooled, 50000 pixels each) and threshold (the one "
             "whose flagged shares on them are closest to 0.1 % in log terms); the held-out scenes were not used.",
             "",
             f"Card before: median {old['median']:.6g}, MAD {old['mad']:.6g}, threshold {old['threshold']:g}. "
             f"After: median {new['median']:.6g}, MAD {new['mad']:.6g}, threshold {new['threshold']:.2f}.", "",
             "| scene | sensor / product | role | pixels | median score before | flagged before | median score after "
             "| flagged after |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scene']} | {r['sensor']} | {r['role']} | not run: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['scene']} | {r['sensor']} | {r['role']} | {r['pixels']} | {r['median_before']:.2f} | "
                     f"{100 * r['flagged_before']:.3f} % | {r['median_after']:.2f} | {100 * r['flagged_after']:.3f} % |")
    done = [r for r in rows if "flagged_after" in r]
    spans = {role: [100 * r["flagged_after"] for r in done if r["role"] == role] for role in ("calibration", "held out")}
    medians = [r["median_after"] for r in done]
    lines += ["", "## What it means", "",
              "Flagged at the new default: " + "; ".join(f"{role} scenes {min(v):.4f}-{max(v):.4f} %"
                                                         for role, v in spans.items() if v) +
              f". The score's level differs between scenes more than one threshold can absorb (median scores "
              f"{min(medians):.2f} to {max(medians):.2f}): scenes whose conversion to the model's OLI DN is less "
              "exact, or whose landscape is far from the model's training scenes, score high everywhere, while the "
              "scenes closest to the training data have short tails. A fixed calibration keeps scores comparable "
              "across scenes (a score of 20 means the same everywhere) but can only bring the flagged share to "
              "within about a factor of ten of 0.1 % on these sensors; for exactly 0.1 % of a given scene, use "
              "Detect anomalies' 'Threshold when none is given: recalibrate on this scene', or fit a model to the "
              "scene ('Fit anomaly model to this raster')."]
    lines += ["", "How each scene was read (the preset's log line):", ""]
    lines += [f"- {r['scene']}: {r.get('preset', r.get('error', ''))}" for r in rows]
    lines += ["", f"Command: `{command}` (from the repository root, GDAL_PAM_ENABLED=NO). Versions: python "
              f"{platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, onnx "
              f"{onnx.__version__}, gdal {gdal.__version__}.", "",
              "Not used: ../shared/data/multispectral/sentinel2_virginia holds only the 20 m bands (no blue, green, "
              "red), which the model needs. The per-scene recalibration option of Detect anomalies ('Threshold when "
              "none is given: recalibrate on this scene') flags exactly the share asked on any scene instead."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.recalibrate_anomaly", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--write", action="store_true", help="rewrite the model's card and the report")
    args = parser.parse_args(argv)
    old = ORIGINAL
    rows: list[dict[str, Any]] = []
    errors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="deepstrata-recal-") as folder:
        for scene in SCENES:
            row: dict[str, Any] = {"scene": scene.name, "sensor": scene.sensor, "role": scene.role}
            try:
                errors[scene.name], row["preset"] = scene_errors(args.model, scene, folder)
            except DeepStrataError as exc:
                row["error"] = str(exc).splitlines()[0][:200]
            rows.append(row)
    used = [errors[s.name] for s in SCENES if s.role == "calibration" and s.name in errors]
    if not used:
        print("no calibration scene could be run", file=sys.stderr)
        return 1
    new = calibrate(used)

    def z(e: np.ndarray, cal: dict[str, float]) -> np.ndarray:
        return (e - cal["median"]) / (MAD_SCALE * cal["mad"])

    for row in rows:
        if row["scene"] in errors:
            e = errors[row["scene"]]
            row.update(pixels=int(e.size), median_before=float(np.median(z(e, old))),
                       flagged_before=float((z(e, old) >= old["threshold"]).mean()),
                       median_after=float(np.median(z(e, new))),
                       flagged_after=float((z(e, new) >= round(new["threshold"], 2)).mean()))
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items() if k != "preset"}, flush=True)
    print("calibration", {k: round(v, 6) for k, v in new.items()})
    command = "python -m training.recalibrate_anomaly" + (" --write" if args.write else "")
    if args.write:
        shares = {r["scene"]: round(r["flagged_after"], 5) for r in rows if "flagged_after" in r}
        rewrite_card(args.model, new, command, shares)
        REPORT.write_text(report(rows, old, new, command), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
