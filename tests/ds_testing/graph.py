"""Small helpers to assemble ONNX graphs with onnx.helper (opset 17) and seeded float32 weights."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # onnxruntime 1.32 reads IR up to 10; 8 keeps the files loadable by older runtimes too
INPUT = "input"
OUTPUT = "output"


def tensor_info(name: str, channels: int | str, height: int | str = "H", width: int | str = "W",
                batch: int | str = "N") -> onnx.ValueInfoProto:
    """A float32 NCHW value info; string dims are symbolic (dynamic), ints are fixed."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, channels, height, width])


def const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def conv(name: str, x: str, weight: np.ndarray, bias: np.ndarray | None, pads: int,
         group: int = 1) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    """A Conv node named `name` (its output has the same name) with its initialisers."""
    inits = [const(f"{name}_w", weight)]
    inputs = [x, f"{name}_w"]
    if bias is not None:
        inits.append(const(f"{name}_b", bias))
        inputs.append(f"{name}_b")
    k = weight.shape[-1]
    node = helper.make_node("Conv", inputs, [name], kernel_shape=[k, k], pads=[pads] * 4, group=group)
    return node, inits


def he_weights(rng: np.random.Generator, out_ch: int, in_ch: int, k: int = 3) -> np.ndarray:
    return (rng.standard_normal((out_ch, in_ch, k, k)) * np.sqrt(2.0 / (in_ch * k * k))).astype(np.float32)


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Sequence[onnx.ValueInfoProto],
               outputs: Sequence[onnx.ValueInfoProto], initializers: Sequence[onnx.TensorProto] = (),
               name: str = "ds_testing") -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="deepstrata-tests")
    model.ir_version = IR_VERSION
    return model


def conv_stack(rng: np.random.Generator, x: str, channels: Sequence[int], pads: int,
               prefix: str = "conv") -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """3x3 convs through `channels` (first entry = input channels), ReLU between, none after the last."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        node, ws = conv(f"{prefix}{i}", x, he_weights(rng, cout, cin), bias, pads)
        nodes.append(node)
        inits += ws
        x = node.output[0]
        if i < len(channels) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"{x}_relu"]))
            x = f"{x}_relu"
    return nodes, inits, x
