"""python -m training dispatches to each tool's command line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from osgeo import gdal

REPO = Path(__file__).resolve().parents[2]


def training(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=":".join(sys.path))
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)


def test_usage_lists_the_commands() -> None:
    done = training()
    assert done.returncode == 2
    usage = done.stderr.splitlines()[0]
    assert usage.startswith("usage: python -m training {geomorphons,data,tpi,landforms,landforms-finetune,dem-anomaly,"
                            "geology,geology-ratios,ms-anomaly,transfer-curve,fit-anomaly,abu,")
    assert {"segment", "regress"} <= set(usage.split("{", 1)[1].split("}", 1)[0].split(","))
    assert "fit-anomaly (an anomaly model for any raster)" in done.stderr
    assert "segment, regress and anomaly (a model for any raster and labels" in done.stderr


def test_geomorphons_command_writes_landforms(tmp_path: Path) -> None:
    dem = tmp_path / "dem.tif"
    dem.write_bytes((REPO / "tests" / "data" / "bigtujunga" / "bigtujunga_320x240.tif").read_bytes())
    done = training("geomorphons", str(dem), str(tmp_path / "forms.tif"), "--radius", "450")
    assert done.returncode == 0, done.stderr
    ds = gdal.Open(str(tmp_path / "forms.tif"))
    ds.GetGeoTransform()  # GDAL 3.6's GeoTIFF driver reads the .aux.xml (class names) lazily, on calls like this
    band = ds.GetRasterBand(1)
    assert (ds.RasterXSize, ds.RasterYSize) == (320, 240) and band.GetCategoryNames()[9] == "valley"
    assert "label=\"valley\"" in (tmp_path / "forms.qml").read_text()  # styled like the plugin's outputs
