"""Fine-tuning the landform network on an analyst's own map (polygons): an expert who calls terrain flat up to 3
degrees, not r.geomorphon's 1, labels part of an unseen lidar DEM; the fine-tuned model agrees better with that
expert on the part of the DEM that was never labelled."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from training.data.errors import DataError
from training.geomorphons import CLASSES, geomorphons
from training.landform_finetune import START, finetune, load_network, main
from training.workflow import engine_output

REPO = Path(__file__).resolve().parents[2]
LIDAR = REPO / "training" / "datasets" / "minnesota_lidar" / "dem.tif"  # 1 m, 400 x 400, never trained on
NAMES = {value: name for value, name, _ in CLASSES}
LABELLED_COLUMNS = 240  # the expert mapped the western 60 %


def _expert_map(folder: Path) -> tuple[Path, np.ndarray]:
    """The expert's forms (geomorphons with a 3 degree flatness, 10 m search) as polygons over the west, and the
    whole map as an array for scoring."""
    ds = gdal.Open(str(LIDAR))
    z = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
    forms = geomorphons(z, 1.0, 10.0, flat_deg=3.0)
    mem = gdal.GetDriverByName("MEM").Create("", z.shape[1], z.shape[0], 1, gdal.GDT_Byte)
    mem.SetGeoTransform(ds.GetGeoTransform())
    mem.SetProjection(ds.GetProjection())
    west = forms.copy()
    west[:, LABELLED_COLUMNS:] = 0
    mem.GetRasterBand(1).WriteArray(west)
    mem.GetRasterBand(1).SetNoDataValue(0)
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    path = folder / "expert map.gpkg"
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = out.CreateLayer("landforms", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("form", ogr.OFTString))
    band = mem.GetRasterBand(1)
    gdal.Polygonize(band, band.GetMaskBand(), layer, 0)
    layer.StartTransaction()
    for feature in layer:
        feature.SetField("form", NAMES[feature.GetField("value")])
        layer.SetFeature(feature)
    layer.CommitTransaction()
    out = mem = ds = None
    return path, forms


def test_fine_tuning_on_a_labelled_area_improves_agreement_on_an_unlabelled_one(tmp_path):
    labels, expert = _expert_map(tmp_path)
    tuned = finetune(str(LIDAR), str(labels), "form", None, load_network(REPO / START), tmp_path)
    assert tuned.search_m == pytest.approx(10.0) and tuned.held_out > 5000
    assert tuned.after > tuned.before + 0.05  # held-out blocks of the labelled west
    east = np.zeros(expert.shape, bool)
    east[:, LABELLED_COLUMNS + 10:] = True  # never labelled (nor within a search distance of the labels)
    shipped, _ = engine_output(REPO / START, LIDAR)
    mine, _ = engine_output(tmp_path / "tuned.onnx", LIDAR)
    before, after = (shipped[east] == expert[east]).mean(), (mine[east] == expert[east]).mean()
    assert after > before + 0.05 and after > 0.9, (before, after)


def test_the_command_writes_the_model_and_refuses_classes_that_are_not_forms(tmp_path, capsys):
    labels, _ = _expert_map(tmp_path)
    out = tmp_path / "mine.onnx"
    assert main(["--dem", str(LIDAR), "--labels", str(labels), "--field", "form", "--output", str(out),
                 "--epochs", "30"]) == 0
    assert out.exists() and "agreement_after" in capsys.readouterr().out
    network = load_network(out)  # a fine-tuned model can be fine-tuned again
    assert network.lines.max_cells == 24
    ds = ogr.Open(str(labels), 1)
    layer = ds.GetLayer(0)
    feature = layer.GetNextFeature()
    feature.SetField("form", "plateau")
    layer.SetFeature(feature)
    ds = None
    with pytest.raises(DataError, match="'plateau' .* is not in the class mapping .* Fine-tuning keeps the ten geomorphon forms"):
        finetune(str(LIDAR), str(labels), "form", None, network, tmp_path)
    with pytest.raises(DataError, match="is not a landform network"):
        load_network(REPO / "resources" / "models" / "geology_oli.onnx")
