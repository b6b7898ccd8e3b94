"""FP16 variant of the rewritten TTSR graph, for strongly typed TensorRT builds.

A strongly typed build runs each layer in the dtype the graph gives it, so the
precision lives in the ONNX file: every weight and activation becomes float16
and explicit ``Cast`` nodes convert at the graph boundary when the caller keeps
float32 I/O (the default).

Kept in float32, and why:

* ``Resize`` ``scales`` (and ``roi``): the ONNX spec types ``scales`` as
  float32 whatever the data type; they are constants (2 or 4), not arithmetic.
* Nothing else.  The accuracy-critical part, the relevance search, is inside
  ``TTSRSearchTransfer``: its patch norms (sums of squares over Ck * 9 = 2304
  feature values, which can exceed float16's range), cosine dot products and
  texture sums accumulate in float32 inside the plugin by contract
  (``ttsr/contract.py``), while its tensors are float16.  The bicubic ``Resize`` nodes (soft attention
  and generator features, x2/x4) stay float16: computing them in float32
  instead left the output error unchanged (max 3.1e-4 on the seeded model and
  the bundled demo pair, measured with ``ttsr fp16-estimate``'s method).

The pass knows the ops of the rewritten graph and refuses any other op
rather than guess its dtype rules; extend ``_FP32_INPUTS``/``_KNOWN_OPS`` with
care if the network changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ttsr import contract
from ttsr.errors import first_line
from ttsr.onnx_io import load_onnx, save_checked_model

IO_DTYPES = ("float32", "float16")
FP16_MAX = float(np.finfo(np.float16).max)
# Op -> input slots that stay float32 (spec-mandated), all other float inputs become float16.
_FP32_INPUTS: dict[str, frozenset[int]] = {"Resize": frozenset({1, 2})}
_KNOWN_OPS = frozenset({
    "Conv", "Relu", "Add", "Sub", "Mul", "Div", "Concat", "Resize", "MaxPool", "DepthToSpace",
    "Clip", "Reshape", "Transpose", "Identity", contract.OP_TYPE,
})


class FP16Error(ValueError):
    """The graph cannot be converted to FP16."""


def _check_convertible(model: onnx.ModelProto) -> None:
    graph = model.graph
    kinds = {v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    if TensorProto.FLOAT16 in kinds or any(t.data_type == TensorProto.FLOAT16
                                           for t in graph.initializer):
        raise FP16Error("the graph already holds float16 tensors; convert the FP32 graph")
    unknown = sorted({n.op_type for n in graph.node if n.op_type not in _KNOWN_OPS})
    if unknown:
        hint = ("; rewrite the graph first (ttsr export --rewrite)"
                if "Col2Im" in unknown else "")
        raise FP16Error(f"the FP16 pass does not handle ops {unknown}{hint}")


def _fp32_only(model: onnx.ModelProto) -> set[str]:
    """Names of initializers that must stay float32, checked to be used only there."""
    keep = {n.input[i] for n in model.graph.node
            for i in _FP32_INPUTS.get(n.op_type, ()) if i < len(n.input) and n.input[i]}
    for node in model.graph.node:
        fp32_slots = _FP32_INPUTS.get(node.op_type, frozenset())
        for i, name in enumerate(node.input):
            if name in keep and i not in fp32_slots:
                raise FP16Error(f"initializer {name!r} feeds both a float32-only input and "
                                f"{node.op_type} {node.name!r}; cannot type it once")
    return keep


def _convert_initializers(model: onnx.ModelProto, keep: set[str]) -> None:
    for index, init in enumerate(model.graph.initializer):
        if init.data_type != TensorProto.FLOAT or init.name in keep:
            continue
        values = numpy_helper.to_array(init)
        peak = float(np.abs(values).max()) if values.size else 0.0
        if peak > FP16_MAX:
            raise FP16Error(f"weight {init.name!r} holds {peak:g}, beyond float16's "
                            f"{FP16_MAX:g}; this checkpoint cannot run in FP16")
        model.graph.initializer[index].CopyFrom(
            numpy_helper.from_array(values.astype(np.float16), init.name))


def _retype_value_info(model: onnx.ModelProto, keep: set[str]) -> None:
    for info in model.graph.value_info:
        tensor = info.type.tensor_type
        if tensor.elem_type == TensorProto.FLOAT and info.name not in keep:
            tensor.elem_type = TensorProto.FLOAT16


def _cast_boundary(model: onnx.ModelProto, io_dtype: str) -> None:
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    if io_dtype == "float16":
        for info in [*graph.input, *graph.output]:
            if info.name not in initializers and info.type.tensor_type.elem_type == TensorProto.FLOAT:
                info.type.tensor_type.elem_type = TensorProto.FLOAT16
        return
    # float32 I/O: the graph keeps its input and output names and dtypes, and
    # Casts bridge to the float16 interior.
    casts_in, casts_out = [], []
    for info in graph.input:
        if info.name in initializers or info.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = f"{info.name}_fp16"
        for node in graph.node:
            node.input[:] = [inner if name == info.name else name for name in node.input]
        casts_in.append(onnx.helper.make_node("Cast", [info.name], [inner], to=TensorProto.FLOAT16,
                                              name=f"/cast_in/{info.name}"))
    for info in graph.output:
        if info.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = f"{info.name}_fp16"
        for node in graph.node:
            node.output[:] = [inner if name == info.name else name for name in node.output]
            node.input[:] = [inner if name == info.name else name for name in node.input]
        casts_out.append(onnx.helper.make_node("Cast", [inner], [info.name], to=TensorProto.FLOAT,
                                               name=f"/cast_out/{info.name}"))
    nodes = casts_in + list(graph.node) + casts_out
    del graph.node[:]
    graph.node.extend(nodes)


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike, *,
                 io_dtype: str = "float32") -> Path:
    """Write the FP16 variant of the FP32 graph ``src`` to ``dst`` (atomically, checked).

    ``io_dtype``: dtype of the graph inputs and output; ``"float32"`` adds Casts
    at the boundary so that callers feed and receive float32.
    """
    if io_dtype not in IO_DTYPES:
        raise FP16Error(f"io_dtype {io_dtype!r} is not one of {IO_DTYPES}")
    src, dst = Path(src), Path(dst)
    model = load_onnx(src, FP16Error, "export and rewrite one first (ttsr export --rewrite)")
    _check_convertible(model)
    keep = _fp32_only(model)
    _convert_initializers(model, keep)
    _retype_value_info(model, keep)
    _cast_boundary(model, io_dtype)
    if not dst.parent.is_dir():
        raise FP16Error(f"output folder {dst.parent} does not exist; create it first")
    try:
        save_checked_model(model, dst)
    except onnx.checker.ValidationError as exc:
        raise FP16Error(f"the FP16 graph fails onnx.checker: {first_line(exc)}") from exc
    return dst
