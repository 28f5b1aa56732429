"""Map geology on a real scene of every sensor, as a user runs it: `qgis_process run deepstrata:mapgeology` with
INPUT and OUTPUT only, on copies of the scenes in ../shared/data (nothing is written beside them). Writes
docs/images/geology_<scene>.png (true colour | geology classes) and prints the table of docs/workflows/geology.md.

    .venv/bin/python tools/geology_gallery.py [--out docs/images]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from osgeo import gdal
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SCENES = (  # key, folder, file, what it is
    ("landsat5_tm", "landcover/landsat5_amazon", "LT5_B1-B7_stack.vrt", "Landsat 5 TM, Rondonia 1988, 8-bit DN + MTL"),
    ("landsat7_etm", "multispectral/landsat7_etm_northcarolina", "lsat7_2000_B1-B5-B7_stack.vrt",
     "Landsat 7 ETM+, Raleigh 2000, DN, no MTL"),
    ("landsat8_l1", "multispectral/landsat8_florida", "l8_B1-B7_stack.vrt", "Landsat 8 OLI Level-1 DN + MTL"),
    ("landsat8_sr", "multispectral/landsat8_sr_amazon", "LC08_232066_20190727.tif",
     "Landsat 8 OLI surface reflectance x10000"),
    ("sentinel2_l2a", "landcover/landsat5_amazon", "sen2_L2A_12band_epsg4326.tif", "Sentinel-2 L2A, 12 bands"),
)


def _stretch(band: np.ndarray) -> np.ndarray:
    valid = np.isfinite(band)
    lo, hi = np.percentile(band[valid], [2, 98]) if valid.any() else (0, 1)
    return (np.clip((band - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)


def _true_colour(path: Path, bands: list[int]) -> np.ndarray:
    ds = gdal.Open(os.fspath(path))
    rgb = []
    for b in bands:
        band = ds.GetRasterBand(b)
        values = band.ReadAsArray().astype(np.float64)
        nodata = band.GetNoDataValue()
        values[(values == nodata) | (values <= 0) | ~np.isfinite(values)] = np.nan
        rgb.append(values)
    picture = np.dstack([_stretch(b) for b in rgb])
    picture[np.isnan(np.dstack(rgb)).any(axis=2)] = 0
    return picture


def _classes(path: Path) -> tuple[np.ndarray, dict[int, tuple[int, int, int, int]], dict[int, str]]:
    ds = gdal.Open(os.fspath(path))
    band = ds.GetRasterBand(1)
    table = band.GetColorTable()
    names = band.GetCategoryNames() or []
    colours = {i: table.GetColorEntry(i) for i in range(table.GetCount())} if table else {}
    return band.ReadAsArray(), colours, {i: n for i, n in enumerate(names) if n}


def _render(rgb: np.ndarray, classes: np.ndarray, colours: dict, names: dict, title: str, target: Path) -> None:
    h, w = classes.shape
    painted = np.zeros((h, w, 3), dtype=np.uint8)
    for value, colour in colours.items():
        painted[classes == value] = colour[:3]
    scale = max(1, 360 // max(h, w))
    left = Image.fromarray(rgb).resize((w * scale, h * scale), Image.NEAREST)
    right = Image.fromarray(painted).resize((w * scale, h * scale), Image.NEAREST)
    present = [v for v in sorted(names) if (classes == v).any()]
    legend_h = 18 * len(present) + 30
    canvas = Image.new("RGB", (2 * w * scale + 30 + 230, max(h * scale, legend_h) + 30), "white")
    canvas.paste(left, (10, 25))
    canvas.paste(right, (20 + w * scale, 25))
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 6), title, fill="black")
    x0 = 30 + 2 * w * scale
    for i, value in enumerate(present):
        share = 100 * float((classes == value).sum()) / max(1, int((classes > 0).sum()))
        draw.rectangle((x0, 30 + 18 * i, x0 + 12, 42 + 18 * i), fill=tuple(colours[value][:3]), outline="black")
        draw.text((x0 + 18, 30 + 18 * i), f"{names[value]} {share:.1f} %", fill="black")
    canvas.save(target)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.fspath(REPO / "docs" / "images"))
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows = []
    for key, folder, name, what in SCENES:
        source = SHARED / folder
        if not (source / name).exists():
            print(f"skipped {key}: {source / name} not found", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(prefix="deepstrata gallery ") as tmp:  # a path with a space
            copy = Path(tmp) / "scene"
            shutil.copytree(source, copy)
            out = Path(tmp) / "geology.tif"
            done = subprocess.run([os.fspath(REPO / "tools" / "qgis_process"), "run", "deepstrata:mapgeology", "--",
                                   f"INPUT={copy / name}", f"OUTPUT={out}"], capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
                return 1
            said = next((line.strip() for line in done.stdout.splitlines() if re.search(r"feed the model", line)),
                        "")
            bands = [int(b) for b in re.findall(r"Bands? ([\d, ]+) of", said)[0].replace(" ", "").split(",")]
            classes, colours, names = _classes(out)
            _render(_true_colour(copy / name, [bands[2], bands[1], bands[0]]), classes, colours, names, what,
                    Path(args.out) / f"geology_{key}.png")
            shares = {names[v]: 100 * float((classes == v).mean() / max((classes > 0).mean(), 1e-9))
                      for v in names if (classes == v).any()}
            top = ", ".join(f"{n} {s:.0f} %" for n, s in sorted(shares.items(), key=lambda kv: -kv[1])[:4])
            product = said.split(";")[1].split(":")[0].strip() if ";" in said else said
            rows.append(f"| {what} | {product} | {top} | ![{key}](../images/geology_{key}.png) |")
    print("| scene | recognised as (the log) | largest classes | map |\n|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
