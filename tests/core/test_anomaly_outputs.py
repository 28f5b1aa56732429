"""Anomaly score raster -> mask (Byte 0/1, nodata 255, styled) and patches with their area and peak/mean score."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr

from deepstrata.inference import CancelledError, InputError
from deepstrata.inference.workflows import anomaly_outputs
from deepstrata.inference.workflows.anomaly_outputs import anomaly_polygons, write_mask
from ds_testing import rasters

NODATA = -9999.0
THRESHOLD = 3.0


@pytest.fixture
def score(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """300 x 700 px of scores in [0, 1) with known patches >= 3, a nodata block and one pixel exactly at 3."""
    rng = np.random.default_rng(11)
    array = rng.random((300, 700)).astype(np.float32)
    array[10:20, 10:30] += 5 + rng.random((10, 20)).astype(np.float32)  # 200 px
    array[100:103, 400:402] += 4  # 6 px
    ring = np.zeros((300, 700), bool)
    ring[250:262, 600:612] = True
    ring[253:259, 603:609] = False  # a 12 x 12 square with a 6 x 6 hole: 108 px
    array[ring] += 3.5
    array[150:160, 500:520] = NODATA
    array[280, 20] = THRESHOLD  # exactly at the threshold: flagged
    return rasters.write_raster(tmp_path / "score.tif", array, nodata=NODATA), array


def test_mask_values_nodata_fraction_and_style(tmp_path: Path, score: tuple[Path, np.ndarray],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anomaly_outputs, "_CHUNK", 256)  # several column chunks per block row
    path, array = score
    stats = write_mask(str(path), THRESHOLD, str(tmp_path / "mask.tif"))
    valid = array != NODATA
    expected = np.where(valid, (array >= THRESHOLD).astype(np.uint8), 255)
    ds = gdal.Open(str(tmp_path / "mask.tif"))
    band = ds.GetRasterBand(1)
    np.testing.assert_array_equal(band.ReadAsArray(), expected)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
    assert ds.GetGeoTransform() == rasters.GEOTRANSFORM and ds.GetProjection() == gdal.Open(str(path)).GetProjection()
    assert (stats.flagged, stats.valid) == (200 + 6 + 108 + 1, int(valid.sum()))
    assert stats.fraction == pytest.approx(stats.flagged / stats.valid)
    table = band.GetColorTable()
    assert table.GetColorEntry(1)[:3] == (0xd7, 0x19, 0x1c)
    assert band.GetMetadataItem("CLASS_1") == "anomaly" and band.GetMetadataItem("CLASS_0") == "normal"
    entries = ET.parse(stats.style_path).getroot().iter("paletteEntry")
    assert [(e.get("value"), e.get("label")) for e in entries] == [("0", "normal"), ("1", "anomaly")]
    assert stats.style_path == str(tmp_path / "mask.qml")


def test_mask_cancel_leaves_nothing(tmp_path: Path, score: tuple[Path, np.ndarray]) -> None:
    before = sorted(os.listdir(tmp_path))
    calls = [0]

    def cancel() -> bool:
        calls[0] += 1
        return calls[0] > 1  # after the first block row

    with pytest.raises(CancelledError):
        write_mask(str(score[0]), THRESHOLD, str(tmp_path / "mask.tif"), is_cancelled=cancel)
    assert sorted(os.listdir(tmp_path)) == before


def test_patches_with_peak_and_mean_scores(tmp_path: Path, score: tuple[Path, np.ndarray]) -> None:
    path, array = score
    write_mask(str(path), THRESHOLD, str(tmp_path / "mask.tif"))
    count = anomaly_polygons(str(tmp_path / "mask.tif"), str(path), str(tmp_path / "patches.gpkg"))
    assert count == 4
    ds = ogr.Open(str(tmp_path / "patches.gpkg"))
    layer = ds.GetLayer(0)
    assert layer.GetName() == "anomalies"
    patches = sorted(([f["pixels"], f["area_m2"], f["peak_score"], f["mean_score"]] for f in layer),
                     key=lambda p: -p[0])
    ds = None
    ring = np.zeros(array.shape, bool)
    ring[250:262, 600:612] = True
    ring[253:259, 603:609] = False
    expected = [array[10:20, 10:30].ravel(), array[ring], array[100:103, 400:402].ravel(), array[280:281, 20]]
    for patch, values in zip(patches, expected):
        assert patch[0] == values.size and patch[1] == pytest.approx(values.size * 100.0)
        assert patch[2] == pytest.approx(float(values.max()))
        assert patch[3] == pytest.approx(float(values.mean(dtype=np.float64)), rel=1e-9)


def test_min_area_drops_small_patches(tmp_path: Path, score: tuple[Path, np.ndarray]) -> None:
    path = score[0]
    write_mask(str(path), THRESHOLD, str(tmp_path / "mask.tif"))
    mask = str(tmp_path / "mask.tif")
    assert anomaly_polygons(mask, str(path), str(tmp_path / "a.shp"), min_area_m2=600) == 3  # 600 m2 kept
    assert anomaly_polygons(mask, str(path), str(tmp_path / "b.gpkg"), min_area_m2=601) == 2
    assert anomaly_polygons(mask, str(path), str(tmp_path / "c.gpkg"), min_area_m2=1e9) == 0
    with pytest.raises(InputError, match="minimum patch area"):
        anomaly_polygons(mask, str(path), str(tmp_path / "d.gpkg"), min_area_m2=-1)


def test_the_mask_must_be_on_the_score_grid(tmp_path: Path, score: tuple[Path, np.ndarray]) -> None:
    other = rasters.write_raster(tmp_path / "other.tif", np.zeros((300, 699), np.uint8), nodata=255)
    with pytest.raises(InputError, match="not on the same grid"):
        anomaly_polygons(str(other), str(score[0]), str(tmp_path / "p.gpkg"))
    assert not (tmp_path / "p.gpkg").exists()


def test_patch_cancel_leaves_nothing(tmp_path: Path, score: tuple[Path, np.ndarray]) -> None:
    write_mask(str(score[0]), THRESHOLD, str(tmp_path / "mask.tif"))
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(CancelledError):
        anomaly_polygons(str(tmp_path / "mask.tif"), str(score[0]), str(tmp_path / "p.gpkg"),
                         is_cancelled=lambda: True)
    assert sorted(os.listdir(tmp_path)) == before


def test_a_patch_exactly_at_the_minimum_area_is_kept_on_large_utm_coordinates(tmp_path: Path) -> None:
    """Four 30 m pixels are 3600 m2, though the shoelace sum on coordinates in the millions gives 3599.99999..."""
    array = np.zeros((200, 300), np.float32)
    for r in range(5, 195, 6):  # many 4-pixel shapes (squares, bars, Ls, Ss) across the grid
        for c in range(5, 295, 6):
            shape = (r // 6 + c // 6) % 5
            cells = {0: [(0, 0), (0, 1), (1, 0), (1, 1)], 1: [(0, 0), (0, 1), (0, 2), (0, 3)],
                     2: [(0, 0), (1, 0), (2, 0), (2, 1)], 3: [(0, 1), (0, 2), (1, 0), (1, 1)],  # an S
                     4: [(0, 0), (1, 0), (1, 1), (2, 1)]}[shape]
            for dr, dc in cells:
                array[r + dr, c + dc] = 9.0
    path = rasters.write_raster(tmp_path / "s.tif", array, epsg=32611,  # the SRTM sample's grid origin
                                geotransform=(385313.6554542635, 30.0, 0.0, 3804917.8276283755, 0.0, -30.0))
    write_mask(str(path), THRESHOLD, str(tmp_path / "m.tif"))
    patches = 32 * 49
    assert anomaly_polygons(str(tmp_path / "m.tif"), str(path), str(tmp_path / "p.gpkg"), min_area_m2=3600) == patches
    assert anomaly_polygons(str(tmp_path / "m.tif"), str(path), str(tmp_path / "q.gpkg"), min_area_m2=3601) == 0
