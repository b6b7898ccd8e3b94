"""``config.pbtxt`` text: Triton's model configuration (``inference.ModelConfig``) in protobuf text format.

Written by hand rather than through tritonclient's generated protobuf classes, so that exporting a
repository needs no client package; the tests parse every file with those classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Enum:
    """A protobuf enum value (written unquoted)."""

    name: str


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton's TYPE_* name
    dims: tuple[int, ...]  # without the batch axis; -1 for a variable size

    def to_message(self) -> dict[str, Any]:
        return {"name": self.name, "data_type": Enum(self.data_type), "dims": list(self.dims)}


@dataclass(frozen=True)
class Batching:
    """Triton's dynamic batcher: requests that arrive within ``queue_delay_us`` of each other are
    executed together, up to the model's max batch size (only requests of equal shapes are joined)."""

    max_batch_size: int
    queue_delay_us: int


@dataclass(frozen=True)
class Instances:
    count: int
    kind: str  # KIND_CPU or KIND_GPU
    profiles: tuple[int, ...] = ()  # TensorRT optimisation profiles open to each instance


@dataclass
class ModelConfig:
    name: str
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]
    max_batch_size: int
    backend: str | None = None
    platform: str | None = None
    batching: Batching | None = None
    instances: Instances | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # further fields, as a message dict

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"name": self.name}
        if self.platform is not None:
            message["platform"] = self.platform
        if self.backend is not None:
            message["backend"] = self.backend
        message["max_batch_size"] = self.max_batch_size
        message["input"] = [spec.to_message() for spec in self.inputs]
        message["output"] = [spec.to_message() for spec in self.outputs]
        if self.batching is not None:
            message["dynamic_batching"] = {"max_queue_delay_microseconds": self.batching.queue_delay_us}
        if self.instances is not None:
            group: dict[str, Any] = {"count": self.instances.count, "kind": Enum(self.instances.kind)}
            if self.instances.profiles:
                group["profile"] = [str(p) for p in self.instances.profiles]
            message["instance_group"] = [group]
        if self.parameters:
            message["parameters"] = [{"key": key, "value": {"string_value": value}}
                                     for key, value in self.parameters.items()]
        message.update(self.extra)
        return message

    def to_text(self) -> str:
        return to_text(self.to_message())


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid protobuf text string literal
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a protobuf text scalar")


def to_text(message: Mapping[str, Any], indent: int = 0) -> str:
    """A message dict in protobuf text format: dicts are messages, lists repeated fields."""
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        items = value if isinstance(value, list) else [value]
        if items and all(isinstance(item, Mapping) for item in items):
            for item in items:
                lines.append(f"{pad}{key} {{\n{to_text(item, indent + 1)}{pad}}}\n")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [ {', '.join(_scalar(item) for item in value)} ]\n")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}\n")
    return "".join(lines)
