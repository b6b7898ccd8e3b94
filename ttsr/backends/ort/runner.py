"""ONNX Runtime (CPU) backend: runs the plain export or the rewritten graph, FP32 or FP16.

The rewritten graph's ``TTSRSearchTransfer`` node is executed by the CPU twin
of the CUDA kernels (:func:`ttsr.plugin.native.search_transfer_cpu`) through an
onnxruntime-extensions Python op.  Such ops only exist in the domain
``ai.onnx.contrib``, are keyed by op type alone and take no float16, so the
session gets an in-memory copy of the graph in which the node is moved to that
domain and renamed per dtype; the file on disk stays as TensorRT expects it.

FP16 graphs: ONNX Runtime's CPU provider has no float16 kernels for most ops
(Conv, Resize, Add, ...); it silently runs them in float32 and drops the
rounding between them, which would hide FP16 error.  The session copy
therefore computes each op in float32 on float16 values and rounds every
float16 tensor to float16 with explicit Casts, as a GPU's FP16 kernels with
FP32 accumulation do; the plugin node gets real float16 arrays.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper
from onnxruntime_extensions import PyCustomOpDef, _ocos, get_library_path, onnx_op

from ttsr import contract
from ttsr.backends.base import Backend
from ttsr.model.ttsr import INPUT_NAMES, OUTPUT_NAME
from ttsr.onnx_io import elem_types, load_onnx
from ttsr.plugin.native import search_transfer_cpu
from ttsr.surgery.bicubic import bicubic_as_conv

if TYPE_CHECKING:
    from ttsr.data.prepare import ModelInputs

PYOP_DOMAIN = "ai.onnx.contrib"
_PYOP_TYPES: dict[int, str] = {TensorProto.FLOAT: f"{contract.OP_TYPE}Float32",
               TensorProto.FLOAT16: f"{contract.OP_TYPE}Float16"}
_ATTRIBUTE_TYPES = {name: PyCustomOpDef.dt_int64 if isinstance(value, int) else PyCustomOpDef.dt_float
                    for name, value in contract.ATTRIBUTES.items()}
# Set on the session's copy of the plugin node: the session's intra-op thread count (0 = the
# twin's default), so that the twin uses the threads ORT was given.
_THREADS_ATTRIBUTE = "threads"
_ATTRIBUTE_TYPES[_THREADS_ATTRIBUTE] = PyCustomOpDef.dt_int64


class OrtBackendError(RuntimeError):
    """The graph cannot be run by the ONNX Runtime backend."""


def _cpu_op(dtype: type) -> Callable[..., tuple[np.ndarray, ...]]:
    """The Python op body: the CPU twin on ``dtype`` arrays, float32 out (exact for float16)."""

    def search_transfer(q: np.ndarray, k: np.ndarray, v3: np.ndarray, v2: np.ndarray,
                        v1: np.ndarray, *, patch_size: int, fold_divisor: float,
                        ref_chunk: int, threads: int) -> tuple[np.ndarray, ...]:
        # patch_size and fold_divisor were checked against the contract when
        # the session was made; the CPU twin implements exactly those values.
        q, k, v3, v2, v1 = (np.ascontiguousarray(a, dtype=dtype) for a in (q, k, v3, v2, v1))
        return tuple(np.asarray(out, dtype=np.float32)
                     for out in search_transfer_cpu(q, k, v3, v2, v1, ref_chunk=ref_chunk, threads=threads))

    return search_transfer


# onnxruntime-extensions wants every Python op declared before the first
# session is made, hence at import.  Both variants exchange float32 with ORT.
_OPS = {op._id: op for op in (
    onnx_op(op_type=_pyop_type, inputs=[PyCustomOpDef.dt_float] * len(contract.INPUT_NAMES),
            outputs=[PyCustomOpDef.dt_float] * len(contract.OUTPUT_NAMES),
            attrs=_ATTRIBUTE_TYPES)(_cpu_op(onnx.helper.tensor_dtype_to_np_dtype(_onnx_type).type))
    for _onnx_type, _pyop_type in _PYOP_TYPES.items())}


def _invoke(op_id: int, inputs: list, attributes: dict) -> tuple:
    """The Python-op call hook of onnxruntime-extensions, arrays out for our ops.

    The package's own hook hands each output back as a Python list (``flatten().tolist()``),
    which its native side turns into an array again: at LR 40 that cost 0.6 s per call, eight
    times the twin's own time.  The native side takes any array-like, so our ops return the arrays;
    other Python ops go through the package's hook unchanged.
    """
    op = _OPS.get(op_id)
    if op is None:
        theirs: tuple = _ocos._on_pyop_invocation(op_id, inputs, attributes)
        return theirs
    outputs = op.body(*inputs, **op.cast_attributes(attributes))
    return (op_id, *itertools.chain.from_iterable((out.shape, out) for out in outputs))


PyCustomOpDef.install_hooker(_invoke)


def _check_attributes(node: onnx.NodeProto) -> None:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    missing = set(contract.ATTRIBUTES) - set(attrs)
    if missing:
        raise OrtBackendError(f"node {node.name!r} lacks attributes {sorted(missing)}; "
                              f"re-run the rewrite (ttsr export --rewrite)")
    for name, expected in (("patch_size", contract.PATCH_SIZE),
                           ("fold_divisor", contract.FOLD_DIVISOR)):
        if attrs[name] != expected:
            raise OrtBackendError(f"node {node.name!r}: {name}={attrs[name]} but the CPU op "
                                  f"implements {name}={expected} (ttsr/contract.py)")


def _is_plugin(node: onnx.NodeProto) -> bool:
    return node.op_type == contract.OP_TYPE and node.domain == contract.DOMAIN


def _cast(src: str, dst: str, to: int) -> onnx.NodeProto:
    return onnx.helper.make_node("Cast", [src], [dst], to=to, name=f"/emulate_fp16/{dst}")


def _emulate_fp16(model: onnx.ModelProto, types: dict[str, int]) -> None:
    """Rewrite ``model`` in place: float32 arithmetic, every float16 tensor rounded to float16."""
    graph = model.graph
    fp16, fp32 = TensorProto.FLOAT16, TensorProto.FLOAT
    output_names = {o.name for o in graph.output}
    # Graph I/O keeps its float16 type: inputs are widened on entry, outputs
    # are produced under an inner name and narrowed at the end.
    renamed = {name: f"{name}__emulated" for name in output_names if types.get(name) == fp16}
    nodes: list[onnx.NodeProto] = []
    for info in graph.input:
        if info.type.tensor_type.elem_type == fp16:
            renamed[info.name] = f"{info.name}__float32"
            nodes.append(_cast(info.name, renamed[info.name], fp32))
    for node in graph.node:
        fp16_outputs = [i for i, name in enumerate(node.output) if types.get(name) == fp16]
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
        if _is_plugin(node):
            # Its Python op returns float16 results widened to float32: already rounded.
            nodes.append(node)
            continue
        if node.op_type == "Cast":
            # Narrowing now happens in the rounding Casts added below.
            for attr in node.attribute:
                if attr.name == "to" and attr.i == fp16:
                    attr.i = fp32
        rounding = []
        for index in fp16_outputs:
            out = node.output[index]
            node.output[index] = f"{out}__float32"
            rounding += [_cast(node.output[index], f"{out}__float16", fp16),
                         _cast(f"{out}__float16", out, fp32)]
        nodes += [node, *rounding]
    nodes += [_cast(inner, outer, fp16) for outer, inner in renamed.items() if outer in output_names]
    del graph.node[:]
    graph.node.extend(nodes)
    for index, init in enumerate(graph.initializer):
        if init.data_type == fp16:
            graph.initializer[index].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float32), init.name))
    del graph.value_info[:]


def _session_model(model: onnx.ModelProto, threads: int | None = None) -> tuple[onnx.ModelProto, bool]:
    """``model``, loaded from its file, turned in place into what ONNX Runtime runs; also whether it
    has plugin nodes.  In place, not on a copy: a copy of the weights raised the backend's peak memory.

    Bicubic upsamplings become convolutions there (:mod:`ttsr.surgery.bicubic`): ORT's cubic
    ``Resize`` took 46 % of a run at LR 40, the convolutions a few percent."""
    plugins = [n for n in model.graph.node if _is_plugin(n)]
    types = elem_types(model)
    has_fp16 = TensorProto.FLOAT16 in types.values()
    plugin_types = {n.name: types.get(n.input[0]) for n in plugins}
    if has_fp16:
        _emulate_fp16(model, types)
    for node in (n for n in model.graph.node if _is_plugin(n)):
        _check_attributes(node)
        dtype = plugin_types[node.name]
        if dtype not in _PYOP_TYPES:
            raise OrtBackendError(f"node {node.name!r} has inputs of ONNX type {dtype}; "
                                  f"{contract.OP_TYPE} takes float32 or float16")
        node.domain, node.op_type = PYOP_DOMAIN, _PYOP_TYPES[dtype]
        node.attribute.append(onnx.helper.make_attribute(_THREADS_ATTRIBUTE, threads or 0))
    if plugins:
        opsets = [o for o in model.opset_import if o.domain != contract.DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(opsets + [onnx.helper.make_opsetid(PYOP_DOMAIN, 1)])
    bicubic_as_conv(model)
    return model, bool(plugins)


def session_options(threads: int | None) -> ort.SessionOptions:
    """The session settings, each chosen by measurement (``scripts/bench_cpu_pipeline.py --variants``).

    * Idle intra-op threads busy-wait for work by default.  Where cores are shared (CI, small dev
      machines) the spinning threads steal the CPU from those doing the work: one run on a shared
      2-core machine took 10x longer.  Blocking instead costs little at these op sizes.
    * ``threads``: intra-op threads (``None``: ORT's default, one per core); one inter-op thread,
      the graph being a chain.
    * No memory pattern: with it ORT plans one block for all intermediate tensors of a shape, and
      the process's peak memory at LR 40 / 80 was 628 / 1353 MB instead of 532 / 917 MB, for no
      measurable speed.  The memory arena stays (without it: 1230 MB at LR 80).
    * Graph optimisation stays at ORT_ENABLE_ALL (the default): its NCHWc layout for the
      convolutions is what makes them fast (BASIC or EXTENDED: 1.6x slower at LR 40).
    """
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


class OrtBackend(Backend):
    """Runs an exported TTSR graph (plain or rewritten, FP32 or FP16) on the CPU."""

    name = "ort"

    def __init__(self, onnx_path: str | os.PathLike, threads: int | None = None) -> None:
        path = Path(onnx_path)
        model, has_plugin = _session_model(load_onnx(path, OrtBackendError, "make one with `ttsr export`"),
                                           threads)
        options = session_options(threads)
        if has_plugin:
            options.register_custom_ops_library(get_library_path())
        self.has_plugin = has_plugin
        self.last_stages: dict[str, float] = {}
        self.session = ort.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        names = [i.name for i in self.session.get_inputs()]
        if sorted(names) != sorted(INPUT_NAMES):
            raise OrtBackendError(f"{path}: graph inputs {names}, expected {list(INPUT_NAMES)}")
        self._input_types = {i.name: _ort_numpy_type(i.type) for i in self.session.get_inputs()}

    @property
    def input_dtype(self) -> np.dtype:
        """The dtype the graph takes its inputs in (float32 or float16)."""
        return np.dtype(self._input_types[INPUT_NAMES[0]])

    def run(self, inputs: ModelInputs) -> np.ndarray:
        """SR output (N, 3, 4H, 4W) float32 in [-1, 1]."""
        feed: dict[str, np.ndarray] = {name: np.ascontiguousarray(array, dtype=self._input_types[name])
                for name, array in inputs.as_dict().items()}
        (sr,) = self.session.run([OUTPUT_NAME], feed)
        return np.asarray(sr, dtype=np.float32)


def _ort_numpy_type(ort_type: str) -> type:
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
    if ort_type not in types:
        raise OrtBackendError(f"graph input of type {ort_type}; expected float or float16")
    return types[ort_type]
