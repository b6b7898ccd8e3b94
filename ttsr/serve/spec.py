"""What a served model runs: backend, its files, and the sizes it accepts; passed to the Python-backend
models as one JSON string parameter of their ``config.pbtxt``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ttsr.backends.profiles import Profile, Size, format_size

SPEC_PARAMETER = "ttsr"
# What clients send and get: uint8 images, N x H x W x 3.
LR_INPUT, REF_INPUT, SR_OUTPUT = "LR", "REF", "SR"


@dataclass(frozen=True)
class ServedBackend:
    kind: str  # trt, ort or torch
    onnx: str | None = None
    engine: str | None = None
    plugin: str | None = None
    checkpoint: str | None = None
    seed: int = 0
    threads: int | None = None
    torch_device: str = "cpu"


@dataclass(frozen=True)
class ServeSpec:
    """``profiles`` bound the sizes a request may have (an engine's, or built from --max-lr/--max-ref);
    ``python`` is the version the stub must run (None: any)."""

    backend: ServedBackend | None
    profiles: list[Profile] = field(default_factory=list)
    limit_hint: str = ""
    python: str | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["profiles"] = [p.to_dict() for p in self.profiles]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ServeSpec":
        data = json.loads(text)
        backend = ServedBackend(**data["backend"]) if data["backend"] is not None else None
        return cls(backend=backend, profiles=[Profile.from_dict(p) for p in data["profiles"]],
                   limit_hint=data["limit_hint"], python=data["python"])

    @property
    def max_batch(self) -> int:
        return max(p.batch_max for p in self.profiles)


CPU_MAX_LR, CPU_MAX_REF, CPU_MAX_BATCH = (128, 128), (512, 512), 4


def cpu_profile(max_lr: Size | None, max_ref: Size | None, max_batch: int | None) -> Profile:
    """The sizes a CPU backend accepts: any LR up to ``max_lr``, any Ref from 4x4 up to ``max_ref``
    (None: the defaults above, which bound one request's memory and time on a small machine)."""
    max_lr, max_ref = max_lr or CPU_MAX_LR, max_ref or CPU_MAX_REF
    max_batch = max_batch or CPU_MAX_BATCH
    return Profile(lr_min=(1, 1), lr_opt=max_lr, lr_max=max_lr, ref_min=(4, 4), ref_opt=max_ref,
                   ref_max=max_ref, batch_min=1, batch_opt=max_batch, batch_max=max_batch)


def describe_limits(profiles: list[Profile]) -> str:
    return "; ".join(f"LR {format_size(p.lr_min)}..{format_size(p.lr_max)} with Ref "
                     f"{format_size(p.ref_min)}..{format_size(p.ref_max)}" for p in profiles)
