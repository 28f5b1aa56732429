"""Map geology and Detect anomalies with INPUT and OUTPUT only on real Landsat 7 ETM+ and Sentinel-2 stacks of
../shared/data (copied: QGIS may write .aux.xml beside what it opens), the log naming the sensor and product; and
the Landsat 8 scene's BQA clouds becoming nodata in the geology map."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from qgis_support import RecordingFeedback, read

gdal.UseExceptions()

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
L7 = SHARED / "multispectral" / "landsat7_etm_northcarolina"
L8 = SHARED / "multispectral" / "landsat8_florida"
S2_L2A = SHARED / "landcover" / "landsat5_amazon" / "sen2_L2A_12band_epsg4326.tif"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared data folder is not at {SHARED}")


def run(alg: str, parameters: dict, feedback=None) -> dict:
    import processing

    return processing.run(f"deepstrata:{alg}", parameters, feedback=feedback)


def _copy(folder: Path, names: list[str], into: Path) -> None:
    for name in names:
        shutil.copy(folder / name, into / name)


@pytest.fixture
def landsat7(tmp_path) -> Path:
    _copy(L7, [f"lsat7_2000_{b}0.tif" for b in (1, 2, 3, 4, 5, 7)] + ["lsat7_2000_B1-B5-B7_stack.vrt"], tmp_path)
    return tmp_path / "lsat7_2000_B1-B5-B7_stack.vrt"


@pytest.fixture
def sentinel2(tmp_path) -> Path:
    shutil.copy(S2_L2A, tmp_path / S2_L2A.name)
    return tmp_path / S2_L2A.name


@pytest.mark.parametrize("which,said", [("landsat7", "Landsat 7 ETM+ Level-1 DN, from the file name"),
                                        ("sentinel2", "Sentinel-2 MSI L2A, from the file name")])
def test_geology_and_anomalies_with_input_and_output_only(ds_provider, request, tmp_path, which, said):
    scene = request.getfixturevalue(which)
    feedback = RecordingFeedback()
    result = run("mapgeology", {"INPUT": str(scene), "OUTPUT": str(tmp_path / "geology.tif")}, feedback)
    classes, _, _, nodata = read(result["OUTPUT"])
    valid = classes[0] != nodata[0]
    assert valid.mean() > 0.5 and len(np.unique(classes[0][valid])) >= 2
    assert any(said in line for line in feedback.infos), feedback.infos
    feedback = RecordingFeedback()
    result = run("detectanomalies", {"INPUT": str(scene), "OUTPUT": str(tmp_path / "score.tif")}, feedback)
    score, _, _, score_nodata = read(result["OUTPUT"])
    assert ((score[0] != score_nodata[0]) & np.isfinite(score[0])).mean() > 0.5
    assert any(said in line for line in feedback.infos), feedback.infos
    assert any("anomaly_multispectral" in line for line in feedback.infos)


def test_the_bqa_beside_the_landsat8_scene_masks_its_clouds(ds_provider, tmp_path):
    _copy(L8, [f"l8_B{b}.tif" for b in range(1, 8)] + ["l8_B1-B7_stack.vrt", "l8_MTL.txt", "l8_BQA.tif"], tmp_path)
    feedback = RecordingFeedback()
    result = run("mapgeology", {"INPUT": str(tmp_path / "l8_B1-B7_stack.vrt"), "OUTPUT": str(tmp_path / "g.tif")},
                 feedback)
    classes, _, _, nodata = read(result["OUTPUT"])
    bqa = gdal.Open(str(tmp_path / "l8_BQA.tif")).ReadAsArray().astype(np.int64)
    clouds = ((bqa >> 14) & 3) == 3
    assert clouds.any() and (classes[0][clouds] == nodata[0]).all()
    assert (classes[0][~clouds & (bqa & 1 == 0) & (((bqa >> 12) & 3) != 3)] != nodata[0]).all()
    assert any("Landsat 8 OLI Level-1 DN, from the MTL l8_MTL.txt" in line for line in feedback.infos)
    assert any(line.startswith("Cloud mask: ") for line in feedback.infos), feedback.infos


def test_a_given_scl_mask_makes_its_clouds_nodata(ds_provider, landsat7, tmp_path):
    """The QA_MASK parameter: an SCL-coded raster on the scene's grid (built here) with a cloud block and a shadow."""
    ds = gdal.Open(str(landsat7))
    scl = np.full((ds.RasterYSize, ds.RasterXSize), 4, np.uint8)
    scl[100:200, 150:300] = 9
    scl[250:260, 50:60] = 3
    out = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "given_SCL.tif"), ds.RasterXSize, ds.RasterYSize, 1,
                                               gdal.GDT_Byte)
    out.SetGeoTransform(ds.GetGeoTransform())
    out.SetProjection(ds.GetProjection())
    out.GetRasterBand(1).WriteArray(scl)
    out = None
    feedback = RecordingFeedback()
    result = run("mapgeology", {"INPUT": str(landsat7), "OUTPUT": str(tmp_path / "g.tif"),
                                "QA_MASK": str(tmp_path / "given_SCL.tif")}, feedback)
    classes, _, _, nodata = read(result["OUTPUT"])
    assert (classes[0][scl != 4] == nodata[0]).all()
    assert any("Sentinel-2 SCL" in line and "(given)" in line for line in feedback.infos), feedback.infos
