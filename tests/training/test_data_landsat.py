"""The real land-cover example: Landsat 5 (6 bands) with the RStoolbox training polygons."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.data import (band_stats, block_split, class_weights, extract_chips, image_grid,
                           rasterize_polygons, split_report)

DATA = Path(__file__).resolve().parents[2] / "training" / "datasets" / "landsat5_amazon"
IMAGE = DATA / "LT52240631988227CUB02_B1-5_7.tif"
POLYGONS = DATA / "trainingPolygons_lsat_epsg32622.geojson"
SIZE, BLOCK = 32, 64


@pytest.fixture(scope="module")
def chips():
    return extract_chips([(IMAGE, POLYGONS)], size=SIZE, stride=16, class_field="class",
                         min_labelled=0.01, block=BLOCK)


def test_chips_have_six_bands_and_the_polygon_classes(chips) -> None:
    names = {f["properties"]["class"] for f in json.loads(POLYGONS.read_text())["features"]}
    assert set(chips.classes) == names and len(names) == 4
    assert chips.classes == {name: i for i, name in enumerate(sorted(names), start=1)}
    assert chips.images.shape[1:] == (6, SIZE, SIZE) and chips.bands == (1, 2, 3, 4, 5, 6)
    assert len(chips) > 50 and chips.valid().all()
    assert set(np.unique(chips.labels).tolist()) == {0, *chips.classes.values()}


def test_labels_sit_on_the_right_pixels(chips) -> None:
    """Water is by far the darkest class in the near infrared (B4), forest the brightest."""
    nir = chips.images[:, 3]
    mean = {name: float(nir[chips.labels == cid].mean()) for name, cid in chips.classes.items()}
    assert mean["water"] < 20 < 60 < mean["forest"]
    assert min(mean, key=mean.get) == "water" and max(mean, key=mean.get) == "forest"
    whole = rasterize_polygons(POLYGONS, image_grid(IMAGE), "class", chips.classes).array
    for (_, x, y), label in zip(chips.origins, chips.labels):
        assert np.array_equal(label, whole[y:y + SIZE, x:x + SIZE])


def test_split_weights_and_statistics_end_to_end(chips) -> None:
    split = block_split(chips.origins, SIZE, BLOCK, seed=0)
    assert len(split.dropped()) == 0
    report = split_report(split, chips.labels, chips.classes)
    assert sum(r["chips"] for r in report.values()) == len(chips)
    assert all(r["chips"] > 0 for r in report.values())
    train = chips.subset(split.indices("train"))
    card = band_stats(train.images).card()
    assert len(card["mean"]) == len(card["std"]) == 6 and min(card["std"]) > 0
    weights = class_weights(train.labels, list(chips.classes.values()))
    assert len(weights.weights) == 4 and all(w >= 0 for w in weights.weights)


def test_the_describe_command_reports_splits_weights_and_normalisation(capsys) -> None:
    from training.data.cli import main

    argv = ["--image", str(IMAGE), "--labels", str(POLYGONS), "--class-field", "class", "--size", "32",
            "--stride", "16", "--block", "64", "--min-labelled", "0.01"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["classes"]) == ["cleared", "fallen_dry", "forest", "water"]
    assert set(report["splits"]) == {"train", "validation", "test"}
    assert report["normalization"]["method"] == "zscore" and len(report["normalization"]["std"]) == 6
    assert main(argv + ["--labels", str(POLYGONS)]) == 1
    assert "one label source each" in capsys.readouterr().err
