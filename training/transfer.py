"""Transfer learning: seed a segmentation encoder, freeze it for a few epochs, then fine-tune everything.

Two sources of encoder weights (issue #3):

(a) our own autoencoder pretrained on unlabelled rasters: `unet_from_autoencoder(autoencoder, classes)`;
(b) a local ResNet checkpoint: `model = ResNetUNet(18, bands, classes)` then
    `resnet.load_pretrained(model.encoder, path)`.

The schedule, per epoch, after `model.train()`::

    optimiser = torch.optim.AdamW(param_groups(model, encoder_lr=1e-4, decoder_lr=1e-3))
    for epoch in range(epochs):
        model.train()
        schedule(model.encoder, frozen=epoch < freeze_epochs)
        ...

Every parameter is in the optimiser from the start: a frozen one gets no gradient, so the optimiser skips it,
and it starts learning as soon as it is unfrozen, without rebuilding the optimiser.
"""
from __future__ import annotations

import copy
from typing import Any

from torch import nn

from training.nets import ConvAutoencoder, UNet


def freeze(module: nn.Module) -> None:
    """No gradients for `module`'s parameters (their batch-norm statistics still move: see `set_bn_eval`)."""
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)


def set_bn_eval(module: nn.Module) -> None:
    """Put every batch norm in `module` in eval mode: it normalises with, and no longer updates, its running
    statistics. `model.train()` undoes this, so call it after each `train()`."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def schedule(encoder: nn.Module, frozen: bool) -> None:
    """One epoch of the freeze-then-fine-tune schedule: a frozen encoder also keeps its batch-norm statistics."""
    if frozen:
        freeze(encoder)
        set_bn_eval(encoder)
    else:
        unfreeze(encoder)


def param_groups(model: nn.Module, encoder_lr: float, decoder_lr: float) -> list[dict[str, Any]]:
    """Optimiser groups: `model.encoder`'s parameters at `encoder_lr`, all the others at `decoder_lr`."""
    encoder = model.get_submodule("encoder")
    ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": list(encoder.parameters()), "lr": encoder_lr}, {"params": rest, "lr": decoder_lr}]


def unet_from_autoencoder(autoencoder: ConvAutoencoder, classes: int) -> UNet:
    """A `UNet` with the autoencoder's encoder weights (same bands, width and depth) and a copy of its stem.

    The decoder and head start fresh. Equivalent by hand:
    `UNet(cin, classes, width, depth).encoder.load_state_dict(autoencoder.encoder.state_dict())`.
    """
    encoder = autoencoder.encoder
    first = next(m for m in encoder.modules() if isinstance(m, nn.Conv2d))
    unet = UNet(first.in_channels, classes, width=encoder.widths[0], depth=len(encoder.widths) - 1,
                stem=copy.deepcopy(autoencoder.stem))
    unet.encoder.load_state_dict(encoder.state_dict())
    return unet
