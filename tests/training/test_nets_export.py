"""Model families and ONNX export: shapes, receptive radius, relief invariance, card, parity, engine round trip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deepstrata.inference import CardError, RunOptions, load_model, run_model  # noqa: E402
from ds_testing import models, rasters  # noqa: E402
from training.export import ExportError, export_model  # noqa: E402
from training.nets import ConvAutoencoder, PatchClassifier, RelativeRelief, UNet, receptive_radius  # noqa: E402

torch.manual_seed(0)


def _card(task: str, bands: int, classes: int | None, depth: int, **extra) -> dict:
    return models.card(task, bands, classes, size_multiple=2 ** depth, tile_size=64, **extra)


def _trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    """Random batch-norm statistics, as after training (fresh ones are the identity)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_shapes() -> None:
    x = torch.randn(2, 3, 48, 40)
    assert UNet(3, 5, width=8, depth=3).eval()(x).shape == (2, 5, 48, 40)
    assert PatchClassifier(3, 4, width=8).eval()(x).shape == (2, 4)
    assert ConvAutoencoder(3, width=8, depth=2).eval()(x).shape == (2, 3, 48, 40)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_receptive_radius_bounds_the_influence_of_one_pixel(depth: int) -> None:
    net = _trained_looking(UNet(1, 2, width=4, depth=depth))
    size = 160
    x = torch.randn(1, 1, size, size)
    y = x.clone()
    y[0, 0, size // 2, size // 2] += 100.0
    with torch.no_grad():
        changed = (net(x) - net(y)).abs().amax(dim=1)[0] > 0
    rows, cols = np.nonzero(changed.numpy())
    reach = int(max(np.abs(rows - size // 2).max(), np.abs(cols - size // 2).max()))
    assert reach <= receptive_radius(depth)
    assert reach >= receptive_radius(depth) // 2, "the bound is not grossly loose"


def test_relative_relief_ignores_absolute_elevation() -> None:
    net = _trained_looking(UNet(1, 3, width=4, depth=2, stem=RelativeRelief(radius=5, scale=20.0)))
    dem = torch.cumsum(torch.randn(1, 1, 64, 64), dim=-1) * 5 + 800
    with torch.no_grad():
        torch.testing.assert_close(net(dem), net(dem + 1500.0), atol=2e-3, rtol=0)


def test_export_embeds_the_card_and_the_engine_runs_it(tmp_path: Path) -> None:
    net = _trained_looking(UNet(3, 4, width=8, depth=2))
    card = _card("segmentation", 3, 4, 2, margin=receptive_radius(2), activation="softmax")
    path = export_model(net, card, tmp_path / "unet.onnx")
    model = load_model(path)
    assert model.card.to_dict() == card and model.card.input.size_multiple == 4
    assert [i.name for i in model.session.get_inputs()] == ["input"]


def test_exported_unet_tiles_match_whole_image(tmp_path: Path) -> None:
    """Pooling models need tiles in one pooling phase: the engine keeps tile starts on multiples of 4."""
    depth, height, width = 2, 150, 170  # not multiples of 4
    net = _trained_looking(UNet(3, 4, width=8, depth=depth))
    card = _card("segmentation", 3, 4, depth, margin=receptive_radius(depth), activation="softmax")
    path = export_model(net, card, tmp_path / "unet.onnx")
    array = rasters.smooth_random(3, height, width, seed=2).astype(np.float32)
    raster = rasters.write_raster(tmp_path / "in.tif", array)
    run_model(path, str(raster), str(tmp_path / "out.tif"),
              RunOptions(tile_size=128, confidence_path=str(tmp_path / "conf.tif")))
    padded = np.pad(array, ((0, 0), (0, -height % 4), (0, -width % 4)), mode="reflect")
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(padded[None])), dim=1)[0, :, :height, :width].numpy()
    from osgeo import gdal

    out, conf = gdal.Open(str(tmp_path / "out.tif")), gdal.Open(str(tmp_path / "conf.tif"))
    assert (out.ReadAsArray() == probs.argmax(0) + 1).mean() >= 0.999
    np.testing.assert_allclose(conf.ReadAsArray(), probs.max(0), atol=1e-4)


def test_patch_classifier_and_autoencoder_export(tmp_path: Path) -> None:
    cls = export_model(_trained_looking(PatchClassifier(3, 3, width=8, depth=2)),
                       _card("classification", 3, 3, 2), tmp_path / "cls.onnx")
    assert load_model(cls).card.task == "classification"
    anomaly = {"error": "mse", "calibration": {"median": 0.5, "mad": 0.1}, "threshold": 3.0}
    ae = export_model(_trained_looking(ConvAutoencoder(3, width=8, depth=2)),
                      _card("anomaly", 3, None, 2, margin=receptive_radius(2), anomaly=anomaly), tmp_path / "ae.onnx")
    assert json.loads(load_model(ae).session.get_modelmeta().custom_metadata_map["deepstrata"])["task"] == "anomaly"


def test_nothing_is_written_when_a_check_fails(tmp_path: Path) -> None:
    net = _trained_looking(UNet(3, 4, width=4, depth=1))
    bad = _card("segmentation", 3, 4, 1)
    bad["output"]["classes"][0]["color"] = "red"
    with pytest.raises(CardError, match=r"output.classes\[0\].color"):
        export_model(net, bad, tmp_path / "bad.onnx")
    with pytest.raises(ExportError, match="differ by up to"):
        export_model(net, _card("segmentation", 3, 4, 1), tmp_path / "strict.onnx", tolerance=0.0)
    with pytest.raises(ExportError, match="multiples of input.size_multiple = 2"):
        export_model(net, _card("segmentation", 3, 4, 1), tmp_path / "odd.onnx", sizes=(63,))
    assert list(tmp_path.iterdir()) == []
