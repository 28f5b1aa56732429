"""What an .onnx file refers to outside itself: the external data files of its tensors.

A tiny reader of the protobuf wire format, walking only ModelProto.graph and the tensors and subgraphs inside it,
so the plugin needs neither the `onnx` package nor a copy of the weights in memory. External data is resolved
relative to the model file (never the working directory), and a location that leaves the model's folder is
refused: a model file should not be able to make the plugin read arbitrary files.
"""
from __future__ import annotations

import os
from typing import Iterator

from .errors import ModelError

# Field numbers (onnx/onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_EXTERNAL = 1


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value): an int for varints, a view for length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _Malformed("truncated field")
            yield number, wire, buf[pos:pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise _Malformed(f"wire type {wire}")


def _tensor_location(tensor: memoryview) -> str | None:
    location, external = None, False
    for number, _, value in _fields(tensor):
        if number == _TENSOR_DATA_LOCATION and value == _EXTERNAL:
            external = True
        elif number == _TENSOR_EXTERNAL_DATA and isinstance(value, memoryview):
            entry = {n: bytes(v).decode("utf-8", "replace") for n, _, v in _fields(value)
                     if isinstance(v, memoryview)}
            if entry.get(_ENTRY_KEY) == "location":
                location = entry.get(_ENTRY_VALUE, "")
    return location if external else None


def _sparse_locations(sparse: memoryview) -> Iterator[str]:
    for number, _, value in _fields(sparse):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and isinstance(value, memoryview):
            location = _tensor_location(value)
            if location is not None:
                yield location


def _graph_locations(graph: memoryview) -> Iterator[str]:
    for number, _, value in _fields(graph):
        if not isinstance(value, memoryview):
            continue
        if number == _GRAPH_INITIALIZER:
            location = _tensor_location(value)
            if location is not None:
                yield location
        elif number == _GRAPH_SPARSE_INITIALIZER:
            yield from _sparse_locations(value)
        elif number == _GRAPH_NODE:
            for n, _, attribute in _fields(value):
                if n == _NODE_ATTRIBUTE and isinstance(attribute, memoryview):
                    yield from _attribute_locations(attribute)


def _attribute_locations(attribute: memoryview) -> Iterator[str]:
    for number, _, value in _fields(attribute):
        if not isinstance(value, memoryview):
            continue
        if number in (_ATTR_T, _ATTR_TENSORS):
            location = _tensor_location(value)
            if location is not None:
                yield location
        elif number in (_ATTR_G, _ATTR_GRAPHS):
            yield from _graph_locations(value)
        elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
            yield from _sparse_locations(value)


def external_locations(model: bytes) -> list[str]:
    """The external-data locations the model's tensors name, each once, in the order found; [] for a file
    that cannot be read as ONNX (onnxruntime then says what is wrong with it)."""
    found: list[str] = []
    try:
        for number, _, value in _fields(memoryview(model)):
            if number == _MODEL_GRAPH and isinstance(value, memoryview):
                found.extend(loc for loc in _graph_locations(value) if loc not in found)
    except _Malformed:
        return found
    return found


def external_files(model: bytes, model_path: str) -> list[str]:
    """The files holding the model's external data, resolved beside the model file. ModelError when a location
    leaves the model's folder or a file is missing, naming it and saying how to fix it."""
    folder = os.path.dirname(os.path.abspath(model_path))
    name = os.path.basename(model_path)
    files = []
    for location in external_locations(model):
        path = os.path.normpath(os.path.join(folder, location))
        if os.path.isabs(location) or os.path.commonpath([folder, path]) != folder:
            raise ModelError(f"'{name}' keeps weights in '{location}', outside the model's folder '{folder}'. "
                             "DeepStrata reads external data only from the model's own folder: put the file "
                             "beside the model and save the model with a relative location (onnx.save(model, "
                             "path, save_as_external_data=True, location='weights.bin')).")
        if not os.path.isfile(path):
            raise ModelError(f"'{name}' keeps its weights in a separate file, '{location}', which is not in "
                             f"'{folder}'. Copy that file next to the model: the two files travel together.")
        files.append(path)
    return files
