"""GRASS GIS ``r.geomorphon``: the independent reference the landform model is judged against.

Runs ``grass --tmp-location <dem> --exec`` (Debian's ``grass-core``): the DEM is imported as it is (its own CRS,
geographic included), and r.geomorphon runs with the search distance in metres (``-m``), flatness in degrees,
skip 0, on the DEM's own grid. Cells r.geomorphon leaves null (the raster's edge, within the search) are 0.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


class GrassMissing(RuntimeError):
    """GRASS is not installed: install Debian's grass-core."""


def available() -> bool:
    return shutil.which("grass") is not None


def geomorphon(dem: str | os.PathLike[str], search_m: float, flat_deg: float = 1.0, skip: int = 0) -> np.ndarray:
    """r.geomorphon's forms (uint8 1..10, 0 where null) of band 1 of `dem`, on its grid."""
    if not available():
        raise GrassMissing("GRASS GIS is not installed (apt-get install grass-core)")
    dem = os.path.abspath(os.fspath(dem))
    with tempfile.TemporaryDirectory(prefix="deepstrata-grass-") as folder:
        out = Path(folder) / "forms.tif"
        script = (f"r.in.gdal input='{dem}' output=dem -o --quiet && g.region raster=dem && "
                  f"r.geomorphon elevation=dem forms=forms search={search_m!r} -m flat={flat_deg!r} "
                  f"skip={skip} --quiet && r.out.gdal input=forms output='{out}' type=Byte nodata=0 -c --quiet")
        env = {**os.environ, "GRASS_MESSAGE_FORMAT": "silent", "HOME": folder}
        done = subprocess.run(["grass", "--tmp-location", dem, "--exec", "bash", "-c", script], cwd=folder,
                              env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"r.geomorphon failed ({done.returncode}): {done.stderr.strip()[-600:]}")
        ds = gdal.Open(str(out))
        forms = ds.GetRasterBand(1).ReadAsArray().astype(np.uint8)
        ds = None
    return forms
