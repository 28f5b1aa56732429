"""segment / regress inputs: every trap is counted and handled or refused with the fix (no training here)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from custom_fixtures import UTM, named_raster, stripe_polygons, stripes
from data_fixtures import pixel_square_lonlat, pixel_square_utm, write_geojson, write_raster
from training.custom import cli
from training.custom.cv import check_fold_classes, make_folds
from training.custom.defaults import Plan
from training.custom.findings import Findings, Refused
from training.custom.folds import block_pixels, cut_chips
from training.custom.inputs import read_scenes
from training.custom.targets import LabelOptions, build_dataset


def load(tmp: Path, labels: list[Path], images: list[Path] | None = None, task: str = "segmentation",
         **options) -> tuple:
    findings = Findings()
    scenes = read_scenes([str(p) for p in images or [named_raster(tmp / "img.tif", stripes())]], None, tmp, findings)
    opts = LabelOptions(**{"field": "class", **options})
    return build_dataset(task, scenes, [str(p) for p in labels], opts, findings), findings


def test_null_and_empty_class_values_are_dropped_and_a_lost_unit_named(tmp_path: Path) -> None:
    rings = [pixel_square_utm(0, 0, 16, 48), pixel_square_utm(16, 0, 32, 48), pixel_square_utm(32, 0, 40, 48),
             pixel_square_utm(40, 0, 48, 48), pixel_square_utm(32, 40, 48, 48)]
    path = tmp_path / "map.geojson"
    write_geojson(path, rings, ["a", "b", None, None, ""], epsg=UTM)
    doc = json.loads(path.read_text())  # a unit field: the NULL features are all of unit U3, which is lost
    for feature, unit in zip(doc["features"], ["U1", "U2", "U3", "U3", "U2"]):
        feature["properties"]["unit"] = unit
    path.write_text(json.dumps(doc))
    dataset, findings = load(tmp_path, [path])
    (null,) = findings.of("null_class")
    assert null.count == 3 and null.action == "dropped"
    assert null.details["null"] == 2 and null.details["empty"] == 1 and null.details["lost"] == ["U3"]
    assert "Whole unit classes lost" in null.message and "U3" in null.message and "NULL 2, empty 1" in null.message
    assert dataset.names == ["a", "b"] and dataset.pixels == 48 * 32


def test_too_few_pixels_refused_with_the_fix_then_dropped_or_merged(tmp_path: Path) -> None:
    path = stripe_polygons(tmp_path / "map.geojson", extra=[((2, 2, 5, 5), "tiny")])
    with pytest.raises(Refused, match=r"'tiny' 9 px.*--drop-class 'tiny'.*--merge-class.*--min-class-pixels"):
        load(tmp_path, [path])
    dataset, findings = load(tmp_path, [path], drop=("tiny",))
    assert "tiny" not in dataset.names and findings.of("dropped_class")[0].count == 9
    merged, _ = load(tmp_path, [path], merge=("tiny=beta",))
    assert merged.names == ["alpha", "beta", "gamma"]
    assert {c.name: c.pixels for c in merged.classes}["beta"] == 48 * 16 + 9
    with pytest.raises(Refused, match="not classes"):
        load(tmp_path, [path], merge=("nothing=beta",))


def test_labels_outside_the_raster_are_counted(tmp_path: Path) -> None:
    path = stripe_polygons(tmp_path / "map.geojson", extra=[((100, 100, 110, 110), "alpha"),
                                                           ((44, 10, 54, 20), "gamma")])
    dataset, findings = load(tmp_path, [path])
    (out,) = findings.of("outside")
    assert out.details["wholly"] == 1 and out.details["partly"] == 1 and out.details["pixels"] == 100 + 60


def test_a_crs_mismatch_is_reprojected_and_reported(tmp_path: Path) -> None:
    rings = [pixel_square_lonlat(0, 0, 16, 48), pixel_square_lonlat(16, 0, 48, 48)]
    path = write_geojson(tmp_path / "wgs84.geojson", rings, ["a", "b"])   # no crs member: WGS 84
    dataset, findings = load(tmp_path, [path])
    (crs,) = findings.of("crs")
    assert crs.action == "reprojected" and crs.count == 2 and crs.details["to"] == f"EPSG:{UTM}"
    assert abs({c.name: c.pixels for c in dataset.classes}["a"] - 16 * 48) <= 48  # about one column of edge pixels


def test_rasters_of_different_resolutions_are_resampled(tmp_path: Path) -> None:
    fine = named_raster(tmp_path / "fine.tif", stripes())
    coarse = named_raster(tmp_path / "coarse.tif", stripes(24, seed=3), origin=(601440.0, -400000.0), pixel=60.0)
    labels = [stripe_polygons(tmp_path / "a.geojson"),
              write_geojson(tmp_path / "b.geojson", [pixel_square_utm(48, 0, 96, 48)], ["beta"], epsg=UTM)]
    dataset, findings = load(tmp_path, labels, [fine, coarse])
    (res,) = findings.of("resolution")
    assert res.action == "resampled" and res.details["pixel"] == 60.0 and res.details["to"] == 30.0
    assert dataset.scenes[1].shape == (48, 48) and dataset.scenes[1].source != str(coarse)
    assert dataset.scenes[1].band_names == ["red", "nir"]
    assert {c.name: c.pixels for c in dataset.classes}["beta"] == 48 * 16 + 48 * 48


def test_several_rasters_with_one_label_file_each_or_one_for_all(tmp_path: Path) -> None:
    a = named_raster(tmp_path / "a.tif", stripes())
    b = named_raster(tmp_path / "b.tif", stripes(seed=5), origin=(600000.0 + 48 * 30, -400000.0))
    first = stripe_polygons(tmp_path / "a.geojson")
    second = stripe_polygons(tmp_path / "b.geojson", origin_px=(48, 0), values=["gamma", "delta", "gamma"])
    dataset, _ = load(tmp_path, [first, second], [a, b], min_class_pixels=1)
    assert dataset.names == ["alpha", "beta", "delta", "gamma"] and len(dataset.scenes) == 2
    assert {k[0] for k in block_pixels(dataset, 16)} == {0, 1}
    both = write_geojson(tmp_path / "both.geojson", [pixel_square_utm(0, 0, 48, 48), pixel_square_utm(48, 0, 96, 48)],
                         ["x", "y"], epsg=UTM)
    shared, _ = load(tmp_path, [both], [a, b])
    assert [int(shared.labelled(i).sum()) for i in range(2)] == [48 * 48, 48 * 48]
    with pytest.raises(Refused, match="one --labels per --image"):
        load(tmp_path, [first, second, both], [a, b])


def test_nodata_overlaps_and_pixels_counted_once(tmp_path: Path) -> None:
    data = stripes()
    data[:, :4, :] = -9999.0
    image = named_raster(tmp_path / "nodata.tif", data, nodata=-9999.0)
    path = stripe_polygons(tmp_path / "map.geojson", extra=[((0, 40, 48, 48), "beta")])
    dataset, findings = load(tmp_path, [path], [image])
    assert findings.of("nodata_labels")[0].count == 4 * 48
    assert findings.of("overlap")[0].count == 8 * 48
    assert dataset.pixels == 44 * 48
    chips = cut_chips(dataset, 16, 8, 32)
    assert (chips.labels > 0).sum() > dataset.pixels  # overlapping chips hold pixels several times; counts do not


def test_a_class_absent_from_a_fold_is_reported(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "map.geojson", [pixel_square_utm(0, 0, 48, 48), pixel_square_utm(0, 0, 16, 16)],
                         ["common", "rare"], epsg=UTM)
    dataset, findings = load(tmp_path, [path])
    plan = Plan(chip=16, stride=8, block=16, depth=2, width=4, folds=2)
    counts = block_pixels(dataset, 16)
    missing = []
    for fold in make_folds(dataset, counts, plan):
        test = np.zeros(0, np.int64)
        for i, col, row in fold.test:
            test = np.concatenate([test, dataset.truth[i][row * 16:(row + 1) * 16, col * 16:(col + 1) * 16].ravel()])
        check_fold_classes(dataset, fold, test[test > 0], np.array(dataset.ids), findings)
        missing += fold.absent
    assert missing == ["rare"]
    (absent,) = findings.of("fold_missing_class")
    assert absent.details["classes"] == ["rare"] and "macro-F1 averages the classes present" in absent.message


def test_label_rasters_classes_values_and_threads_default(tmp_path: Path) -> None:
    labels = np.zeros((48, 48), np.uint8)
    labels[:, :24], labels[:, 24:40] = 3, 7
    path = write_raster(tmp_path / "labels.tif", labels)
    dataset, _ = load(tmp_path, [path])
    assert [(c.value, c.name) for c in dataset.classes] == [(3, "3"), (7, "7")] and dataset.ids == [1, 2]
    values = write_raster(tmp_path / "values.tif", stripes()[0], nodata=None)
    regression, _ = load(tmp_path, [values], task="regression", field=None)
    assert regression.pixels == 48 * 48 and regression.value_name == "value"
    assert cli.parser("segmentation").parse_args(["--image", "a", "--labels", "b", "--out", "c"]).threads == 1
