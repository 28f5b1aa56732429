"""ResNet encoders with torchvision's key names, checkpoint loading and conv1 adaptation, the ResNet U-Net and its
export, transfer from our autoencoder, and the freeze/fine-tune helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ds_testing import models  # noqa: E402
from training.export import export_model  # noqa: E402
from training.nets import ConvAutoencoder, RelativeRelief, UNet  # noqa: E402
from training.resnet import (CheckpointError, ResNetEncoder, ResNetUNet, adapt_conv1, load_pretrained,  # noqa: E402
                             load_state)
from training.transfer import freeze, param_groups, schedule, set_bn_eval, unet_from_autoencoder  # noqa: E402

torch.manual_seed(0)
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _trained_looking(model: torch.nn.Module) -> torch.nn.Module:
    """Random batch-norm statistics and affine terms, as after training (fresh ones are the identity)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.0)
            m.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def resnet50() -> ResNetEncoder:
    return ResNetEncoder(50, 3)


def _checkpoint(encoder: ResNetEncoder) -> dict[str, torch.Tensor]:
    """The encoder's weights as a published file holds them: with a classifier."""
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, encoder.channels[-1]), torch.randn(1000)
    return state


# ---------------------------------------------------------------------------------------------- key names

def test_resnet18_keys_are_torchvisions() -> None:
    keys = list(_checkpoint(ResNetEncoder(18, 3)))
    # torchvision's resnet18 state_dict: 122 entries = 62 parameters (20 convolutions, 20 batch norms x 2, fc x 2)
    # + 60 buffers (20 batch norms x 3); by place: stem 6, 8 basic blocks x 12, 3 downsamples x 6, fc 2.
    assert len(keys) == 122
    assert keys[:7] == ["conv1.weight"] + [f"bn1.{b}" for b in BN] + ["layer1.0.conv1.weight"]
    assert keys[-8:] == ["layer4.1.conv2.weight"] + [f"layer4.1.bn2.{b}" for b in BN] + ["fc.weight", "fc.bias"]
    assert {k.split(".")[0] for k in keys} == {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"}
    assert "layer3.0.downsample.0.weight" in keys and "layer3.0.downsample.1.running_var" in keys
    assert not any(k.startswith("layer1.0.downsample") for k in keys)
    assert not any(".conv3." in k for k in keys)


def test_resnet34_and_50_key_counts(resnet50: ResNetEncoder) -> None:
    assert len(_checkpoint(ResNetEncoder(34, 3))) == 218  # 6 + 16 blocks x 12 + 3 x 6 + 2
    keys = _checkpoint(resnet50)
    assert len(keys) == 320  # 6 + 16 bottlenecks x 18 + 4 x 6 + 2
    assert tuple(keys["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1)
    assert tuple(keys["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)
    assert tuple(keys["layer2.0.conv2.weight"].shape) == (128, 128, 3, 3)  # v1.5: stride on the 3x3


@pytest.mark.parametrize("depth, channels", [(18, [64, 64, 128, 256, 512]), (34, [64, 64, 128, 256, 512]),
                                             (50, [64, 256, 512, 1024, 2048])])
def test_feature_shapes(depth: int, channels: list[int], resnet50: ResNetEncoder) -> None:
    encoder = (resnet50 if depth == 50 else ResNetEncoder(depth, 3)).eval()
    assert encoder.channels == channels
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in features] == [(1, c, 64 // s, 64 // s) for c, s in zip(channels, (2, 4, 8, 16, 32))]


def test_unknown_depth() -> None:
    with pytest.raises(ValueError, match="18, 34, 50"):
        ResNetEncoder(101, 3)


# ---------------------------------------------------------------------------------------------- checkpoints

def test_round_trip_with_classifier_and_module_prefix(tmp_path: Path) -> None:
    source = _trained_looking(ResNetEncoder(18, 3))
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _checkpoint(source).items()}, "epoch": 90}, path)
    target = ResNetEncoder(18, 3).eval()
    report = load_pretrained(target, path, in_channels=3)
    assert report.ignored == ["fc.weight", "fc.bias"] and report.loaded == 120
    assert "copied" in report.conv1
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for got, expected in zip(target(x), source(x)):
            assert torch.equal(got, expected)


def test_missing_num_batches_tracked_is_accepted() -> None:
    """Old published files predate num_batches_tracked."""
    source = ResNetEncoder(18, 3)
    state = {k: v for k, v in _checkpoint(source).items() if not k.endswith("num_batches_tracked")}
    target = ResNetEncoder(18, 3)
    assert not torch.equal(target.conv1.weight, source.conv1.weight)  # two random inits differ before loading
    load_state(target, state)
    loaded = {k: v for k, v in state.items() if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.parametrize("bands", [1, 6])
def test_conv1_adaptation_rule(bands: int) -> None:
    rgb = ResNetEncoder(18, 3)
    encoder = ResNetEncoder(18, bands)
    report = load_state(encoder, _checkpoint(rgb))
    assert f"3 -> {bands} bands" in report.conv1
    kernel = rgb.conv1.weight.detach()
    expected = (kernel.mean(dim=1, keepdim=True) * 3 / bands).expand(-1, bands, -1, -1)
    assert encoder.conv1.weight.shape == (64, bands, 7, 7)
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected, rtol=0, atol=0)


@pytest.mark.parametrize("bands", [1, 4, 6])
def test_grey_image_in_n_bands_matches_rgb_network(bands: int) -> None:
    """The 3/N scaling keeps activations: N equal bands give what RGB gives on the grey image in 3 bands."""
    rgb = _trained_looking(ResNetEncoder(18, 3))
    encoder = ResNetEncoder(18, bands).eval()
    load_state(encoder, _checkpoint(rgb))
    grey = torch.rand(1, 1, 64, 64) * 4
    with torch.no_grad():
        torch.testing.assert_close(encoder.conv1(grey.expand(-1, bands, -1, -1)), rgb.conv1(grey.expand(-1, 3, -1, -1)),
                                   rtol=1e-5, atol=1e-5)
        ours, theirs = encoder(grey.expand(-1, bands, -1, -1)), rgb(grey.expand(-1, 3, -1, -1))
    torch.testing.assert_close(ours[-1], theirs[-1], rtol=1e-4, atol=1e-4)


def test_adapt_conv1_keeps_a_matching_kernel() -> None:
    kernel = torch.randn(64, 4, 7, 7)
    assert torch.equal(adapt_conv1(kernel, 4), kernel)


def test_missing_key_is_named() -> None:
    state = _checkpoint(ResNetEncoder(18, 3))
    del state["layer2.1.bn1.running_var"]
    encoder = ResNetEncoder(18, 3)
    before = encoder.conv1.weight.detach().clone()
    with pytest.raises(CheckpointError, match=r"not a ResNet-18 state_dict as torchvision or timm publish it: "
                                              r"missing keys: layer2\.1\.bn1\.running_var$"):
        load_state(encoder, state)
    assert torch.equal(encoder.conv1.weight, before), "nothing loaded"


def test_wrong_shape_is_named() -> None:
    state = _checkpoint(ResNetEncoder(18, 3))
    state["layer3.0.conv1.weight"] = torch.zeros(256, 128, 1, 1)
    with pytest.raises(CheckpointError, match=r"wrong shapes: layer3\.0\.conv1\.weight \(256, 128, 1, 1\) "
                                              r"\(expected \(256, 128, 3, 3\)\)"):
        load_state(ResNetEncoder(18, 3), state)
    state = _checkpoint(ResNetEncoder(18, 3))
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(CheckpointError, match=r"conv1\.weight \(64, 3, 3, 3\)"):
        load_state(ResNetEncoder(18, 3), state)


def test_resnet50_file_into_resnet18(resnet50: ResNetEncoder) -> None:
    with pytest.raises(CheckpointError) as info:
        load_state(ResNetEncoder(18, 3), _checkpoint(resnet50), source="r50.pth")
    message = str(info.value)
    assert message.startswith("r50.pth is not a ResNet-18 state_dict as torchvision or timm publish it "
                              "(it looks like a ResNet-50)")
    assert "unexpected keys: layer1.0.conv3.weight" in message and "missing keys:" not in message
    assert "wrong shapes: layer1.0.conv1.weight (64, 64, 1, 1) (expected (64, 64, 3, 3))" in message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_pretrained(ResNetEncoder(18, 3), tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_pretrained(ResNetEncoder(18, 3), tmp_path / "junk.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        load_pretrained(ResNetEncoder(18, 3), tmp_path / "empty.pth")
    with pytest.raises(ValueError, match="built for 3 bands"):
        load_pretrained(ResNetEncoder(18, 3), tmp_path / "empty.pth", in_channels=4)


# ---------------------------------------------------------------------------------------------- U-Net, export

def test_resnet_unet_shape() -> None:
    net = ResNetUNet(18, 5, classes=7, decoder_width=4).eval()
    assert net.size_multiple == 32 and isinstance(net.encoder, ResNetEncoder)
    with torch.no_grad():
        assert net(torch.randn(2, 5, 64, 96)).shape == (2, 7, 64, 96)


def test_resnet_unet_exports_with_parity(tmp_path: Path) -> None:
    from deepstrata.inference import load_model

    net = _trained_looking(ResNetUNet(18, 4, classes=3, decoder_width=4))
    card = models.card("segmentation", 4, 3, size_multiple=32, tile_size=64, margin=16, activation="softmax")
    path = export_model(net, card, tmp_path / "resnet_unet.onnx", sizes=(64, 96))
    assert load_model(path).card.input.size_multiple == 32


# ---------------------------------------------------------------------------------------------- transfer

def test_unet_from_autoencoder_carries_the_encoder_weights() -> None:
    autoencoder = _trained_looking(ConvAutoencoder(2, width=4, depth=2, stem=RelativeRelief(3, 10.0)))
    unet = unet_from_autoencoder(autoencoder, classes=5).eval()
    ours, theirs = unet.encoder.state_dict(), autoencoder.encoder.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert isinstance(unet.stem, RelativeRelief) and unet.size_multiple == 4
    with torch.no_grad():
        assert unet(torch.randn(1, 2, 32, 32)).shape == (1, 5, 32, 32)
    # The documented manual steps do the same.
    by_hand = UNet(2, 5, width=4, depth=2)
    by_hand.encoder.load_state_dict(autoencoder.encoder.state_dict())
    assert all(torch.equal(by_hand.encoder.state_dict()[k], theirs[k]) for k in theirs)


def test_frozen_encoder_keeps_weights_and_statistics() -> None:
    net = ResNetUNet(18, 3, classes=2, decoder_width=4)
    net.train()
    schedule(net.encoder, frozen=True)
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert all(p.requires_grad for p in net.decoder.parameters())
    stats = {k: v.clone() for k, v in net.encoder.state_dict().items() if "running" in k or "num_batches" in k}
    decoder_bn = net.decoder[0][1].running_mean.clone()
    net(torch.randn(2, 3, 64, 64) * 3 + 1).sum().backward()
    assert all(torch.equal(net.encoder.state_dict()[k], v) for k, v in stats.items())
    assert not torch.equal(net.decoder[0][1].running_mean, decoder_bn), "the decoder still trains its statistics"
    assert all(p.grad is None for p in net.encoder.parameters())
    schedule(net.encoder, frozen=False)
    assert all(p.requires_grad for p in net.parameters())


def test_set_bn_eval_alone_and_freeze() -> None:
    encoder = ResNetEncoder(18, 3).train()
    freeze(encoder)
    set_bn_eval(encoder)
    assert not encoder.bn1.training and encoder.training
    before = encoder.bn1.running_mean.clone()
    encoder(torch.randn(1, 3, 64, 64) + 2)
    assert torch.equal(encoder.bn1.running_mean, before)


def test_param_groups_split_encoder_and_decoder() -> None:
    net = ResNetUNet(18, 3, classes=2, decoder_width=4)
    groups = param_groups(net, encoder_lr=1e-4, decoder_lr=1e-3)
    assert [g["lr"] for g in groups] == [1e-4, 1e-3]
    assert len(groups[0]["params"]) == len(list(net.encoder.parameters()))
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(net.parameters()))
    torch.optim.AdamW(groups)  # a valid optimiser: no parameter in two groups
