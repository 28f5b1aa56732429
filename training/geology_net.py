"""The geology network: per-pixel, on the six common bands in reflectance, trained on library mixtures.

:class:`SpectralNet` takes reflectance 0..1 (card unit ``reflectance``, bands blue, green, red, nir, swir1,
swir2), floors it at 0.002, takes logs (band ratios become differences, a shade factor a common offset), adds the
band-to-band log differences and the log brightness, standardises them with fixed statistics of the training
pixels, and classifies each pixel with a small 1x1-convolution network. It sees no neighbours: the output
cannot depend on the tiling, and the card's margin is 0.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

FLOOR = 0.002
PAIRS = list(itertools.combinations(range(6), 2))


def _features(x: torch.Tensor) -> torch.Tensor:
    logs = torch.log(torch.clamp(x, min=FLOOR))
    diffs = [logs[:, i:i + 1] - logs[:, j:j + 1] for i, j in PAIRS]
    return torch.cat([logs, *diffs, logs.mean(dim=1, keepdim=True)], dim=1)


FEATURES = 6 + len(PAIRS) + 1


class SpectralNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, classes: int, width: int = 96, depth: int = 3) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, FEATURES, 1, 1))
        self.register_buffer("std", torch.ones(1, FEATURES, 1, 1))
        layers: list[nn.Module] = []
        cin = FEATURES
        for _ in range(depth):
            layers += [nn.Conv2d(cin, width, 1), nn.ReLU()]
            cin = width
        layers.append(nn.Conv2d(cin, classes, 1))
        self.body = nn.Sequential(*layers)

    def set_statistics(self, x: np.ndarray) -> None:
        """Standardise the features with their mean and sd over training pixels `x` (n, 6)."""
        f = _features(torch.from_numpy(x[:, :, None, None]).float())
        self.mean.copy_(f.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(f.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((_features(x) - self.mean) / self.std)


@dataclass(frozen=True)
class Recipe:
    width: int = 96
    depth: int = 3
    pixels: int = 400_000
    epochs: int = 12
    batch: int = 2048
    lr: float = 3e-3
    seed: int = 0


@dataclass
class Fitted:
    model: SpectralNet
    seconds: float
    validation_accuracy: float
    epochs: int


def fit(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, classes: list[int], recipe: Recipe
        ) -> Fitted:
    """Train on pixels `x` (n, 6) with class values `y`; keep the epoch with the best accuracy on (xv, yv)."""
    torch.manual_seed(recipe.seed)
    start = time.time()
    index = {c: i for i, c in enumerate(classes)}
    yt = torch.tensor([index[int(v)] for v in y])
    yvt = np.array([index[int(v)] for v in yv])
    model = SpectralNet(len(classes), recipe.width, recipe.depth)
    model.set_statistics(x)
    xt = torch.from_numpy(x[:, :, None, None]).float()
    xvt = torch.from_numpy(xv[:, :, None, None]).float()
    counts = torch.bincount(yt, minlength=len(classes)).float()
    weights = (counts.sum() / counts.clamp(min=1)) ** 0.5
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=1e-4)
    steps = recipe.epochs * ((len(x) + recipe.batch - 1) // recipe.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.lr, total_steps=steps)
    best, best_state = -1.0, None
    generator = torch.Generator().manual_seed(recipe.seed)
    for _ in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), recipe.batch):
            batch = order[i:i + recipe.batch]
            loss = F.cross_entropy(model(xt[batch])[:, :, 0, 0], yt[batch], weight=weights / weights.mean())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            predicted = model(xvt)[:, :, 0, 0].argmax(dim=1).numpy()
        accuracy = float((predicted == yvt).mean())
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    return Fitted(model.eval(), time.time() - start, best, recipe.epochs)


def predict(model: SpectralNet, x: np.ndarray, classes: list[int]) -> np.ndarray:
    """Class values for pixels `x` (n, 6) in PyTorch (the report scores the exported file through the engine)."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(x[:, :, None, None])).float())[:, :, 0, 0]
    return np.asarray(classes)[out.argmax(dim=1).numpy()]
