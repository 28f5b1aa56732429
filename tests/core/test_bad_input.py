"""Bad input: a clear typed error that names the problem and the fix, nothing written, inputs untouched."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from deepstrata.inference import (CancelledError, CardError, InputError, ModelError, OutputError, RunOptions,
                                  run_model)
from ds_testing import models, rasters
from ds_testing.paths import DEM, LANDSAT


@pytest.fixture
def seg(tmp_path: Path) -> Path:
    return models.conv_segmenter(tmp_path / "models" / "seg.onnx", bands=3, classes=4)


def _nothing_written(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.suffix in (".tif", ".qml", ".xml") or "partial" in p.name]
    assert left == [], f"left behind: {left}"


def _run(model: Path, raster: Path, out_dir: Path, **options) -> None:
    out_dir.mkdir(exist_ok=True)
    run_model(model, str(raster), str(out_dir / "out.tif"), RunOptions(**options))


@pytest.mark.parametrize("make,expected", [
    (lambda p: p, "Model file not found"),
    (models.write_not_onnx, "is not a valid ONNX model"),
    (models.write_corrupt_model, "is not a valid ONNX model"),
    (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
])
def test_unusable_model_files(tmp_path: Path, make, expected: str) -> None:
    model = make(tmp_path / "bad.onnx")
    with pytest.raises(ModelError, match=expected):
        _run(model, LANDSAT, tmp_path / "out")
    _nothing_written(tmp_path / "out")


def test_model_without_card_says_how_to_add_one(tmp_path: Path) -> None:
    model = models.no_card_model(tmp_path / "plain.onnx")
    with pytest.raises(CardError, match="carries no DeepStrata card.*plain.onnx.json"):
        _run(model, DEM, tmp_path / "out")


@pytest.mark.parametrize("edit,field", [
    (lambda c: c["output"]["classes"][1].update(color="green"), "output.classes[1].color"),
    (lambda c: c.update(task="detection"), "task"),
    (lambda c: c["input"].pop("bands"), "input.bands"),
    (lambda c: c["input"]["normalization"].update(method="zscore", mean=[0, 0], std=[1, 1, 1]),
     "input.normalization.mean"),
    (lambda c: c["input"].update(tile_size="big"), "input.tile_size"),
    (lambda c: c["output"]["classes"][2].update(value=1), "output.classes"),
    (lambda c: c.update(schema="deepstrata.card/9"), "schema"),
])
def test_malformed_card_names_the_field(tmp_path: Path, edit, field: str) -> None:
    card = models.card("segmentation", 3, 4, margin=2)
    edit(card)
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    models.save(__import__("onnx").load(str(model)), model, card)
    with pytest.raises(CardError) as info:
        _run(model, LANDSAT, tmp_path / "out")
    assert str(info.value).startswith(f"model card: {field}: "), str(info.value)
    _nothing_written(tmp_path / "out")


def test_card_that_is_not_json(tmp_path: Path) -> None:
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    Path(str(model) + ".json").write_text("{ not json")
    with pytest.raises(CardError, match="seg.onnx.json: is not valid JSON"):
        _run(model, LANDSAT, tmp_path / "out")


def test_model_channels_differ_from_the_raster_bands(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(InputError, match=r"takes 3 bands \(b1, b2, b3\) but 'bigtujunga_320x240.tif' has 1 band"):
        _run(seg, DEM, tmp_path / "out")
    with pytest.raises(InputError, match=r"2 bands selected \(1, 2\) but the model takes 3"):
        _run(seg, LANDSAT, tmp_path / "out", bands=[1, 2])
    _nothing_written(tmp_path / "out")


def test_band_index_out_of_range(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(InputError, match=r"Band 5 does not exist: 'l8_B4B3B2_256.tif' has 3 bands \(1-3\)"):
        _run(seg, LANDSAT, tmp_path / "out", bands=[1, 2, 5])


def test_extent_outside_the_raster(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(InputError, match="lies outside the raster 'l8_B4B3B2_256.tif'.*overlaps the layer"):
        _run(seg, LANDSAT, tmp_path / "out", extent=(0, 0, 100, 100))
    _nothing_written(tmp_path / "out")


def test_output_folder_missing(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(OutputError, match="The folder of the output, '.*nowhere', does not exist. Create it"):
        run_model(seg, str(LANDSAT), str(tmp_path / "nowhere" / "out.tif"))


def test_output_folder_read_only(tmp_path: Path, seg: Path) -> None:
    if os.geteuid() == 0:  # root writes through chmod; /proc refuses everyone
        folder = Path("/proc/self")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    with pytest.raises(OutputError, match=f"Cannot write into '{folder}' for the output .*Choose a folder you can "
                                          "write to"):
        run_model(seg, str(LANDSAT), str(folder / "out.tif"))


def test_output_must_be_geotiff_and_not_the_input(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(OutputError, match="must be a GeoTIFF"):
        run_model(seg, str(LANDSAT), str(tmp_path / "out.png"))
    copy = tmp_path / "in.tif"
    copy.write_bytes(LANDSAT.read_bytes())
    with pytest.raises(OutputError, match="is the input raster"):
        run_model(seg, str(copy), str(copy))
    assert copy.read_bytes() == LANDSAT.read_bytes()


def test_unreadable_raster(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(InputError, match="Input raster not found"):
        _run(seg, tmp_path / "missing.tif", tmp_path / "out")
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(InputError, match="'.*junk.tif' is not a raster GDAL can read: no GDAL driver recognises it"):
        _run(seg, junk, tmp_path / "out")


def test_unsupported_output_shape(tmp_path: Path) -> None:
    card = models.card("segmentation", 3, 4, margin=2, crop=3)  # the graph does not crop
    model = models.conv_segmenter(tmp_path / "seg.onnx")
    models.save(__import__("onnx").load(str(model)), model, card)
    with pytest.raises(ModelError, match=r"Unsupported output shape: the model returned \(4, 4, 64, 64\).*output.crop"):
        _run(model, LANDSAT, tmp_path / "out")
    _nothing_written(tmp_path / "out")
    seg5 = models.conv_segmenter(tmp_path / "seg5.onnx", classes=5, output={"classes": card["output"]["classes"]})
    with pytest.raises(ModelError, match="the model outputs 5 channels but the card lists 4 classes for it"):
        _run(seg5, LANDSAT, tmp_path / "out")
    cls = models.patch_classifier(tmp_path / "cls.onnx")
    models.save(__import__("onnx").load(str(cls)), cls, models.card("segmentation", 3, 3))
    with pytest.raises(ModelError, match=r"Unsupported output shape .* for a segmentation model"):
        _run(cls, LANDSAT, tmp_path / "out")


def test_cancelled_run_leaves_nothing(tmp_path: Path, seg: Path) -> None:
    calls = []

    def cancel_after_three() -> bool:
        calls.append(1)
        return len(calls) > 3

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CancelledError, match="cancelled; no output was written"):
        run_model(seg, str(LANDSAT), str(out / "out.tif"),
                  RunOptions(tile_size=32, confidence_path=str(out / "conf.tif")), is_cancelled=cancel_after_three)
    _nothing_written(out)
    assert list(out.iterdir()) == []


def test_cancel_keeps_an_earlier_complete_output(tmp_path: Path, seg: Path) -> None:
    out = tmp_path / "out.tif"
    run_model(seg, str(LANDSAT), str(out))
    before = out.read_bytes()
    with pytest.raises(CancelledError):
        run_model(seg, str(LANDSAT), str(out), RunOptions(tile_size=32), is_cancelled=lambda: True)
    assert out.read_bytes() == before


def test_raster_without_crs_runs_with_a_warning(tmp_path: Path) -> None:
    array = rasters.smooth_random(1, 40, 40, seed=4).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "nocrs.tif", array, epsg=None, geotransform=None)
    model = models.identity_regressor(tmp_path / "id.onnx")
    result = run_model(model, str(raster), str(tmp_path / "out.tif"))
    assert any("has no CRS" in w and "Assign" in w for w in result.warnings)
    assert (tmp_path / "out.tif").exists()


def test_overlap_below_twice_the_margin_is_raised_with_a_warning(tmp_path: Path, seg: Path) -> None:
    result = run_model(seg, str(LANDSAT), str(tmp_path / "o.tif"), RunOptions(overlap=1))
    assert result.overlap == 4
    assert any("less than twice the model's margin" in w for w in result.warnings)


def test_tile_too_small_for_margin(tmp_path: Path, seg: Path) -> None:
    with pytest.raises(InputError, match="Tile size 4 is too small for this model"):
        run_model(seg, str(LANDSAT), str(tmp_path / "o.tif"), RunOptions(tile_size=4))
