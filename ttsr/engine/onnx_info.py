"""What the engine builder and the CLIs need to know about an ONNX file, read without TensorRT."""

from __future__ import annotations

import os
from dataclasses import dataclass

import onnx

from ttsr import contract
from ttsr.atomic import write_bytes_atomic
from ttsr.surgery.graph_io import load_onnx

# metadata_props key under which the CLIs record the checkpoint a graph was exported from
CHECKPOINT_KEY = "ttsr.source_checkpoint_sha256"


class OnnxInfoError(ValueError):
    """An ONNX file that cannot be read; the message is one line."""


@dataclass(frozen=True)
class OnnxInfo:
    inputs: dict[str, list[int | None]]
    precision: str  # "fp16" when the weights are float16, else "fp32"
    rewritten: bool  # holds the TTSRSearchTransfer plugin node
    checkpoint_sha256: str | None


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
    return OnnxInfo(inputs, "fp16" if fp16 else "fp32", rewritten, meta.get(CHECKPOINT_KEY))


def record_checkpoint(path: str | os.PathLike[str], checkpoint_sha256: str) -> None:
    """Store the source checkpoint's sha256 in the graph's metadata (rewrites the file atomically)."""
    model = _load(path)
    kept = [p for p in model.metadata_props if p.key != CHECKPOINT_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=CHECKPOINT_KEY, value=checkpoint_sha256)
    write_bytes_atomic(path, model.SerializeToString())
