"""`make demo`: run the bundled landform model on the bundled DEM through qgis_process, then render a preview.

Writes out/demo/landforms.tif (+ .qml style), out/demo/confidence.tif (+ .qml) and out/demo/landforms.png.
Run from anywhere with the project's venv: .venv/bin/python tools/demo.py
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEM = REPO / "resources" / "samples" / "bigtujunga_dem.tif"
MODEL = REPO / "resources" / "models" / "landforms_unet.onnx"
OUT = REPO / "out" / "demo"
ALGORITHM = "deepstrata:runmodel"


def run_algorithm(output: Path, confidence: Path) -> dict[str, Any]:
    """qgis_process --json run deepstrata:runmodel -- KEY=VALUE ...; its parsed JSON report."""
    command = [str(REPO / "tools" / "qgis_process"), "--json", "run", ALGORITHM, "--",
               f"INPUT={DEM}", f"MODEL={MODEL}", f"OUTPUT={output}", f"CONFIDENCE={confidence}"]
    print("$ " + " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"qgis_process failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    start = done.stdout.find("{")
    try:
        return dict(json.loads(done.stdout[start:]))
    except ValueError:
        sys.exit(f"qgis_process printed no JSON report:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    output, confidence, png = OUT / "landforms.tif", OUT / "confidence.tif", OUT / "landforms.png"
    report = run_algorithm(output, confidence)
    for line in report.get("log", {}).get("info", []):
        print("  " + line)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render_preview import render

    render(output, png, title="Landforms from DEM (geomorphon U-Net)", under=DEM)
    print("\nStyled output : " + str(output.relative_to(REPO)) + "  (style " +
          str(output.with_suffix(".qml").relative_to(REPO)) + ")")
    print("Confidence    : " + str(confidence.relative_to(REPO)) + "  (style " +
          str(confidence.with_suffix(".qml").relative_to(REPO)) + ")")
    print("PNG preview   : " + str(png.relative_to(REPO)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
