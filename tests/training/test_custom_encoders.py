"""``--from``: encoders rebuilt from our ONNX exports reproduce the graph's features, band counts are adapted,
checkpoints load, missing or unusable sources are refused with the fix, and a run starts from one."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from custom_fixtures import named_raster, stripe_polygons, stripes
from ds_testing import models
from training.custom import cli, encoders
from training.custom.encoders import build_unet, load_source, read_checkpoint, recalibrate_batchnorm, resolve
from training.custom.findings import Refused
from training.custom.onnx_encoder import read_onnx_encoder
from training.export import export_model
from training.nets import Encoder, RelativeRelief, UNet

REPO = Path(__file__).resolve().parents[2]


def trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def exported(tmp: Path, model: UNet, bands: int, name: str = "unet.onnx") -> Path:
    card = models.card("segmentation", bands, 3, size_multiple=model.size_multiple, tile_size=64)
    return export_model(model, card, tmp / name)


def features(encoder: torch.nn.Module, stem: torch.nn.Module | None, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return encoder.eval()(stem.eval()(x) if stem is not None else x)


def test_an_exported_unet_gives_back_its_encoder_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    unet = trained_looking(UNet(3, 3, width=4, depth=2))
    source = read_onnx_encoder(str(exported(tmp_path, unet, 3)), "test")
    assert (source.width, source.depth, source.encoder_bands, source.stem) == (4, 2, 3, None)
    rebuilt = Encoder(3, 4, 2)
    rebuilt.load_state_dict(source.state)
    x = torch.randn(2, 3, 40, 40)
    for got, want in zip(features(rebuilt, None, x), features(unet.encoder, None, x)):
        assert float((got - want).abs().max()) < 1e-4
    assert source.verified is not None and source.verified < 1e-4


def test_a_relief_stem_is_recognised_and_batchnorm_recalibration_keeps_the_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    unet = trained_looking(UNet(1, 3, width=4, depth=1, stem=RelativeRelief(3, 20.0)))
    source = read_onnx_encoder(str(exported(tmp_path, unet, 1)), "relief")
    assert source.stem_spec == {"type": "relative_relief", "radius": 3, "scale": 20.0, "input": "mean"}
    model, how = build_unet(source, 1, 2, 8, 3)
    x = torch.cumsum(torch.randn(4, 1, 32, 32), dim=-1) * 5
    before = features(model.encoder, model.stem, x)
    recalibrate_batchnorm(model.encoder, model.stem(x))
    for got, want in zip(features(model.encoder, model.stem, x), before):
        assert float((got - want).abs().max()) < 1e-4
    assert "copied" in how and model.size_multiple == 2


def test_band_count_adaptation_keeps_a_grey_image_s_activations(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = read_onnx_encoder(str(exported(tmp_path, trained_looking(UNet(2, 3, width=4, depth=1)), 2)), "two")
    model, how = build_unet(source, 5, 4, 8, 3)
    assert "adapted from 2 to 5 bands" in how and model.encoder.blocks[0][0].weight.shape[1] == 5
    grey = torch.randn(1, 1, 16, 16)
    original = Encoder(2, 4, 1)
    original.load_state_dict(source.state)
    with torch.no_grad():
        want = original.blocks[0][0](grey.repeat(1, 2, 1, 1))
        got = model.encoder.blocks[0][0](grey.repeat(1, 5, 1, 1))
    assert float((got - want).abs().max()) < 1e-5
    relief = read_onnx_encoder(str(exported(tmp_path, trained_looking(UNet(1, 3, width=4, depth=1,
                                                                            stem=RelativeRelief(2, 5.0))), 1, "r.onnx")), "r")
    per_band, _ = build_unet(relief, 3, 2, 8, 3)  # a band-wise stem: 1 -> 3 bands
    assert per_band(torch.randn(1, 3, 16, 16)).shape == (1, 2, 16, 16)


def test_shipped_models_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Refused, match="not one of our U-Net or autoencoder exports"):
        load_source(str(REPO / "resources" / "models" / "anomaly_dem.onnx"))  # an analytic stem, no encoder
    geology = load_source("geology")
    with pytest.raises(Refused, match="log_reflectance stem has parameters for each of its 6 bands"):
        build_unet(geology, 4, 2, 8, 3)
    with pytest.raises(Refused, match="not one of our U-Net or autoencoder exports"):
        load_source(str(REPO / "resources" / "models" / "anomaly_multispectral.onnx"))
    monkeypatch.setattr(encoders, "REPO", tmp_path)
    with pytest.raises(Refused, match=r"terrain.pt does not exist yet; run `python -m training pretrain-encoders`"):
        resolve("terrain")
    with pytest.raises(Refused, match="no such file"):
        resolve(str(tmp_path / "nothing.pt"))


def test_a_checkpoint_loads_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    encoder = Encoder(2, 4, 1)
    path = tmp_path / "enc.pt"
    torch.save({"format": "deepstrata-encoder/1", "width": 4, "depth": 1, "bands": 2, "stem": None,
                "input": "zscore", "state": encoder.state_dict(), "source": "test", "pretrained_on": ["x"],
                "held_out": []}, path)
    source = read_checkpoint(path, "enc")
    assert (source.width, source.depth, source.encoder_bands, source.fused) == (4, 1, 2, False)
    torch.save({"format": "something-else"}, tmp_path / "bad.pt")
    with pytest.raises(Refused, match="not a deepstrata-encoder/1 checkpoint"):
        read_checkpoint(tmp_path / "bad.pt", "bad")


def test_segment_from_an_onnx_encoder_freezes_then_fine_tunes(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    torch.manual_seed(0)
    onnx_path = exported(tmp_path, trained_looking(UNet(3, 3, width=4, depth=2)), 3)
    image = named_raster(tmp_path / "scene.tif", stripes())
    labels = stripe_polygons(tmp_path / "map.geojson")
    out = tmp_path / "from.onnx"
    assert cli.segment_main(["--image", str(image), "--labels", str(labels), "--class-field", "class", "--out",
                             str(out), "--from", str(onnx_path), "--folds", "2", "--seeds", "1", "--epochs", "2"]) == 0
    report = json.loads((tmp_path / "from.report" / "report.json").read_text())
    assert report["plan"]["freeze_epochs"] == 1 and report["plan"]["width"] == 4
    assert "adapted from 3 to 2 bands" in report["source"]["bands"]
    card = json.loads(json.dumps(report["card_metrics"]))
    assert "cv_macro_f1" in card
    rows = [r for r in report["rows"] if r["method"] == "network"]
    assert all(np.isfinite(r["macro_f1"]) for r in rows)
