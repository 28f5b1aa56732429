"""Rebuild a ``nets.Encoder`` (and its fixed stem) from a DeepStrata-made ONNX model: our U-Net or autoencoder
exports, where torch's exporter fused each Conv + BatchNorm into one Conv with a bias.

The graph's Conv nodes are walked in order and matched to the encoder's shapes (cin -> w, w -> w, then per level
w_{i-1} -> w_i, w_i -> w_i with w_i = w 2^i, each followed by a ReLU and levels joined by 2x2 max pooling);
width, depth and input channels follow. Each fused weight and bias goes into the conv, and its BatchNorm becomes
identity plus that bias (weight 1, bias b, running mean 0, running variance 1 - eps). The ops before the first
Conv are the stem: rebuilt from the card's ``training.stem`` spec, or recognised (line of sight: parameters from
the card's text; relative relief and log reflectance: parameters read from the graph). The result is checked
against the graph itself: every level's features are taken from onnxruntime as extra outputs and compared with
the rebuilt stem + encoder; a model that does not reproduce is refused, never guessed at.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Optional

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from deepstrata.inference.engine.card import ModelCard, parse_card

from ..export import CARD_KEY
from ..nets import Encoder
from .findings import Refused
from .source import Source, stem_channels, stem_from_spec

TOLERANCE = 1e-4   # largest feature difference, relative to max(1, largest feature)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    out[node.output[0]] = np.asarray(onnx.helper.get_attribute_value(a))
    return out


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of a 3x3, stride 1, pad 1 convolution with constant weights; None for any other."""
    weight = consts.get(node.input[1])
    a = _attrs(node)
    if weight is None or weight.ndim != 4 or tuple(weight.shape[2:]) != (3, 3) or list(a.get("pads", [])) != [1] * 4 \
            or list(a.get("strides", [1, 1])) != [1, 1] or a.get("group", 1) != 1 \
            or list(a.get("dilations", [1, 1])) != [1, 1]:
        return None
    bias = consts.get(node.input[2]) if len(node.input) > 2 else None
    return weight.astype(np.float32), (np.zeros(weight.shape[0], np.float32) if bias is None else bias.astype(np.float32))


def walk(graph: onnx.GraphProto, consts: dict[str, np.ndarray], path: str) -> tuple[list, list[str], str]:
    """The encoder's (weight, bias) pairs per level, each level's output tensor, and the first conv's input."""
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    producer = {}
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
        for name in node.output:
            producer[name] = node
    convs = [n for n in graph.node if n.op_type == "Conv"]

    def relu_after(node: onnx.NodeProto) -> Optional[str]:
        users = consumers[node.output[0]]
        return users[0].output[0] if len(users) == 1 and users[0].op_type == "Relu" else None

    first = _conv(convs[0], consts) if convs else None
    if first is None:
        raise Refused(f"{path} does not start with a 3x3 convolution after its stem: it is not one of our U-Net or "
                      "autoencoder exports (nets.Encoder), so no encoder can be taken from it.")
    width, prev = int(first[0].shape[0]), int(first[0].shape[1])
    levels: list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = []
    outputs: list[str] = []
    for pos in range(0, len(convs) - 1, 2):
        a, b = convs[pos], convs[pos + 1]
        wa, wb, wi = _conv(a, consts), _conv(b, consts), width * 2 ** len(levels)
        if wa is None or wb is None or wa[0].shape[:2] != (wi, prev) or wb[0].shape[:2] != (wi, wi):
            break
        ra, rb = relu_after(a), relu_after(b)
        if ra is None or rb is None or b.input[0] != ra:
            break
        if levels:
            pool = producer.get(a.input[0])
            if pool is None or pool.op_type != "MaxPool" or pool.input[0] != outputs[-1] \
                    or list(_attrs(pool).get("kernel_shape", [])) != [2, 2]:
                break
        levels.append((wa, wb))
        outputs.append(rb)
        prev = wi
    if len(levels) < 2:
        raise Refused(f"{path}: the convolutions after its stem do not form a nets.Encoder of depth >= 1 "
                      f"(shapes {[tuple(c[0][0].shape) for c in levels] or tuple(first[0].shape)}).")
    return levels, outputs, convs[0].input[0]


def load_fused(levels: list, cin: int, width: int) -> Encoder:
    """An Encoder holding the fused weights, each BatchNorm set to identity plus the fused bias."""
    encoder = Encoder(cin, width, len(levels) - 1)
    with torch.no_grad():
        for block, pair in zip(encoder.blocks, levels):
            layers = list(block.children())
            for (c, n), (weight, bias) in zip(((0, 1), (3, 4)), pair):
                conv, bn = layers[c], layers[n]
                assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                assert bn.running_mean is not None and bn.running_var is not None
                conv.weight.copy_(torch.from_numpy(weight))
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    return encoder.eval()


def _stem_nodes(graph: onnx.GraphProto, first_input: str) -> list[onnx.NodeProto]:
    producer = {o: n for n in graph.node for o in n.output}
    seen, stack = set(), [first_input]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input)
    return [n for n in graph.node if id(n) in seen and n.op_type != "Constant"]


def _operand(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> np.ndarray:
    values = [consts[i] for i in node.input if i in consts]
    if len(values) != 1:
        raise Refused(f"the stem's {node.op_type} node has no single constant operand; it cannot be rebuilt.")
    return values[0]


def _first(nodes: list[onnx.NodeProto], op: str) -> onnx.NodeProto:
    found = [n for n in nodes if n.op_type == op]
    if not found:
        raise Refused(f"the stem has no {op} node where one was expected; it cannot be rebuilt.")
    return found[0]


def recognise_stem(card: ModelCard, nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray],
                   path: str) -> dict[str, Any]:
    """The stem spec of a graph whose first convolution follows ``nodes`` (see the module docstring)."""
    spec = card.training.get("stem")
    if isinstance(spec, dict) and spec.get("type"):
        return dict(spec)
    ops = {n.op_type for n in nodes}
    architecture, text = str(card.training.get("architecture", "")), json.dumps(card.raw)
    if "LineOfSight" in architecture or {"Pad", "Sign"} <= ops:
        line = re.search(r"out to ([0-9.]+) m at ([0-9.]+) m cells", architecture)
        flat = re.search(r"flat(?:ness)? ([0-9.]+) deg", text)
        missing = [what for what, found in (("line length and cell size ('out to R m at C m cells' in "
                                             "training.architecture)", line), ("flatness angle ('flat F deg')", flat))
                   if not found]
        if missing or line is None or flat is None:
            raise Refused(f"{path} starts with a line-of-sight stem but its card does not give its "
                          f"{' or '.join(missing)}: the stem cannot be rebuilt reliably, so --from it is refused.")
        return {"type": "line_of_sight", "cell_m": float(line[2]), "radius_m": float(line[1]),
                "flat_deg": float(flat[1]), "input": "mean"}
    if "AveragePool" in ops and "Log" not in ops:
        pools = [n for n in nodes if n.op_type == "AveragePool"]
        radii = [(int(_attrs(p)["kernel_shape"][0]) - 1) // 2 for p in pools]
        scale = float(np.asarray(_operand(_first(nodes, "Div"), consts)).ravel()[0])
        return {"type": "relative_relief", "radius" if len(radii) == 1 else "radii": radii[0] if len(radii) == 1
                else radii, "scale": scale, "input": "mean"}
    if {"Clip", "Log", "Mul", "Add", "Sub", "Div"} <= ops:
        clip = _first(nodes, "Clip")
        floor = float(np.asarray(consts[clip.input[1]]).ravel()[0]) if len(clip.input) > 1 and \
            clip.input[1] in consts else float(_attrs(clip).get("min", 0.0))

        def vector(op: str) -> list[float]:
            return [float(v) for v in np.asarray(_operand(_first(nodes, op), consts)).ravel()]
        return {"type": "log_reflectance", "scale": vector("Mul"), "shift": vector("Add"), "log_mean": vector("Sub"),
                "log_std": vector("Div"), "floor": floor, "input": "fixed"}
    raise Refused(f"{path} starts with a stem ({', '.join(sorted(ops))}) this tool cannot rebuild and its card has "
                  "no training.stem spec: --from it is refused.")


def verify(proto: onnx.ModelProto, stem: Optional[nn.Module], encoder: Encoder, outputs: list[str], bands: int,
           multiple: int, seed: int = 0) -> tuple[float, float]:
    """(largest |difference|, largest |feature|) between the graph's level outputs and the rebuilt
    stem + encoder on a random input."""
    import onnxruntime

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    del model.graph.output[:]
    for name in outputs:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    size = -(-64 // multiple) * multiple
    x = (np.random.default_rng(seed).standard_normal((1, bands, size, size)) * 3).astype(np.float32)
    got = session.run(outputs, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        inputs = torch.from_numpy(x)
        features = encoder.eval()(stem.eval()(inputs) if stem is not None else inputs)
    worst = max(float(np.abs(g - f.numpy()).max()) for g, f in zip(got, features))
    return worst, max(float(np.abs(g).max()) for g in got)


def read_onnx_encoder(path: str, name: str) -> Source:
    try:
        proto = onnx.load(path)
    except Exception as exc:  # onnx raises DecodeError and others for a file it cannot parse
        raise Refused(f"{path} is not an ONNX model onnx can read: {exc}") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    if CARD_KEY not in meta:
        raise Refused(f"{path} has no DeepStrata card: only DeepStrata-made models can seed an encoder.")
    card = parse_card(meta[CARD_KEY], path)
    consts = _constants(proto.graph)
    levels, outputs, first_input = walk(proto.graph, consts, path)
    cin, width = int(levels[0][0][0].shape[1]), int(levels[0][0][0].shape[0])
    encoder = load_fused(levels, cin, width)
    graph_input = proto.graph.input[0].name
    spec, stem = None, None
    if first_input != graph_input:
        spec = recognise_stem(card, _stem_nodes(proto.graph, first_input), consts, path)
        stem = stem_from_spec(spec)
        if stem_channels(stem, len(card.input.bands)) != cin:
            raise Refused(f"{path}: the rebuilt {spec['type']} stem gives {stem_channels(stem, len(card.input.bands))} "
                          f"channels but the encoder takes {cin}; --from it is refused.")
    worst, scale = verify(proto, stem, encoder, outputs, len(card.input.bands), card.input.size_multiple)
    if worst > TOLERANCE * max(1.0, scale):
        raise Refused(f"the encoder rebuilt from {path} does not reproduce the graph's features (largest difference "
                      f"{worst:.3g} for features up to {scale:.3g})"
                      + (f": the {spec['type']} stem's parameters from the card are not those in the graph" if spec
                         else "") + "; --from it is refused.")
    return Source(name=name, path=path, kind="onnx", width=width, depth=len(levels) - 1, encoder_bands=cin,
                  state={k: v.clone() for k, v in encoder.state_dict().items()}, stem=stem, stem_spec=spec,
                  stem_bands=len(card.input.bands) if stem is not None else None,
                  input=str(spec.get("input", "zscore")) if spec else "zscore",
                  normalization=card.to_dict()["input"].get("normalization"), fused=True,
                  pixel_size_m=card.input.pixel_size_m, verified=worst,
                  details={"card_name": card.name, "feature_scale": scale, "levels": len(levels)})
