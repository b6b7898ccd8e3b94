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


# Initializers larger than this enter shape inference as dims and type only.
_SHAPE_ONLY_BYTES = 1024


def inferred_graph(model: onnx.ModelProto) -> onnx.GraphProto:
    """``model``'s graph with inferred value_info, without copying its weights: shape inference
    copies the whole model, and a TTSR graph's 27 MB of weights made each call cost that much
    memory again.  Large initializers enter as typed graph inputs; small ones (shapes, scales)
    keep their values, which inference reads."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    graph = model.graph
    light.graph.node.extend(graph.node)
    light.graph.input.extend(graph.input)
    light.graph.output.extend(graph.output)
    light.graph.value_info.extend(graph.value_info)
    for tensor in graph.initializer:
        if tensor.ByteSize() <= _SHAPE_ONLY_BYTES:
            light.graph.initializer.append(tensor)
        else:
            light.graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    return onnx.shape_inference.infer_shapes(light).graph


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """ONNX element type of every typed tensor (inputs, outputs, inferred values, initializers) by name."""
    graph = inferred_graph(model)
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update((t.name, t.data_type) for t in model.graph.initializer)
    return types
