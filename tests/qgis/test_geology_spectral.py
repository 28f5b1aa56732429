"""Map geology's optional spectral outputs through processing.run on the bundled Landsat 8 sample: the index layers
(5 Float32 bands on the input's grid, nodata where the input is) and the spectral units (k classes, a colour table,
a legend), loaded into the project styled."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProject

from qgis_support import RecordingFeedback

gdal.UseExceptions()

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
SCENE = SAMPLES / "LC80200392015216LGN00_B2-B7_sample.tif"
MTL = SAMPLES / "LC80200392015216LGN00_MTL.txt"


@pytest.fixture
def holed_scene(tmp_path) -> Path:
    """The Landsat 8 sample with its MTL, rows 10-19 set to the nodata value 0 in band 3 (red)."""
    path = tmp_path / SCENE.name
    shutil.copy(SCENE, path)
    shutil.copy(MTL, tmp_path / MTL.name)
    ds = gdal.Open(str(path), gdal.GA_Update)
    band = ds.GetRasterBand(3)
    values = band.ReadAsArray()
    values[10:20] = 0
    band.WriteArray(values)
    ds = None
    return path


def test_index_layers_and_spectral_units(ds_provider, holed_scene, tmp_path):
    import processing

    feedback = RecordingFeedback()
    paths = {name: tmp_path / f"{name.lower()}.tif" for name in ("OUTPUT", "INDICES", "UNITS")}
    result = processing.run("deepstrata:mapgeology", {"INPUT": str(holed_scene), **{k: str(v) for k, v in
                                                                                     paths.items()}}, feedback=feedback)
    assert all(p.is_file() for p in paths.values())
    assert result["INDICES"] == str(paths["INDICES"]) and result["UNITS"] == str(paths["UNITS"])
    src = gdal.Open(str(holed_scene))
    hole = np.zeros((src.RasterYSize, src.RasterXSize), bool)
    hole[10:20] = True

    ds = gdal.Open(str(paths["INDICES"]))
    assert ds.RasterCount == 5
    assert all(ds.GetRasterBand(i).DataType == gdal.GDT_Float32 for i in range(1, 6))
    assert ds.GetGeoTransform() == src.GetGeoTransform() and ds.GetProjection() == src.GetProjection()
    assert [ds.GetRasterBand(i).GetDescription().split(" =")[0] for i in range(1, 6)] == \
        ["ferric iron", "ferrous iron", "hydroxyl / clay", "NDVI", "MNDWI"]
    assert "(B4 / B2)" in ds.GetRasterBand(1).GetDescription()  # the OLI bands, from the preset
    values = ds.ReadAsArray()
    nodata = np.float32(ds.GetRasterBand(1).GetNoDataValue())
    assert (values[:, hole] == nodata).all()
    inside = values[:, ~hole]
    assert (inside >= 0).all() and (inside <= 1).all() and inside.std(axis=1).min() > 0.05

    units = gdal.Open(str(paths["UNITS"]))
    band = units.GetRasterBand(1)
    k = int(units.GetMetadataItem("DEEPSTRATA_UNITS_K"))
    labels = band.ReadAsArray()
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert 3 <= k <= 12 and sorted(np.unique(labels[~hole])) == list(range(1, k + 1))
    assert (labels[hole] == 0).all()
    assert band.GetColorTable() is not None and band.GetColorTable().GetCount() >= k + 1
    assert units.GetGeoTransform() == src.GetGeoTransform()
    legend = json.loads(result["UNITS_LEGEND"])
    assert [u["unit"] for u in legend] == list(range(1, k + 1))
    assert sum(u["pixels"] for u in legend) == int((~hole).sum())
    assert all(u["geology"] for u in legend)  # the dominant geology class of each unit
    assert any("chosen by the highest mean silhouette" in line and f"k = {k}" in line for line in feedback.infos)


def test_spectral_outputs_load_styled_and_k_can_be_given(ds_provider, holed_scene, qgis_new_project, tmp_path):
    import processing

    processing.runAndLoadResults("deepstrata:mapgeology", {
        "INPUT": str(holed_scene), "OUTPUT": str(tmp_path / "g.tif"), "INDICES": str(tmp_path / "i.tif"),
        "UNITS": str(tmp_path / "u.tif"), "UNITS_K": 4})
    layers = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
    stem = holed_scene.stem
    assert f"Geology - {stem}" in [g.name() for g in QgsProject.instance().layerTreeRoot().findGroups()]
    composite = layers["Geology index layers"].renderer()
    assert composite.type() == "multibandcolor"
    assert (composite.redBand(), composite.greenBand(), composite.blueBand()) == (1, 2, 3)
    units = layers["Spectral units"].renderer()
    assert units.type() == "paletted" and [c.value for c in units.classes()] == [1, 2, 3, 4]
    labels = [c.label for c in units.classes()]
    assert all(label.startswith(f"unit {i} (") for i, label in enumerate(labels, start=1)), labels


SHARED_L7 = Path(__file__).resolve().parents[3] / "shared" / "data" / "multispectral" / "landsat7_etm_northcarolina"


@pytest.mark.skipif(not SHARED_L7.is_dir(), reason=f"the shared data folder is not at {SHARED_L7}")
def test_landsat7_bands_and_a_cloud_mask(ds_provider, tmp_path):
    """The real Landsat 7 ETM+ stack with an SCL-coded cloud mask: the index bands are named on ETM+ bands, and
    the masked pixels are nodata in both spectral outputs."""
    import processing

    for name in [f"lsat7_2000_{b}0.tif" for b in (1, 2, 3, 4, 5, 7)] + ["lsat7_2000_B1-B5-B7_stack.vrt"]:
        shutil.copy(SHARED_L7 / name, tmp_path / name)
    scene = tmp_path / "lsat7_2000_B1-B5-B7_stack.vrt"
    src = gdal.Open(str(scene))
    scl = np.full((src.RasterYSize, src.RasterXSize), 4, np.uint8)
    scl[100:200, 150:300] = 9  # cloud, high probability
    mask = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "scl.tif"), src.RasterXSize, src.RasterYSize, 1,
                                                gdal.GDT_Byte)
    mask.SetGeoTransform(src.GetGeoTransform())
    mask.SetProjection(src.GetProjection())
    mask.GetRasterBand(1).WriteArray(scl)
    mask = None
    result = processing.run("deepstrata:mapgeology", {
        "INPUT": str(scene), "OUTPUT": str(tmp_path / "g.tif"), "QA_MASK": str(tmp_path / "scl.tif"),
        "INDICES": str(tmp_path / "i.tif"), "UNITS": str(tmp_path / "u.tif"), "UNITS_K": 5})
    indices = gdal.Open(result["INDICES"])
    assert "(B3 / B1)" in indices.GetRasterBand(1).GetDescription()
    assert "(B5 / B7)" in indices.GetRasterBand(3).GetDescription()
    values = indices.ReadAsArray()
    assert (values[:, scl == 9] == np.float32(indices.GetRasterBand(1).GetNoDataValue())).all()
    labels = gdal.Open(result["UNITS"]).ReadAsArray()
    assert (labels[scl == 9] == 0).all() and set(np.unique(labels[scl == 4])) - {0} == {1, 2, 3, 4, 5}
