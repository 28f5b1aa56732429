"""``--from``: an encoder to start from, by name or path, and the U-Net built around it.

Names: ``geology`` is the shipped model with an encoder (rebuilt from the ONNX graph,
:mod:`training.custom.onnx_encoder`); ``terrain`` and ``spectral`` are the pretrained encoder checkpoints in
``training/encoders/`` (``python -m training pretrain-encoders`` makes them), a ``torch.save``'d dict::

    {"format": "deepstrata-encoder/1", "width": int, "depth": int, "bands": int, "stem": None or {"type": ...},
     "input": "zscore" or "raw", "state": Encoder state_dict, "source": str, "pretrained_on": [str],
     "held_out": [str]}

Any other ``.onnx`` or ``.pt`` path is read the same way. Band-count adaptation: an encoder made for C bands gets
a first convolution for B bands as :func:`training.resnet.adapt_conv1` does (the mean of the C kernels times
C / B per band), feature by feature behind a band-wise stem (line of sight, relief: channel f x B + b is feature
f of band b); a stem with per-band constants (log reflectance) fixes its bands, so another count is refused.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from ..nets import Encoder, UNet
from ..resnet import adapt_conv1
from .findings import Refused
from .source import INPUTS, Source, stem_channels, stem_from_spec

REPO = Path(__file__).resolve().parents[2]
FORMAT = "deepstrata-encoder/1"
NAMES = {"geology": "resources/models/geology_oli.onnx",
         "terrain": "training/encoders/terrain.pt",
         "spectral": "training/encoders/spectral.pt"}
FIRST = "blocks.0.0.weight"
PER_BAND_PARAMETERS = ("log_reflectance",)  # stems with per-band constants; every other stem works band by band


def resolve(spec: str) -> Path:
    """The file behind a ``--from`` name or path; a clear refusal when it is missing."""
    if spec in NAMES:
        path = REPO / NAMES[spec]
        if not path.exists():
            hint = ("run `python -m training pretrain-encoders` to make it" if spec in ("terrain", "spectral")
                    else "the checkout is incomplete")
            raise Refused(f"--from {spec}: {path} does not exist yet; {hint}.")
        return path
    path = Path(spec)
    if not path.exists():
        raise Refused(f"--from {spec}: no such file. Give one of {', '.join(NAMES)}, or a DeepStrata .onnx model "
                      "or encoder .pt checkpoint.")
    return path


def read_checkpoint(path: Path, name: str) -> Source:
    try:
        data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise Refused(f"{path} is not a checkpoint torch.load(weights_only=True) reads: {exc}") from exc
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise Refused(f"{path} is not a {FORMAT} checkpoint (format {found!r}).")
    missing = [k for k in ("width", "depth", "bands", "state", "input") if k not in data]
    if missing or data["input"] not in ("zscore", "raw"):
        raise Refused(f"{path} lacks {missing} or has input {data.get('input')!r} (zscore or raw).")
    state = {k: v for k, v in data["state"].items()}
    if FIRST not in state:
        raise Refused(f"{path}: its state has no {FIRST}; it is not a nets.Encoder state_dict.")
    cin, width, depth = int(state[FIRST].shape[1]), int(data["width"]), int(data["depth"])
    encoder = Encoder(cin, width, depth)
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise Refused(f"{path}: its state is not a nets.Encoder of width {width}, depth {depth}: {exc}") from exc
    spec = data.get("stem")
    stem = stem_from_spec(dict(spec)) if spec else None
    bands = int(data["bands"])
    if stem is not None and stem_channels(stem, bands) != cin:
        raise Refused(f"{path}: its stem gives {stem_channels(stem, bands)} channels, its encoder takes {cin}.")
    return Source(name=name, path=str(path), kind="checkpoint", width=width, depth=depth, encoder_bands=cin,
                  state=state, stem=stem, stem_spec={**dict(spec), "input": data["input"]} if spec else None,
                  stem_bands=bands if stem is not None else None, input=str(data["input"]),
                  details={k: data.get(k) for k in ("source", "pretrained_on", "held_out", "band_names",
                                                    "pixel_sizes_m")})


def load_source(spec: str) -> Source:
    path = resolve(spec)
    if path.suffix.lower() == ".onnx":
        from .onnx_encoder import read_onnx_encoder

        source = read_onnx_encoder(str(path), spec)
    else:
        source = read_checkpoint(path, spec)
    if source.input not in INPUTS:
        raise Refused(f"{path}: unknown input normalisation {source.input!r} (one of {INPUTS}).")
    return source


def adapt_first(weight: torch.Tensor, per_band: int, trained_bands: int, bands: int) -> torch.Tensor:
    """The first convolution's kernel (out, per_band x trained_bands, kh, kw) made (out, per_band x bands, kh, kw):
    stem channels are feature-major (channel f x B + b, as every band-wise stem gives them), and each of the
    ``per_band`` features is adapted on its own as :func:`training.resnet.adapt_conv1` adapts a conv1."""
    if bands == trained_bands:
        return weight.clone()
    out, _, kh, kw = weight.shape
    grouped = weight.reshape(out, per_band, trained_bands, kh, kw)
    return torch.stack([adapt_conv1(grouped[:, f], bands) for f in range(per_band)], dim=1).reshape(
        out, per_band * bands, kh, kw)


def build_unet(source: Optional[Source], bands: int, outputs: int, width: int, depth: int) -> tuple[UNet, str]:
    """A U-Net for ``bands`` input bands and ``outputs`` channels: fresh, or with the source's stem and encoder,
    the first convolution adapted to the band count; and a sentence on how the bands were matched."""
    if source is None:
        return UNet(bands, outputs, width, depth), "fresh"
    trained = int(source.stem_bands or source.encoder_bands) if source.stem is not None else source.encoder_bands
    per_band = source.encoder_bands // trained
    kind = (source.stem_spec or {}).get("type")
    if bands != trained and kind in PER_BAND_PARAMETERS:
        raise Refused(f"--from {source.name}: its {kind} stem has parameters for each of its {trained} bands "
                      f"(as trained), this raster gives {bands}: choose {trained} bands with --bands, or start from "
                      "an encoder without such a stem (or none).")
    model = UNet(per_band * bands, outputs, source.width, source.depth,
                 stem=copy.deepcopy(source.stem) if source.stem is not None else None)
    state = dict(source.state)
    state[FIRST] = adapt_first(state[FIRST], per_band, trained, bands)
    model.encoder.load_state_dict(state)
    if bands == trained:
        return model, f"first convolution copied ({bands} band(s), as trained)"
    return model, (f"first convolution adapted from {trained} to {bands} bands (per stem feature, the mean of the "
                   f"{trained} kernels x {trained}/{bands}, as resnet.adapt_conv1)")


@torch.no_grad()
def recalibrate_batchnorm(encoder: nn.Module, x: torch.Tensor) -> None:
    """Re-express every batch norm with the statistics of its input on ``x`` while keeping the eval function:
    a BN computing a x + c becomes running mean m, running var v - eps, weight a sqrt(v), bias c + a m. Eval
    outputs are unchanged; in train mode (batch statistics) it then stays close to a x + c instead of
    renormalising features that a fused export left unnormalised."""
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
    norms = [m for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)]

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        stats[module] = (inputs[0].mean(dim=(0, 2, 3)), inputs[0].var(dim=(0, 2, 3), unbiased=False))

    handles = [m.register_forward_pre_hook(hook) for m in norms]
    try:
        encoder.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    for bn in norms:
        assert isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None and bn.running_mean is not None
        mean, var = stats[bn]
        var = var.clamp_min(1e-3)
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        c = bn.bias - bn.running_mean * a
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var - bn.eps)
        bn.weight.copy_(a * torch.sqrt(var))
        bn.bias.copy_(c + a * mean)
