"""ResNet-18/34/50 encoders that load a local torchvision or timm checkpoint, and a U-Net decoder over them.

No torchvision here (it has no CPU build for our torch), so the network is written out with torchvision's
parameter names (`conv1`, `bn1`, `layer1.0.conv1`, ..., `layer2.0.downsample.0`); timm's ResNets use the same
names, so a `state_dict` published by either loads without renaming. ResNet-50 is the "v1.5" variant both
publish: the stride of a bottleneck sits on its 3x3 convolution.

The first convolution is adapted to the number of bands (`load_pretrained`); the classifier (`fc.*`) is dropped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from training.nets import conv_block

# depth -> (bottleneck?, blocks per stage)
ARCHITECTURES: dict[int, tuple[bool, tuple[int, int, int, int]]] = {
    18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3)),
}
# Published depths this module cannot build, only recognise in a wrong file.
_KNOWN = {**ARCHITECTURES, 101: (True, (3, 4, 23, 3)), 152: (True, (3, 8, 36, 3))}


class CheckpointError(Exception):
    """A checkpoint file is unreadable or is not the ResNet the encoder expects; nothing was loaded."""


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, and a shortcut (ResNet-50)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """A strided 1x1 projection with batch norm where the shape changes (keys `downsample.0`, `downsample.1`)."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNetEncoder(nn.Module):
    """The convolutional part of a ResNet; `forward` returns the features at strides 2, 4, 8, 16 and 32.

    Index 0 is the stem after its ReLU (before max pooling), 1..4 are `layer1`..`layer4`; `channels` holds
    their widths.
    """

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, depth: int, in_channels: int) -> None:
        super().__init__()
        if depth not in ARCHITECTURES:
            raise ValueError(f"ResNet depth must be one of {sorted(ARCHITECTURES)}, not {depth}")
        bottleneck, blocks = ARCHITECTURES[depth]
        block: type[BasicBlock] | type[Bottleneck] = Bottleneck if bottleneck else BasicBlock
        self.depth, self.in_channels = depth, in_channels
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        cin, self.channels = 64, [64]
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            stride = 1 if index == 0 else 2
            layers = []
            for i in range(count):
                layers.append(block(cin, planes, stride if i == 0 else 1))
                cin = planes * block.expansion
            self.add_module(f"layer{index + 1}", nn.Sequential(*layers))
            self.channels.append(cin)
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation (fan-out) for convolutions, identity batch norms: a sane start without a checkpoint."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.relu(self.bn1(self.conv1(x)))]
        y = self.maxpool(features[0])
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            y = stage(y)
            features.append(y)
        return features


class ResNetUNet(nn.Module):
    """Per-pixel class logits from a ResNet encoder and a U-Net decoder: (N, classes, H, W).

    Each decoder stage upsamples bilinearly to the next skip (strides 16, 8, 4, 2), concatenates it and applies
    a conv block; a last block at full resolution (no skip) feeds a 1x1 head. Stage widths are
    `decoder_width` x (16, 8, 4, 2, 1). H and W must be multiples of `size_multiple`.
    """

    size_multiple = 32

    def __init__(self, depth: int, in_channels: int, classes: int, decoder_width: int = 16) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(depth, in_channels)
        skips = self.encoder.channels
        widths = [decoder_width * 2 ** i for i in (4, 3, 2, 1, 0)]
        inputs = [skips[4] + skips[3], widths[0] + skips[2], widths[1] + skips[1], widths[2] + skips[0], widths[3]]
        self.decoder = nn.ModuleList([conv_block(cin, cout) for cin, cout in zip(inputs, widths)])
        self.head = nn.Conv2d(widths[-1], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = features[-1]
        for block, skip in zip(self.decoder[:-1], reversed(features[:-1])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.decoder[-1](y))


# ---------------------------------------------------------------------------------------------- checkpoints

@dataclass
class LoadReport:
    """What `load_pretrained` did: tensors loaded, file keys ignored, and how conv1 was adapted."""

    loaded: int
    ignored: list[str] = field(default_factory=list)
    conv1: str = ""

    def __str__(self) -> str:
        ignored = f"; ignored {', '.join(self.ignored)}" if self.ignored else ""
        return f"loaded {self.loaded} tensors{ignored}; conv1: {self.conv1}"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state_dict in a local file: raw, or under "state_dict"/"model"; a "module." prefix is removed."""
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"no checkpoint file at {path}") from exc
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a file it cannot read
        raise CheckpointError(f"{path} is not a PyTorch checkpoint that torch.load(weights_only=True) "
                              f"reads (a .pth/.pt of a state_dict, not a pickled model; safetensors is not "
                              f"supported): {exc}") from exc
    if isinstance(obj, Mapping):
        obj = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)), obj)
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state_dict (a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def adapt_conv1(weight: torch.Tensor, bands: int) -> torch.Tensor:
    """The first-convolution kernel (64, C, 7, 7) made (64, bands, 7, 7).

    Unchanged when bands == C. Otherwise every band gets the mean of the C input kernels times C / bands, so an
    image whose bands are all equal to a grey image g gives exactly the activations the original network gives
    on g repeated in its C bands (sum over bands of mean x C / bands = sum of the C kernels). Activation scales,
    hence the pretrained batch-norm statistics, stay valid.
    """
    channels = weight.shape[1]
    if bands == channels:
        return weight.clone()
    mean = weight.float().mean(dim=1, keepdim=True)
    return (mean * (channels / bands)).repeat(1, bands, 1, 1).to(weight.dtype)


def load_state(encoder: ResNetEncoder, state: Mapping[str, torch.Tensor], source: str = "the checkpoint") -> LoadReport:
    """Check `state` against `encoder` (every key, every shape), adapt conv1, then load it; see `load_pretrained`."""
    expected = encoder.state_dict()
    ignored = [k for k in state if k.startswith("fc.")]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    # Old published files predate num_batches_tracked; it only matters with momentum=None, so it may be absent.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})" for k, v in state.items()
             if k in expected and k != "conv1.weight" and v.shape != expected[k].shape]
    conv1 = state.get("conv1.weight")
    if conv1 is not None and (conv1.dim() != 4 or conv1.shape[0] != 64 or conv1.shape[2:] != (7, 7)):
        wrong.insert(0, f"conv1.weight {tuple(conv1.shape)} (expected (64, bands, 7, 7))")
    if missing or unexpected or wrong:
        guess = _guess_depth(state)
        looks = f" (it looks like a ResNet-{guess})" if guess and guess != encoder.depth else ""
        problems = [f"{label}: {_some(keys)}" for label, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
        raise CheckpointError(f"{source} is not a ResNet-{encoder.depth} state_dict as torchvision or timm "
                              f"publish it{looks}: " + "; ".join(problems))
    assert conv1 is not None  # not missing
    state["conv1.weight"] = adapt_conv1(conv1, encoder.in_channels)
    for key in expected:
        state.setdefault(key, expected[key])  # absent num_batches_tracked
    encoder.load_state_dict(state, strict=True)
    bands = conv1.shape[1]
    how = (f"copied ({bands} bands)" if bands == encoder.in_channels else
           f"{bands} -> {encoder.in_channels} bands: mean of the {bands} kernels x {bands}/{encoder.in_channels}")
    return LoadReport(loaded=len(state), ignored=ignored, conv1=how)


def load_pretrained(encoder: ResNetEncoder, path: str | os.PathLike[str],
                    in_channels: int | None = None) -> LoadReport:
    """Load a local ResNet checkpoint into `encoder`, adapting its first convolution to the encoder's bands.

    The file must be a ResNet state_dict of the encoder's depth, as torchvision or timm publish it (raw, under
    "state_dict" or "model", possibly with DataParallel's "module." prefix); `fc.*` is ignored. Any missing or
    unexpected key or wrong shape raises `CheckpointError` naming them, and leaves the encoder untouched.
    `in_channels`, when given, must equal the encoder's (a guard for callers that track bands separately).
    """
    if in_channels is not None and in_channels != encoder.in_channels:
        raise ValueError(f"in_channels={in_channels} but the encoder was built for {encoder.in_channels} bands")
    return load_state(encoder, read_checkpoint(path), source=str(path))


def _some(keys: list[str], limit: int = 5) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _guess_depth(state: Mapping[str, torch.Tensor]) -> int | None:
    """The published ResNet depth whose block layout matches the keys of `state`, if any."""
    blocks: list[set[int]] = [set(), set(), set(), set()]
    for key in state:
        match = re.match(r"layer([1-4])\.(\d+)\.", key)
        if match:
            blocks[int(match[1]) - 1].add(int(match[2]))
    layout = (any(".conv3." in k for k in state), tuple(len(b) for b in blocks))
    return next((depth for depth, arch in _KNOWN.items() if arch == layout), None)
