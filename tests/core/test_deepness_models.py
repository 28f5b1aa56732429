"""Models made for Deepness run: every segmentation and regression model of Deepness's own test suite
(../shared/peers/deepness/test/data/dummy_model, exported as Deepness tells model creators), on Deepness's own
test raster. The agreement with what Deepness itself computes is tests/qgis/test_deepness_agreement.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from osgeo import gdal

from deepstrata.inference import CardError, InputError, ModelError, RunOptions, load_model, run_model
from deepstrata.inference.engine.deepness import CardOverrides
from deepstrata.inference.engine.errors import MissingCardError
from deepstrata.inference.engine.class_median import median_of_classes
from ds_testing.deepness_models import CASES, MODELS, PEER
from ds_testing.graph import INPUT, OUTPUT, make_model, tensor_info

gdal.UseExceptions()
pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"the peer Deepness's test models are not at {MODELS}")


@pytest.fixture(scope="module")
def fotomap(tmp_path_factory) -> Path:
    """A copy of Deepness's test raster (RGBA, 2 cm, EPSG:32633)."""
    folder = tmp_path_factory.mktemp("fotomap")
    return Path(shutil.copy(PEER / "dummy_fotomap_small.tif", folder / "fotomap.tif"))


def test_the_peer_suite_has_the_fourteen_models() -> None:
    found = sorted(str(p.relative_to(MODELS)) for p in MODELS.glob("dummy_*_models/*.onnx"))
    assert found == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_deepness_model_runs(name: str, fotomap: Path, tmp_path: Path) -> None:
    task, expected = CASES[name]
    overrides = CardOverrides(task=task)
    model = load_model(MODELS / name, overrides=overrides)
    card = model.card
    assert card.task in ("segmentation", "regression")
    heads = card.output.heads
    assert len(heads) == len(expected)
    if card.task == "segmentation":
        assert [[c.name for c in h.classes] for h in heads] == expected
        assert [[c.value for c in h.classes] for h in heads] == [list(range(1, len(e) + 1)) for e in expected]
    else:
        assert [list(h.names) for h in heads] == expected
    out = tmp_path / "out.tif"
    result = run_model(model, str(fotomap), str(out), RunOptions(card=overrides))
    assert result.task == card.task
    ds = gdal.Open(str(out))
    src = gdal.Open(str(fotomap))
    assert ds.RasterCount == len(expected)  # one band per graph output, as Deepness makes one layer each
    assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert ds.GetGeoTransform() == src.GetGeoTransform() and ds.GetProjection() == src.GetProjection()
    for band, names in enumerate(expected, start=1):
        values = ds.GetRasterBand(band).ReadAsArray()
        if card.task == "segmentation":
            assert values.dtype == np.uint8
            assert set(np.unique(values)) <= set(range(1, len(names) + 1))  # every pixel classified, no nodata
            categories = ds.GetRasterBand(band).GetCategoryNames()
            assert [categories[v] for v in range(1, len(names) + 1)] == names
        else:
            assert values.dtype == np.float32 and np.isfinite(values).all()
            assert ds.GetRasterBand(band).GetDescription() == names[0]
    assert ds.GetMetadataItem("DEEPSTRATA_MODEL_SHA256") == model.sha256


def test_deepness_metadata_keys_are_read_as_deepness_writes_them() -> None:
    """JSON-encoded values ("\\"Regressor\\""), the output scaling, the resolution in cm and the overlap in %."""
    model = load_model(MODELS / "dummy_regression_models/dummy_regression_model.onnx")
    card = model.card
    assert card.task == "regression" and card.output.scale == pytest.approx(1.1)
    assert card.input.pixel_size_m == pytest.approx(0.055)
    assert card.input.margin == int(512 * 11 / 100 / 2)
    assert card.input.normalization.method == "zscore" and card.input.normalization.std == (255.0,) * 3
    assert model.fixed_batch == 1


def test_segmentor_defaults_are_deepness_own() -> None:
    card = load_model(MODELS / "dummy_segmentation_models/two_outputs_softmax_bsx2x512x512.onnx").card
    assert card.output.threshold == 0.5 and card.output.median_filter == 9  # Deepness's dialog: 0.5 and 9
    assert card.input.margin == int(512 * 15 / 100 / 2)  # its default overlap of 15 %
    assert card.output.activation == "none"  # Deepness models output probabilities


def test_an_output_smaller_than_the_input_is_placed_centred() -> None:
    model = load_model(MODELS / "dummy_segmentation_models/different_output_size_512_to_484.onnx",
                       overrides=CardOverrides(task="segmentation"))
    assert model.card.output.crop == (512 - 484) // 2


def test_a_model_without_metadata_says_how_to_say_what_it_is(fotomap: Path, tmp_path: Path) -> None:
    path = MODELS / "dummy_segmentation_models/dummy_model.onnx"
    with pytest.raises(MissingCardError) as info:
        run_model(path, str(fotomap), str(tmp_path / "out.tif"))
    message = str(info.value)
    assert "'dummy_model.onnx' carries no DeepStrata card and no Deepness metadata" in message
    assert "set Task (segmentation or regression)" in message and "--task segmentation" in message
    assert "'dummy_model.onnx.json'" in message
    assert not list(tmp_path.iterdir())


def test_class_names_given_for_a_model_without_metadata(fotomap: Path, tmp_path: Path) -> None:
    overrides = CardOverrides(task="segmentation", classes=[["red", "green", "blue"]], threshold=0.0,
                              median_filter=1)
    model = load_model(MODELS / "dummy_segmentation_models/dummy_model.onnx", overrides=overrides)
    assert [c.name for c in model.card.output.classes] == ["red", "green", "blue"]
    assert model.card.output.threshold == 0.0 and model.card.output.median_filter == 1
    out = tmp_path / "rgb.tif"
    run_model(model, str(fotomap), str(out), RunOptions(card=overrides))
    ds = gdal.Open(str(out))
    ds.GetGeoTransform()  # GDAL 3.6 reads the .aux.xml (category names) lazily
    assert ds.GetRasterBand(1).GetCategoryNames()[1:4] == ["red", "green", "blue"]
    provenance = json.loads(ds.GetMetadataItem("DEEPSTRATA_PARAMETERS"))
    assert provenance["task"] == "segmentation" and provenance["classes"] == [["red", "green", "blue"]]


def test_a_sidecar_of_deepness_keys_completes_a_model(tmp_path: Path) -> None:
    model = Path(shutil.copy(MODELS / "dummy_segmentation_models/one_output_softmax_bsx2x512x512.onnx",
                             tmp_path / "m.onnx"))
    Path(str(model) + ".json").write_text(json.dumps({"model_type": "Segmentor", "seg_thresh": 0.25,
                                                      "class_names": {"0": "land", "1": "water"}}))
    card = load_model(model).card
    assert [c.name for c in card.output.classes] == ["land", "water"] and card.output.threshold == 0.25


def test_recognition_detection_and_super_resolution_are_not_supported_yet(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"Unsupported output shape \['batch_size', 224\] for a regression model.*"
                                         "recognition or embedding model, which DeepStrata does not run yet"):
        load_model(PEER / "dummy_model" / "dummy_recognition_model.onnx")
    with pytest.raises(CardError, match=r"output \(128 px\) is larger than its input \(64 px\): a super-resolution "
                                        "model, which DeepStrata does not support yet"):
        load_model(PEER / "dummy_model" / "dummy_superresolution_model.onnx",
                   overrides=CardOverrides(task="regression"))
    detector = Path(shutil.copy(MODELS / "dummy_segmentation_models/dummy_model.onnx", tmp_path / "yolo.onnx"))
    Path(str(detector) + ".json").write_text(json.dumps({"model_type": "Detector", "det_conf": 0.3}))
    with pytest.raises(CardError, match="'Detector' is a Deepness object detection model; .*does not support "
                                        "object detection yet"):
        load_model(detector)


def test_the_task_is_checked_against_the_graph(fotomap: Path) -> None:
    with pytest.raises(ModelError, match="outputs 1 channel but the card lists 5 classes"):
        load_model(MODELS / "dummy_regression_models/dummy_regression_model.onnx",
                   overrides=CardOverrides(task="segmentation"))
    with pytest.raises(InputError, match=r"2 bands selected \(1, 2\) but the model takes 3 \(red, green, blue\)"):
        model = load_model(MODELS / "dummy_segmentation_models/dummy_model.onnx",
                           overrides=CardOverrides(task="segmentation"))
        run_model(model, str(fotomap), "/tmp/never.tif", RunOptions(bands=[1, 2]))


# ---------------------------------------------------------------------------------- Deepness's class decision

def _probabilities(path: Path, values: list[float], three_d: bool = False) -> Path:
    """A graph that outputs constant channel values (probabilities) whatever the input."""
    channels = len(values)
    weights = helper.make_tensor("w", onnx.TensorProto.FLOAT, [channels, 1, 1, 1], [0.0] * channels)
    bias = helper.make_tensor("b", onnx.TensorProto.FLOAT, [channels], values)
    nodes = [helper.make_node("Slice", [INPUT, "s0", "s1", "ax"], ["first"]),
             helper.make_node("Conv", ["first", "w", "b"], ["probs" if three_d else OUTPUT])]
    inits = [helper.make_tensor("s0", onnx.TensorProto.INT64, [1], [0]),
             helper.make_tensor("s1", onnx.TensorProto.INT64, [1], [1]),
             helper.make_tensor("ax", onnx.TensorProto.INT64, [1], [1]), weights, bias]
    out = tensor_info(OUTPUT, channels)
    if three_d:
        nodes.append(helper.make_node("Squeeze", ["probs", "axis1"], [OUTPUT]))
        inits.append(helper.make_tensor("axis1", onnx.TensorProto.INT64, [1], [1]))
        out = helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["N", "H", "W"])
    model = make_model(nodes, [tensor_info(INPUT, 1)], [out], inits)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("values,threshold,expected", [
    ([0.45, 0.55], 0.5, 2),  # the most probable class reaching the threshold
    ([0.45, 0.55], 0.6, 1),  # none reaches it: the first class, as Deepness's argmax of zeros
    ([0.2, 0.3, 0.5], 0.25, 3),
    ([0.3, 0.25, 0.2], 0.28, 1),
    ([0.4], 0.3, 2),  # one channel: the second class where it reaches the threshold
    ([0.4], 0.5, 1),
    ([0.0], 0.0, 1),  # threshold 0: Deepness counts any non-zero value
    ([1e-6], 0.0, 2),
])
def test_the_class_threshold_decides_as_deepness_does(tmp_path: Path, values: list[float], threshold: float,
                                                      expected: int) -> None:
    model = _probabilities(tmp_path / "p.onnx", values, three_d=len(values) == 1)
    names = ",".join(f"c{i}" for i in range(max(2, len(values))))
    Path(str(model) + ".json").write_text(json.dumps({"model_type": "Segmentor", "seg_thresh": threshold,
                                                      "seg_small_segment": 0, "tile_size": 32,
                                                      "class_names": dict(enumerate(names.split(",")[len(values) == 1:]))}))
    raster = tmp_path / "r.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(raster), 40, 30, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((0, 1, 0, 30, 0, -1))
    ds = None
    run_model(model, str(raster), str(tmp_path / "c.tif"))
    classes = gdal.Open(str(tmp_path / "c.tif")).ReadAsArray()
    assert (classes == expected).all()


# ---------------------------------------------------------------------------------- the small-segment filter

@pytest.mark.parametrize("size", [3, 5, 9])
def test_the_median_filter_is_opencv_median_blur(size: int) -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(size)
    classes = rng.integers(1, 5, size=(61, 47)).astype(np.uint8)
    r = size // 2
    padded = np.pad(classes, r, mode="edge")
    ours = median_of_classes(padded, np.ones(padded.shape, bool), size)
    assert np.array_equal(ours, cv2.medianBlur(classes, size))


def test_the_median_filter_leaves_nodata_out() -> None:
    classes = np.array([[1, 1, 0], [2, 2, 0], [2, 2, 0]], dtype=np.uint8)
    valid = classes != 0
    out = median_of_classes(np.pad(classes, 1, mode="edge"), np.pad(valid, 1, mode="edge"), 3)
    # the centre's window holds 1, 1, 2, 2, 2, 2 and three nodata: 2 among valid pixels (1 if nodata counted)
    assert out[1, 1] == 2 and out[0, 0] == 1


def test_an_rgba_image_feeds_an_rgb_model_without_its_alpha(fotomap: Path, tmp_path: Path) -> None:
    """Band descriptions removed: the counts differ (4 against 3), and the alpha band is the mask, not a channel."""
    plain = tmp_path / "rgba.tif"
    gdal.Translate(str(plain), str(fotomap))
    ds = gdal.Open(str(plain), gdal.GA_Update)
    for b in range(1, 5):
        ds.GetRasterBand(b).SetDescription("")
    ds = None
    overrides = CardOverrides(task="segmentation")
    result = run_model(load_model(MODELS / "dummy_segmentation_models/dummy_model.onnx", overrides=overrides),
                       str(plain), str(tmp_path / "c.tif"), RunOptions(card=overrides))
    assert result.bands == [1, 2, 3]
