"""Reading ONNX files with one-line errors, and the element types of a graph's tensors."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from ttsr.errors import first_line


def load_onnx(path: str | os.PathLike[str], error: type[Exception], fix: str) -> onnx.ModelProto:
    """The model in ``path``; a missing or unreadable file raises ``error`` with one line ending in ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such ONNX file; {fix}")
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf raises DecodeError, onnx raises its own
        raise error(f"{path}: not a readable ONNX model ({first_line(exc)}); {fix}") from None


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """ONNX element type of every typed tensor (inputs, outputs, inferred values, initializers) by name."""
    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update((t.name, t.data_type) for t in model.graph.initializer)
    return types
