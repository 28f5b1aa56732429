"""The README of the pretrained encoders' report (training/reports/encoders)."""
from __future__ import annotations

from typing import Any


def _error_row(name: str, scale: str, rec: dict[str, Any], hidden: bool) -> str:
    cells = [f"{rec[k]['all_pixels']:.4f}" for k in ("autoencoder", "zero", "visible_mean")]
    if hidden:
        cells += [f"{rec[k]['hidden_pixels']:.4f}" for k in ("autoencoder", "visible_mean")]
    return f"| {name} | {scale} | {rec['chips']} | " + " | ".join(cells) + " |"


def readme(reports: dict[str, dict[str, Any]], out: str) -> str:
    lines = ["# Pretrained encoders (issue #10)", "",
             "Small encoders (`nets.Encoder`) pretrained without labels on the rasters of `../shared/data`, for "
             "transfer to segmentation models (`python -m training transfer-goal` measures whether they help: "
             "`training/reports/transfer_goal/`). Each is written in the `deepstrata-encoder/1` format "
             "(`training/encoder_checkpoint.py`).", "",
             f"Files: `{out}/<kind>.pt`, `encoders.json` (every figure below, per raster). Commands run from the "
             "repository root.", ""]
    for kind, r in reports.items():
        rec = r["recipe"]
        hidden = rec["mask_ratio"] > 0
        lines += [f"## {kind}", "", f"Command: `{r['command']}`; checkpoint `{r['checkpoint']}`.", "",
                  f"- Encoder: width {rec['width']}, depth {rec['depth']}, {r['parameters']} parameters "
                  f"({r['size_bytes'] / 1024:.0f} KiB on disk); input `{r['input']}`, bands "
                  f"{', '.join(r['band_names'])} in this order; stem "
                  f"{'`' + str(r['stem']) + '`' if r['stem'] else 'none'} ({r['encoder_channels']} encoder channels, "
                  f"stem radius {r['stem_radius_px']} px).",
                  f"- Objective: {r['objective']}; {rec['epochs']} epochs of {r['chips']} chips of {rec['chip']} px "
                  f"(batches of {rec['batch_size']}, AdamW lr {rec['lr']:g} cosine to 0, flips and quarter turns), "
                  f"seed {rec['seed']}, {rec['threads']} torch thread: {r['pretrain_seconds']:.0f} s of training, "
                  f"{r['seconds']:.0f} s in all. Loss per epoch: " + ", ".join(f"{v:.4f}" for v in r["epoch_losses"]) + ".",
                  "", "Pretrained on (chips drawn at random, at most "
                  f"{rec['max_chips']} per raster and pooling factor, laid every {rec['stride']} px):", "",
                  "| raster | files | pixel size (m) | pooling | chips available | chips used |", "|---|---|---|---|---|---|"]
        for row in r["pretrained_on"]:
            lines.append(f"| {row['name']} ({row['note']}) | {', '.join(row['files'])} | {row['pixel_size_m']:g} | "
                         f"x{row['scale']} | {row['chips_available']} | {row['chips']} |")
        lines += ["", "Kept out of pretraining: " + "; ".join(
            [f"`{', '.join(h['files'])}` ({h['note']})" for h in r["held_out"]]
            + [f"`{k['path']}` ({k['why']})" for k in r["kept_out"]])
            + ".", "",
            "Reconstruction error (mean squared error of the normalised "
            f"{'stem output' if r['stem'] else 'bands'}; hidden patches as in training, one fixed mask per chip): the "
            "autoencoder against predicting 0 (the mean) and against copying the visible pixels and filling each "
            "hidden one with the mean of the visible pixels in its 9x9 window.", "",
            "| raster | pixel size (m) | chips | autoencoder, all pixels | predict 0, all | visible mean, all |"
            + (" autoencoder, hidden pixels | visible mean, hidden |" if hidden else ""),
            "|---|---|---|---|---|---|" + ("---|---|" if hidden else "")]
        for h in r["held_out"]:
            lines.append(_error_row(f"{h['name']} (held out)", f"{h['pixel_size_m']:g}", h["reconstruction"], hidden))
        lines.append(_error_row("training chips (sample)", "all", r["reconstruction_on_training_chips"], hidden))
        lines.append("")
    lines += ["## Notes", "",
              "- The terrain stem (`normalized_relief`, `training/stems.py`) is fixed: relief at 1, 2, 4 and 8 px "
              "divided by the RMS relief of the surrounding 17x17 px window (scale-free), and the log10 of that RMS "
              "relief around 10 m. No per-tile statistic: tiles agree once the margin covers its radius.",
              "- The spectral encoder expects every band z-scored over its own raster: other sensors and processing "
              "levels (DN, top-of-atmosphere or surface reflectance) then differ mostly by a per-band affine map, "
              "which the z-score removes. A model with other bands adapts the first convolution "
              "(`encoder_checkpoint.adapt_first_conv`: the mean kernel, repeated and rescaled).",
              "- Deterministic for a given seed and thread count (one thread by default).", ""]
    return "\n".join(lines)
