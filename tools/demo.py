"""`make demo`: the three workflows on the bundled samples through qgis_process, then PNG previews.

Classify landforms on the Big Tujunga SRTM DEM (with confidence and class statistics), Map geology on the Landsat 8
sample, Detect anomalies on both (score, mask and patches). Everything lands in out/demo/: the styled GeoTIFFs
(.qml beside each), the tables and polygons, and landforms.png, geology.png, anomalies_dem.png,
anomalies_landsat.png. The samples are copied to out/demo/inputs first (QGIS may write .aux.xml beside inputs).
Run from anywhere with the project's venv: .venv/bin/python tools/demo.py
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "resources" / "samples"
OUT = REPO / "out" / "demo"
INPUTS = OUT / "inputs"
DEM = INPUTS / "bigtujunga_dem.tif"
SCENE = INPUTS / "LC80200392015216LGN00_B2-B7_sample.tif"
MTL = INPUTS / "LC80200392015216LGN00_MTL.txt"


def qgis_process(algorithm: str, **parameters: Path | str) -> dict[str, Any]:
    """qgis_process --json run deepstrata:ALGORITHM -- KEY=VALUE ...; its parsed JSON report."""
    command = [str(REPO / "tools" / "qgis_process"), "--json", "run", f"deepstrata:{algorithm}", "--",
               *(f"{key}={value}" for key, value in parameters.items())]
    print("\n$ " + " ".join(command).replace(f"{REPO}/", ""), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"qgis_process failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    try:
        report = dict(json.loads(done.stdout[done.stdout.find("{"):]))
    except ValueError:
        sys.exit(f"qgis_process printed no JSON report:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    for line in report.get("log", {}).get("info", []):  # the class statistics table, the threshold, the patches
        if not line.startswith(("Model:", "Execution provider:")):
            print("  " + line.replace("\n", "\n  "))
    return report


def anomalies(name: str, source: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    paths = {"OUTPUT": OUT / f"{name}.tif", "OUTPUT_MASK": OUT / f"{name}_mask.tif",
             "OUTPUT_POLYGONS": OUT / f"{name}.gpkg"}
    return qgis_process("detectanomalies", INPUT=source, **paths)["results"], paths


def summary(paths: dict[str, Path], results: dict[str, Any]) -> list[str]:
    """Legend notes under an anomaly preview: the threshold (the model card's), pixels flagged, patches."""
    from osgeo import gdal

    threshold = gdal.Open(str(paths["OUTPUT_MASK"])).GetMetadataItem("DEEPSTRATA_THRESHOLD")
    score = gdal.Open(str(paths["OUTPUT"]))  # held: a band outliving its dataset crashes GDAL
    highest = score.GetRasterBand(1).ComputeRasterMinMax(False)[1]
    return [f"threshold {threshold} (model card)", f"highest score {highest:.1f}",
            f"{results['ANOMALY_PIXELS']:,} pixels flagged ({results['ANOMALY_PERCENT']:.2f} %)",
            f"{results['PATCHES']:,} patches outlined"]


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def main() -> int:
    INPUTS.mkdir(parents=True, exist_ok=True)
    for sample in (DEM, SCENE, MTL):
        shutil.copy(SAMPLES / sample.name, sample)
    landforms, geology = OUT / "landforms.tif", OUT / "geology.tif"
    qgis_process("classifylandforms", INPUT=DEM, OUTPUT=landforms, CONFIDENCE=OUT / "landforms_confidence.tif",
                 STATISTICS=OUT / "landforms_statistics.csv")
    qgis_process("mapgeology", INPUT=SCENE, OUTPUT=geology, CONFIDENCE=OUT / "geology_confidence.tif",
                 STATISTICS=OUT / "geology_statistics.csv")
    dem_results, dem_paths = anomalies("anomalies_dem", DEM)
    scene_results, scene_paths = anomalies("anomalies_landsat", SCENE)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render_preview import render

    dem_hillshade, scene_rgb = "hillshade of the DEM", "true colour (B4, B3, B2)"
    pngs = [
        render(landforms, OUT / "landforms.png", title="Landforms of the Big Tujunga DEM (geomorphon U-Net)",
               under=DEM),
        render(geology, OUT / "geology.png", width=384, title="Surface materials, Landsat 8 (2015-08-04)",
               under=SCENE, opacity=0.75, beside=(scene_rgb, "classes over it")),
        render(dem_paths["OUTPUT"], OUT / "anomalies_dem.png", title="Terrain anomaly score, Big Tujunga DEM",
               under=DEM, opacity=1.0, outline=dem_paths["OUTPUT_POLYGONS"], beside=(dem_hillshade, "score"),
               notes=summary(dem_paths, dem_results)),
        render(scene_paths["OUTPUT"], OUT / "anomalies_landsat.png", width=384,
               title="Spectral anomaly score, Landsat 8 sample", under=SCENE, opacity=1.0,
               outline=scene_paths["OUTPUT_POLYGONS"], beside=(scene_rgb, "score"),
               notes=summary(scene_paths, scene_results)),
    ]
    print("\nStyled outputs (open in QGIS; the .qml beside each is its style):")
    for path in (landforms, OUT / "landforms_confidence.tif", geology, OUT / "geology_confidence.tif",
                 dem_paths["OUTPUT"], dem_paths["OUTPUT_MASK"], scene_paths["OUTPUT"], scene_paths["OUTPUT_MASK"]):
        print(f"  {relative(path):42} style {relative(path.with_suffix('.qml'))}")
    print("Tables and polygons:")
    for path in (OUT / "landforms_statistics.csv", OUT / "geology_statistics.csv", dem_paths["OUTPUT_POLYGONS"],
                 scene_paths["OUTPUT_POLYGONS"]):
        print(f"  {relative(path)}")
    print("PNG previews:")
    for png in pngs:
        print(f"  {relative(png)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
