"""The model families the training tools train and export: all fully convolutional, any tile size.

- UNet: per-pixel segmentation (landforms, geology); tile edges must be a multiple of 2**depth.
- PatchClassifier: one class per chip.
- ConvAutoencoder: reconstructs its input (anomaly detection); its encoder can seed the others (transfer).
- RelativeRelief: a first layer for DEM models that removes absolute elevation inside the graph.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU (receptive radius 2 at this scale)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def local_mean(z: torch.Tensor, radius: int) -> torch.Tensor:
    """The mean over a (2r+1)^2 window around each cell, over the cells inside the raster at its edges."""
    return F.avg_pool2d(z, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


class RelativeRelief(nn.Module):
    """Elevation minus its local mean over a (2r+1)^2 window, divided by `scale` metres: one output channel per
    radius (a single radius gives one channel, several give a multi-scale stack).

    Computed in the graph, so the model never sees absolute elevation and tiles need no per-tile statistics;
    the card's margin must cover the largest radius.
    """

    def __init__(self, radius: int | Sequence[int], scale: float) -> None:
        super().__init__()
        self.radii = (radius,) if isinstance(radius, int) else tuple(radius)
        if not self.radii or min(self.radii) < 1:
            raise ValueError(f"relief radii must be positive integers, not {radius!r}")
        self.radius, self.scale = max(self.radii), scale

    @property
    def channels(self) -> int:
        return len(self.radii)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        reliefs = [z - local_mean(z, r) for r in self.radii]
        return (reliefs[0] if len(reliefs) == 1 else torch.cat(reliefs, dim=1)) / self.scale


class Encoder(nn.Module):
    """`depth` levels of conv blocks with 2x2 max pooling between them; widths double per level."""

    def __init__(self, cin: int, width: int, depth: int) -> None:
        super().__init__()
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.widths = widths
        self.blocks = nn.ModuleList([conv_block(cin, widths[0])] +
                                    [conv_block(widths[i], widths[i + 1]) for i in range(depth)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            features.append(block(F.max_pool2d(features[-1], 2)))
        return features


class UNet(nn.Module):
    """A small U-Net: encoder, bilinear upsampling with skip connections, a 1x1 head of class logits."""

    def __init__(self, cin: int, classes: int, width: int = 16, depth: int = 3, stem: nn.Module | None = None):
        super().__init__()
        self.stem = stem or nn.Identity()
        self.encoder = Encoder(cin, width, depth)
        w = self.encoder.widths
        self.decoder = nn.ModuleList([conv_block(w[i + 1] + w[i], w[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(w[0], classes, 1)
        self.size_multiple = 2 ** depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(self.stem(x))
        y = features[-1]
        for block, skip in zip(self.decoder, reversed(features[:-1])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return self.head(y)


class PatchClassifier(nn.Module):
    """The encoder, global average pooling and a linear layer: (N, classes) logits per chip."""

    def __init__(self, cin: int, classes: int, width: int = 16, depth: int = 3, stem: nn.Module | None = None):
        super().__init__()
        self.stem = stem or nn.Identity()
        self.encoder = Encoder(cin, width, depth)
        self.head = nn.Linear(self.encoder.widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.stem(x))[-1].mean(dim=(2, 3)))


class ConvAutoencoder(nn.Module):
    """Encoder plus a mirror decoder without skips (so it must compress): reconstructs its (normalised) input."""

    def __init__(self, cin: int, width: int = 16, depth: int = 2, stem: nn.Module | None = None):
        super().__init__()
        self.stem = stem or nn.Identity()
        self.encoder = Encoder(cin, width, depth)
        w = self.encoder.widths
        self.decoder = nn.ModuleList([conv_block(w[i + 1], w[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(w[0], cin, 1)
        self.size_multiple = 2 ** depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(self.stem(x))
        y = features[-1]
        for block, skip in zip(self.decoder, reversed(features[:-1])):
            y = block(F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False))
        return self.head(y)


def receptive_radius(depth: int) -> int:
    """Theoretical receptive radius, in input pixels, of an encoder and decoder of `depth` levels.

    At level l (scale 2**l) each conv block adds 2 x 2**l, each 2x2 max pool 2**l, and each bilinear upsampling
    from level l+1 adds 2**(l+1). Exact tiling needs a margin this large; the effective radius is much smaller,
    which is what blending over a smaller overlap relies on.
    """
    blocks = sum(2 * 2 ** level for level in range(depth + 1)) + sum(2 * 2 ** level for level in range(depth))
    pools = sum(2 ** level for level in range(depth))
    upsamples = sum(2 ** (level + 1) for level in range(depth))
    return blocks + pools + upsamples


class ReliefAutoencoder(nn.Module):
    """A DEM autoencoder that ignores absolute elevation: the local mean over a (2r+1)^2 window passes through,
    and a :class:`ConvAutoencoder` reconstructs the relief around it. Output = local mean + reconstructed relief,
    the input's shape, so the reconstruction error is the relief the autoencoder could not explain (pits, mounds,
    cuts, spikes), in the input's units."""

    def __init__(self, radius: int, scale: float, width: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.radius, self.scale = radius, scale
        self.autoencoder = ConvAutoencoder(1, width, depth)
        self.encoder = self.autoencoder.encoder  # for training.train's freeze schedule and transfer
        self.size_multiple = self.autoencoder.size_multiple

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mean = local_mean(z, self.radius)
        return mean + self.autoencoder((z - mean) / self.scale) * self.scale


#: The eight principal directions (row step, column step), counter-clockwise from east as in training.geomorphons.
DIRECTIONS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


class LineOfSight(nn.Module):
    """For each of the eight principal directions, the steepest upward and downward slope from a cell to the
    cells along the line out to ``radius_m``: 16 channels, each ``sign(t) log(1 + |t|)`` of
    ``t = tan(angle) / tan(flat_deg)``, so the flatness threshold sits at +-log 2 and steep slopes stay bounded.

    These are the quantities geomorphons are built from (the largest and smallest elevation angle per
    direction), computed from elevation differences only, so absolute elevation never reaches the network.
    ``cell_m`` is the pixel size the model is trained at; the card's margin must cover the line length.
    """

    def __init__(self, cell_m: float, radius_m: float, flat_deg: float = 1.0) -> None:
        super().__init__()
        import math

        self.lines: list[tuple[int, int, list[float]]] = []
        for dy, dx in DIRECTIONS:
            step_m = cell_m * math.hypot(dy, dx)
            count = int(math.floor(radius_m / step_m + 1e-9))
            if count < 1:
                raise ValueError(f"a {radius_m} m line is shorter than one {step_m:g} m step")
            self.lines.append((dy, dx, [k * step_m for k in range(1, count + 1)]))
        self.pad = max(len(d) * max(abs(dy), abs(dx)) for dy, dx, d in self.lines)
        self.unit = math.tan(math.radians(flat_deg))
        self.channels = 2 * len(DIRECTIONS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w, p = z.shape[-2], z.shape[-1], self.pad
        padded = F.pad(z, (p, p, p, p), mode="replicate")
        features = []
        for dy, dx, distances in self.lines:
            slopes = [(padded[:, :, p + dy * k:p + dy * k + h, p + dx * k:p + dx * k + w] - z) / d
                      for k, d in enumerate(distances, start=1)]
            stacked = torch.stack(slopes, dim=0)
            features += [stacked.amax(dim=0), stacked.amin(dim=0)]
        t = torch.cat(features, dim=1) / self.unit
        return torch.sign(t) * torch.log1p(torch.abs(t))
