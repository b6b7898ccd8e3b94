"""Bicubic upsampling by an integer factor as an edge Pad, a depthwise Conv and a DepthToSpace.

ONNX Runtime's CPU ``Resize`` (mode ``cubic``) runs one scalar loop on one thread: in the
profile of the rewritten TTSR graph at LR 40 its eight generator upsamplings take 46 % of
the run.  With ``half_pixel`` coordinates and an integer scale s, output pixel s*i + phase
is a fixed 4-tap filter of inputs i - 2 .. i + 2 (edge-clamped), so the whole operator is a
5x5 depthwise convolution with s*s filters per channel on the edge-padded input, whose
channels DepthToSpace interleaves into the s-times larger grid.  ORT runs that with its
multi-threaded convolution kernels.  Same values up to float32 rounding (the Conv sums the
25 products of the separable weights in its own order).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ttsr.onnx_io import inferred_graph

_TAPS = 5  # offsets -2 .. 2 around the source pixel cover both phases of every scale
_PAD = _TAPS // 2


def _cubic(x: float, a: float) -> float:
    """Keys' cubic convolution kernel with parameter a (ONNX cubic_coeff_a, PyTorch -0.75)."""
    x = abs(x)
    if x <= 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return 0.0


def phase_filters(scale: int, a: float) -> np.ndarray:
    """(scale, 5) 1-D filters: row ``phase`` weighs inputs i-2 .. i+2 for output scale*i + phase."""
    filters = np.zeros((scale, _TAPS))
    for phase in range(scale):
        source = (phase + 0.5) / scale - 0.5  # half_pixel, relative to input i
        base = math.floor(source)
        frac = source - base
        for tap in range(-1, 3):
            filters[phase, base + tap + _PAD] = _cubic(frac - tap, a)
    return filters


def _attributes(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _integer_scale(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> int | None:
    """s for a Resize that this module can replace: cubic, half_pixel, scales (1, 1, s, s), s >= 2."""
    attrs = _attributes(node)
    supported = (attrs.get("mode") == b"cubic" and attrs.get("coordinate_transformation_mode") == b"half_pixel"
                 and attrs.get("exclude_outside", 0) == 0 and attrs.get("antialias", 0) == 0
                 and len(node.input) == 3 and node.input[2] in constants)
    if not supported:
        return None
    scales = constants[node.input[2]]
    scale = float(scales[-1]) if scales.shape == (4,) else 0.0
    if not (scale.is_integer() and scale >= 2 and tuple(scales) == (1.0, 1.0, scale, scale)):
        return None
    return int(scale)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _float_channels(model: onnx.ModelProto) -> dict[str, int]:
    """Channel count of every float32 NCHW tensor whose count shape inference knows."""
    inferred = inferred_graph(model)
    channels = {}
    for info in [*inferred.value_info, *inferred.input]:
        tensor = info.type.tensor_type
        dims = tensor.shape.dim
        if tensor.elem_type == onnx.TensorProto.FLOAT and len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[info.name] = dims[1].dim_value
    return channels


def bicubic_as_conv(model: onnx.ModelProto) -> int:
    """Replaces, in place, every float32 bicubic ``Resize`` by an integer factor whose input has a
    known channel count; returns how many were replaced."""
    graph = model.graph
    constants = _constants(graph)
    channels = _float_channels(model)
    nodes: list[onnx.NodeProto] = []
    orphans: set[str] = set()
    replaced = 0
    for node in graph.node:
        scale = _integer_scale(node, constants) if node.op_type == "Resize" else None
        count = channels.get(node.input[0]) if scale else None
        if scale is None or count is None:
            nodes.append(node)
            continue
        filters = phase_filters(scale, float(_attributes(node).get("cubic_coeff_a", -0.75)))  # type: ignore[arg-type]
        # Output channel c*s*s + py*s + px of the grouped Conv is phase (py, px) of channel c,
        # the order DepthToSpace (CRD) expects.
        kernel = np.einsum("yi,xj->yxij", filters, filters).reshape(scale * scale, 1, _TAPS, _TAPS)
        weight = np.tile(kernel, (count, 1, 1, 1)).astype(np.float32)
        prefix = f"{node.name or node.output[0]}/as_conv"
        graph.initializer.extend([
            numpy_helper.from_array(weight, f"{prefix}/weight"),
            numpy_helper.from_array(np.array([0, 0, _PAD, _PAD] * 2, np.int64), f"{prefix}/pads")])
        nodes += [
            helper.make_node("Pad", [node.input[0], f"{prefix}/pads"], [f"{prefix}/padded"], mode="edge",
                             name=f"{prefix}/pad"),
            helper.make_node("Conv", [f"{prefix}/padded", f"{prefix}/weight"], [f"{prefix}/phases"],
                             group=count, kernel_shape=[_TAPS, _TAPS], name=f"{prefix}/conv"),
            helper.make_node("DepthToSpace", [f"{prefix}/phases"], list(node.output), blocksize=scale,
                             mode="CRD", name=f"{prefix}/interleave"),
        ]
        orphans.add(node.input[2])
        replaced += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in graph.initializer if t.name not in orphans or t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return replaced
