"""ONNX files in and out: loading with one-line errors, checked atomic saving, what a graph is
(inputs, precision, rewritten or not) and the source checkpoint recorded in its metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx

from ttsr import contract
from ttsr.atomic import atomic_output, write_bytes_atomic
from ttsr.errors import first_line
from ttsr.provenance import Source

# metadata_props keys under which the graph chain records the weights a graph was exported from
CHECKPOINT_KEY = "ttsr.source_checkpoint_sha256"
SEED_KEY = "ttsr.source_seed"


class OnnxInfoError(ValueError):
    """An ONNX file that cannot be read; the message is one line."""


def load_onnx(path: str | os.PathLike[str], error: type[Exception], fix: str) -> onnx.ModelProto:
    """The model in ``path``; a missing or unreadable file raises ``error`` with one line ending in ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such ONNX file; {fix}")
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf raises DecodeError, onnx raises its own
        raise error(f"{path}: not a readable ONNX model ({first_line(exc)}); {fix}") from None


def save_checked_model(proto: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Write ``proto`` to ``path`` atomically, after ``onnx.checker`` accepts the written file."""
    with atomic_output(path) as temp:
        onnx.save(proto, temp)
        onnx.checker.check_model(temp, full_check=True)


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


@dataclass(frozen=True)
class OnnxInfo:
    inputs: dict[str, list[int | None]]
    precision: str  # "fp16" when the weights are float16, else "fp32"
    rewritten: bool  # holds the TTSRSearchTransfer plugin node
    checkpoint_sha256: str | None
    seed: int | None = None

    @property
    def source(self) -> Source:
        return Source(self.checkpoint_sha256, self.seed)


def _load(path: str | os.PathLike[str]) -> onnx.ModelProto:
    return load_onnx(path, OnnxInfoError, "export it with `python -m ttsr.cli export`")


def inspect_onnx(path: str | os.PathLike[str]) -> OnnxInfo:
    model = _load(path)
    inputs = {
        value.name: [dim.dim_value if dim.HasField("dim_value") else None
                     for dim in value.type.tensor_type.shape.dim]
        for value in model.graph.input
    }
    fp16 = any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    rewritten = any(node.op_type == contract.OP_TYPE for node in model.graph.node)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    seed = meta.get(SEED_KEY)
    try:
        recorded_seed = int(seed) if seed is not None else None
    except ValueError:
        raise OnnxInfoError(f"{path}: metadata {SEED_KEY}={seed!r} is not an integer; re-export the graph "
                            f"with `python -m ttsr.cli export`") from None
    return OnnxInfo(inputs, "fp16" if fp16 else "fp32", rewritten, meta.get(CHECKPOINT_KEY), recorded_seed)


def record_source(path: str | os.PathLike[str], source: Source) -> None:
    """Store the weights' checkpoint sha256 or seed in the graph's metadata, replacing any recorded
    before (rewrites the file atomically)."""
    model = _load(path)
    kept = [p for p in model.metadata_props if p.key not in (CHECKPOINT_KEY, SEED_KEY)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if source.checkpoint_sha256 is not None:
        model.metadata_props.add(key=CHECKPOINT_KEY, value=source.checkpoint_sha256)
    if source.seed is not None:
        model.metadata_props.add(key=SEED_KEY, value=str(source.seed))
    write_bytes_atomic(path, model.SerializeToString())
