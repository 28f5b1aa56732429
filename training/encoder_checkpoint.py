"""The pretrained-encoder checkpoint (``deepstrata-encoder/1``): write one, read one, seed a U-Net from it.

A checkpoint is a dict saved with ``torch.save`` (plain types and tensors only, so ``weights_only=True`` loads
it)::

    {"format": "deepstrata-encoder/1", "width": 16, "depth": 2,
     "bands": 1,                      # input channels of the stem (or of the encoder when there is no stem)
     "stem": None or a training.stems spec, "input": "raw" or "zscore",
     "state": nets.Encoder.state_dict(),   # its input channels are stems.stem_channels(stem, bands)
     "source": "one line", "pretrained_on": [...], "held_out": [...],   # paths relative to ../shared/data
     "band_names": [...], "pixel_sizes_m": [...]}

``input`` says what the bands must hold before the stem: ``raw`` (elevation in metres, as read) or ``zscore``
(each band standardised by its own raster's mean and standard deviation over valid pixels).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from .nets import Encoder, UNet
from .resnet import adapt_conv1
from .stems import make_stem, stem_channels

FORMAT = "deepstrata-encoder/1"
KEYS = ("format", "width", "depth", "bands", "stem", "input", "state", "source", "pretrained_on", "held_out",
        "band_names", "pixel_sizes_m")
INPUTS = ("raw", "zscore")
FIRST_CONV = "blocks.0.0.weight"


def checkpoint(encoder: Encoder, *, bands: int, stem: Optional[Mapping[str, Any]], input: str, source: str,
               pretrained_on: list[str], held_out: list[str], band_names: list[str],
               pixel_sizes_m: list[float]) -> dict[str, Any]:
    """The checkpoint dict of a trained ``encoder`` (its tensors copied, detached, contiguous)."""
    if input not in INPUTS:
        raise ValueError(f"input is one of {INPUTS}, not {input!r}")
    first = encoder.state_dict()[FIRST_CONV]
    if first.shape[1] != stem_channels(stem, bands):
        raise ValueError(f"the encoder takes {first.shape[1]} channels, the stem gives {stem_channels(stem, bands)}")
    return {"format": FORMAT, "width": int(encoder.widths[0]), "depth": len(encoder.widths) - 1, "bands": int(bands),
            "stem": None if stem is None else dict(stem), "input": input,
            "state": {k: v.detach().clone().contiguous() for k, v in encoder.state_dict().items()},
            "source": source, "pretrained_on": list(pretrained_on), "held_out": list(held_out),
            "band_names": list(band_names), "pixel_sizes_m": [float(p) for p in pixel_sizes_m]}


def save(document: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write atomically (a temporary file renamed over ``path``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    torch.save(dict(document), partial)
    os.replace(partial, target)
    return target


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint at ``path``, its keys and format checked."""
    document = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint")
    missing = [k for k in KEYS if k not in document]
    if missing:
        raise ValueError(f"{path} lacks {missing}")
    if document["input"] not in INPUTS:
        raise ValueError(f"{path}: input is one of {INPUTS}, not {document['input']!r}")
    return document


def adapt_first_conv(weight: torch.Tensor, spec: Optional[Mapping[str, Any]], pretrained_bands: int,
                     bands: int) -> torch.Tensor:
    """The first convolution's kernel (out, k x pretrained_bands, kh, kw) made (out, k x bands, kh, kw).

    Stem channels are feature-major (channel ``f * bands + b``), so each of the k stem features is adapted on
    its own as :func:`training.resnet.adapt_conv1` adapts a ResNet's conv1: every band gets the mean of the
    pretrained kernels over bands, times pretrained_bands / bands (an image whose bands are all equal gives the
    activations the pretrained network gives that band repeated). Unchanged when the band counts agree.
    """
    if bands < 1:
        raise ValueError(f"bands must be >= 1, not {bands}")
    if bands == pretrained_bands:
        return weight.clone()
    per_band = stem_channels(spec, 1)
    if weight.shape[1] != per_band * pretrained_bands:
        raise ValueError(f"first conv takes {weight.shape[1]} channels, not {per_band} x {pretrained_bands}")
    out, _, kh, kw = weight.shape
    grouped = weight.reshape(out, per_band, pretrained_bands, kh, kw)
    adapted = [adapt_conv1(grouped[:, f], bands) for f in range(per_band)]
    return torch.stack(adapted, dim=1).reshape(out, per_band * bands, kh, kw)


def encoder_state(document: Mapping[str, Any], bands: Optional[int] = None) -> dict[str, torch.Tensor]:
    """The encoder weights, the first convolution adapted to ``bands`` input bands (default: the checkpoint's)."""
    state = {k: v.clone() for k, v in document["state"].items()}
    if bands is not None:
        state[FIRST_CONV] = adapt_first_conv(state[FIRST_CONV], document["stem"], int(document["bands"]), bands)
    return state


def unet_from_document(document: Mapping[str, Any], bands: int, classes: int) -> UNet:
    """``nets.UNet(stem_channels, classes, width, depth, stem=make_stem(spec))`` with the pretrained encoder."""
    unet = UNet(stem_channels(document["stem"], bands), classes, width=int(document["width"]),
                depth=int(document["depth"]), stem=make_stem(document["stem"]))
    unet.encoder.load_state_dict(encoder_state(document, bands))
    return unet


def unet_from_checkpoint(path: str | os.PathLike[str], bands: int, classes: int) -> UNet:
    """A U-Net for ``bands`` input bands and ``classes`` classes whose encoder is the checkpoint's; the stem is
    the checkpoint's (no parameters), the decoder and head start fresh (from torch's current random state)."""
    return unet_from_document(load(path), bands, classes)


def scratch_unet(document: Mapping[str, Any], bands: int, classes: int) -> UNet:
    """The same U-Net as :func:`unet_from_document`, with a freshly initialised encoder (the baseline)."""
    return UNet(stem_channels(document["stem"], bands), classes, width=int(document["width"]),
                depth=int(document["depth"]), stem=make_stem(document["stem"]))
