"""The analyst workflows and the example models (docs/examples/*.model3) through `qgis_process --json run`, on the
bundled samples: exit codes, JSON results, georeferencing, pixel counts, and what the chained stock steps did."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from qgis.core import Qgis
from scipy import ndimage

from qgis_process.test_qgis_process import BINARY, REPO, enabled, qgis_process  # noqa: F401 (a fixture)

gdal.UseExceptions()

SAMPLES = REPO / "resources" / "samples"
DEM = SAMPLES / "bigtujunga_dem.tif"
SCENE = SAMPLES / "LC80200392015216LGN00_B2-B7_sample.tif"
MTL = SAMPLES / "LC80200392015216LGN00_MTL.txt"
EXAMPLES = REPO / "docs" / "examples"
DEM_NODATA = 32767
HOLE = (slice(200, 240), slice(300, 360))  # rows, columns punched out of the DEM copy
CPU = "CPUExecutionProvider"

pytestmark = [pytest.mark.skipif(not BINARY.exists(), reason=f"{BINARY} (QGIS's qgis_process) is not installed"),
              pytest.mark.usefixtures("enabled")]


def run(algorithm: str, **parameters: object) -> dict:
    """qgis_process --json run ALGORITHM -- KEY=VALUE ...; the parsed report (exit code 0 asserted)."""
    done = qgis_process("--json", "run", str(algorithm), "--", *(f"{k}={v}" for k, v in parameters.items()))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.find("{"):])


def read(path: Path) -> tuple[np.ndarray, tuple, str]:
    ds = gdal.Open(str(path))
    return ds.ReadAsArray(), ds.GetGeoTransform(), osr.SpatialReference(ds.GetProjection()).GetAuthorityCode(None)


def same_grid(output: Path, source: Path) -> np.ndarray:
    """The output's pixels, after checking it lies on the source's grid (size, geotransform, EPSG)."""
    pixels, gt, epsg = read(output)
    reference, gt_in, epsg_in = read(source)
    assert pixels.shape[-2:] == reference.shape[-2:]
    assert gt == pytest.approx(gt_in) and epsg == epsg_in and epsg in ("32611", "32616")  # UTM 11N DEM, 16N scene
    return pixels


def features(path: Path) -> list[dict]:
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    return [feature.items() for feature in layer]


def class_counts(report: dict) -> dict[int, int]:
    """CLASS_STATISTICS (a JSON string in the results): pixels per class value."""
    return {row["value"]: row["pixels"] for row in json.loads(report["results"]["CLASS_STATISTICS"])}


@pytest.fixture
def dem(tmp_path) -> Path:
    """A copy of the SRTM sample (QGIS may write .aux.xml beside inputs) with a nodata hole punched in it."""
    ds = gdal.GetDriverByName("GTiff").CreateCopy(str(tmp_path / "dem_with_hole.tif"), gdal.Open(str(DEM)))
    band = ds.GetRasterBand(1)
    z = band.ReadAsArray()
    z[HOLE] = DEM_NODATA
    band.WriteArray(z)
    del band
    ds = None
    return tmp_path / "dem_with_hole.tif"


@pytest.fixture
def scene(tmp_path) -> Path:
    for source in (SCENE, MTL):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path / SCENE.name


# ------------------------------------------------------------------------------------------------ workflows
def test_classify_landforms(dem, tmp_path):
    out, stats = tmp_path / "landforms.tif", tmp_path / "stats.gpkg"
    report = run("deepstrata:classifylandforms", INPUT=dem, OUTPUT=out, CONFIDENCE=tmp_path / "conf.tif",
                 STATISTICS=stats)
    results = report["results"]
    assert results["OUTPUT"] == str(out) and out.exists() and (tmp_path / "conf.tif").exists()
    assert results["PROVIDER"] == CPU
    classes = same_grid(out, dem)
    z = read(dem)[0]
    valid = z != DEM_NODATA
    assert set(np.unique(classes[valid])) <= set(range(1, 11)) and (classes[~valid] == 0).all()
    counts = class_counts(report)
    assert list(counts) == list(range(1, 11))
    assert sum(counts.values()) == int(valid.sum())
    assert counts == {v: int((classes == v).sum()) for v in range(1, 11)}
    assert {row["class"]: row["pixels"] for row in features(stats)} == \
        {row["class"]: row["pixels"] for row in json.loads(results["CLASS_STATISTICS"])}
    assert any("total" in line and "Landforms of" in line for line in report["log"]["info"])


def test_map_geology(scene, tmp_path):
    out = tmp_path / "geology.tif"
    report = run("deepstrata:mapgeology", INPUT=scene, OUTPUT=out, STATISTICS=tmp_path / "stats.csv")
    results = report["results"]
    assert results["OUTPUT"] == str(out) and out.exists() and results["PROVIDER"] == CPU
    classes = same_grid(out, scene)
    valid = (read(scene)[0] != 0).all(axis=0)
    counts = class_counts(report)
    assert sum(counts.values()) == int(valid.sum()) == int((classes > 0).sum())
    assert counts == {v: int((classes == v).sum()) for v in counts}
    names = {row["class"]: row["pixels"] for row in json.loads(results["CLASS_STATISTICS"])}
    assert names["water"] > 500 and names["vegetation"] > names["water"]  # the lake, in a green landscape
    assert any(MTL.name in line for line in report["log"]["info"])  # Level-1 DN rescaled with the MTL


@pytest.mark.parametrize("sample, threshold", [("dem", None), ("scene", 8.0)])  # scene: about 0.6 % flagged
def test_detect_anomalies(request, tmp_path, sample, threshold):
    source = request.getfixturevalue(sample)
    score, mask, polygons = tmp_path / "score.tif", tmp_path / "mask.tif", tmp_path / "patches.gpkg"
    extra = {} if threshold is None else {"THRESHOLD": threshold}
    report = run("deepstrata:detectanomalies", INPUT=source, OUTPUT=score, OUTPUT_MASK=mask, OUTPUT_POLYGONS=polygons,
                 MIN_AREA=1700, **extra)
    results = report["results"]
    assert results["OUTPUT"] == str(score) and results["PROVIDER"] == CPU
    scores, flags = same_grid(score, source), same_grid(mask, source)
    if scores.ndim == 3:  # the terrain model's band 2 is the signed residual
        assert scores.shape[0] == 2 and np.isfinite(scores[1][flags != 255]).all()
        scores = scores[0]
    cut = float(gdal.Open(str(mask)).GetMetadataItem("DEEPSTRATA_THRESHOLD"))
    assert threshold is None or cut == threshold
    valid = flags != 255
    assert results["ANOMALY_PIXELS"] == int((flags == 1).sum()) > 0
    assert ((flags == 1) == (valid & (scores >= np.float32(cut)))).all()
    assert results["ANOMALY_PERCENT"] == pytest.approx(100 * (flags == 1).sum() / valid.sum())
    # patches: 4-connected groups of flagged pixels of at least 1700 m² (two 30 m pixels), with their peak score
    labels, count = ndimage.label(flags == 1)
    sizes = ndimage.sum(flags == 1, labels, range(1, count + 1))
    peaks = ndimage.maximum(scores, labels, range(1, count + 1))
    patches = features(polygons)
    assert results["PATCHES"] == len(patches) == int((sizes >= 2).sum())
    assert sorted(round(p["peak_score"], 3) for p in patches) == sorted(round(float(v), 3)
                                                                       for v in peaks[sizes >= 2])
    assert all(p["area_m2"] >= 1700 for p in patches)


def test_map_geology_on_a_dem_fails_with_the_reason(dem, tmp_path):
    out = tmp_path / "never.tif"
    done = qgis_process("run", "deepstrata:mapgeology", "--", f"INPUT={dem}", f"OUTPUT={out}")
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "'dem_with_hole.tif' looks like a single-band raster (e.g. a DEM)" in message
    assert "needs six multispectral bands" in message and "Classify landforms" in message
    assert not out.exists()


# ------------------------------------------------------------------------------------------- example models
def test_example_models_are_valid_and_up_to_date(tmp_path):
    """The generator reloads and validates what it writes (fromFile, child algorithms, checkParameterValues) and
    exits non-zero on a problem; the committed files are exactly what it writes."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / "make_example_models.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("landforms_filled.model3", "anomaly_patches.model3"):
        stale = f"docs/examples/{name} is stale: run .venv/bin/python tools/make_example_models.py (on QGIS 3.22)"
        if Qgis.QGIS_VERSION_INT < 32300:  # the committed files are QGIS 3.22's, byte for byte
            assert (tmp_path / name).read_text() == (EXAMPLES / name).read_text(), stale
        else:  # QGIS 3.40 writes the same model differently: compare what it means
            assert model_essentials(tmp_path / name) == model_essentials(EXAMPLES / name), stale


DESTINATIONS = {"rasterDestination", "vectorDestination", "sink", "fileDestination", "folderDestination"}


def model_essentials(path: Path) -> dict:
    """A .model3 file without what QGIS writes differently per version (pinned here: 3.22 and 3.40): 3.40 adds
    internal_version, outputGroup and outputOrder, and names the model's own output parameters after the outputs
    (landforms, not classify:LANDFORMS) with their child in metadata. QGIS rebuilds those parameters from the
    children's outputs when it loads a model, so they are compared by everything but name and metadata."""
    def plain(option: ET.Element) -> object:
        kids = list(option)
        return {k.get("name"): plain(k) for k in kids} if kids else (option.get("type"), option.get("value"))

    top = plain(ET.parse(path).getroot())
    assert isinstance(top, dict)
    for key in ("internal_version", "outputGroup", "outputOrder"):
        top.pop(key, None)
    definitions = top.pop("parameterDefinitions")
    top["inputs"] = {k: v for k, v in definitions.items() if v["parameter_type"][1] not in DESTINATIONS}
    top["outputs"] = sorted(repr(sorted((k, w) for k, w in v.items() if k not in ("name", "metadata")))
                            for v in definitions.values() if v["parameter_type"][1] in DESTINATIONS)
    return top


def test_landforms_filled_model_classifies_the_holes_too(dem, tmp_path):
    model = EXAMPLES / "landforms_filled.model3"
    out, stats = tmp_path / "landforms.tif", tmp_path / "stats.csv"
    report = run(model, DEM=dem, DISTANCE=50, **{"classify:Landforms": out, "classify:Landform statistics": stats})
    assert report["results"] == {"classify:Landforms": str(out), "classify:Landform statistics": str(stats)}
    log = "\n".join(report["log"]["info"])
    assert "gdal_fillnodata" in log and "-md 50" in log  # the stock step ran, with the model's DISTANCE
    classes = same_grid(out, dem)
    assert set(np.unique(classes)) <= set(range(1, 11))  # every cell, the filled hole included (0 without the fill)
    rows = features(stats)
    assert [int(r["value"]) for r in rows] == list(range(1, 11))
    assert sum(int(r["pixels"]) for r in rows) == classes.size


def test_anomaly_patches_model_keeps_the_strong_patches(dem, tmp_path):
    model = EXAMPLES / "anomaly_patches.model3"
    score, patches = tmp_path / "score.tif", tmp_path / "strong.gpkg"
    # the terrain model flags few cells of this natural DEM at its threshold (6.5): every patch counts (MIN_AREA 0)
    outputs = {"detect:Anomaly score": score, "keep:Strong anomaly patches": patches}
    report = run(model, RASTER=dem, MIN_AREA=0, MIN_PEAK=8, **outputs)
    assert report["results"] == {k: str(v) for k, v in outputs.items()}
    scores = same_grid(score, dem)[0]  # band 1: the score (band 2: the signed residual)
    kept = features(patches)
    # what the two filters should keep, from the score raster and the threshold the log reports
    line = next(line for line in report["log"]["info"] if line.startswith("Threshold "))
    cut = float(line.split()[1].rstrip(":"))
    labels, count = ndimage.label((scores >= np.float32(cut)) & (read(dem)[0] != DEM_NODATA))
    peaks = ndimage.maximum(scores, labels, range(1, count + 1))
    expected = peaks >= 8
    assert 0 < len(kept) == int(expected.sum()) < count  # some patches kept, some dropped
    assert all(p["peak_score"] >= 8 and p["relief"] in ("depression", "rise") for p in kept)
