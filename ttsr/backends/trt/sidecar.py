"""The JSON sidecar written next to every engine, and its check before deserialising.

A serialized TensorRT engine runs only with the TensorRT version that built it,
on the GPUs its hardware-compatibility level allows, and with the plugin
library whose fields it stored.  The sidecar records all three, so that a
mismatch is a one-line error instead of a crash inside ``deserialize_cuda_engine``;
it also records the engine's sha256, so that a sidecar is only used with its own engine.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ttsr.atomic import write_bytes_atomic
from ttsr.backends.profiles import Profile, ProfileError
from ttsr.provenance import Source

FORMAT_VERSION = 2  # 2: engine_sha256 and plugin_memory
SIDECAR_SUFFIX = ".json"

# TensorRT's HardwareCompatibilityLevel members, lower-cased as the CLI and the sidecar spell them.
HARDWARE_COMPAT_LEVELS = ("none", "same_compute_capability", "ampere_plus")
AMPERE = (8, 0)


class SidecarError(ValueError):
    """Missing, unreadable or mismatching sidecar; the message is one line."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    library: str
    sha256: str


@dataclass(frozen=True)
class PluginMemory:
    """The plugin's device workspace for one profile, and how many of the Ref's search positions
    (``ref_positions``, Ref/4 grid) its kernels score per pass at the profile's largest shape."""

    workspace_bytes: int
    ref_chunk: int
    ref_positions: int
    workspace_budget_mib: int = 0  # the plugin field: MiB per tile's Gram block, 0 = the kernels' default

    def describe(self) -> str:
        budget = f"{self.workspace_budget_mib} MiB" if self.workspace_budget_mib else "default"
        return (f"workspace {self.workspace_bytes / 2**20:.1f} MiB (tile budget {budget}); at the largest "
                f"shape the kernels score {self.ref_chunk} of {self.ref_positions} Ref positions per pass")


@dataclass
class EngineSidecar:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    hardware_compatibility: str
    profiles: list[Profile]
    plugin: PluginInfo
    onnx_sha256: str
    engine_sha256: str
    plugin_memory: list[PluginMemory]  # one per profile; empty when the CPU twin library was missing
    checkpoint_sha256: str | None
    build_time: str
    tool_version: str
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # of the random model, for engines built without a checkpoint

    @property
    def source(self) -> Source:
        return Source(self.checkpoint_sha256, self.seed)

    def to_json(self) -> str:
        data = asdict(self)
        data["profiles"] = [p.to_dict() for p in self.profiles]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "sidecar") -> "EngineSidecar":
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {data.get('format_version')!r}, "
                                 f"this tool reads {FORMAT_VERSION}")
            data["profiles"] = [Profile.from_dict(p) for p in data["profiles"]]
            data["plugin"] = PluginInfo(**data["plugin"])
            data["plugin_memory"] = [PluginMemory(**m) for m in data["plugin_memory"]]
            return cls(**data)
        except (ValueError, KeyError, TypeError, ProfileError) as exc:
            raise SidecarError(f"{source} is not a valid engine sidecar ({exc}); "
                               f"rebuild the engine with build_engine.py") from None


def sidecar_path(engine_path: str | os.PathLike[str]) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


def write_sidecar(engine_path: str | os.PathLike[str], sidecar: EngineSidecar) -> Path:
    path = sidecar_path(engine_path)
    write_bytes_atomic(path, sidecar.to_json().encode())
    return path


def read_sidecar(engine_path: str | os.PathLike[str]) -> EngineSidecar:
    path = sidecar_path(engine_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SidecarError(f"engine sidecar {path} is missing; engines are only run with the "
                           f"sidecar build_engine.py writes beside them") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SidecarError(f"cannot read engine sidecar {path}: {exc}") from None
    return EngineSidecar.from_json(text, source=str(path))


def parse_compute_capability(text: str) -> tuple[int, int]:
    try:
        major, minor = text.split(".")
        return int(major), int(minor)
    except ValueError:
        raise SidecarError(f"compute capability {text!r} is not MAJOR.MINOR") from None


def check_engine_hash(sidecar: EngineSidecar, engine_sha256: str) -> list[str]:
    if engine_sha256 != sidecar.engine_sha256:
        return [f"engine and sidecar do not belong together (engine sha256 {engine_sha256[:12]}, the "
                f"sidecar's {sidecar.engine_sha256[:12]}); rebuild the engine with build_engine.py"]
    return []


def check_sidecar(sidecar: EngineSidecar, trt_version: str, gpu_cc: str,
                  plugin_hash: str | None) -> list[str]:
    """One-line reasons why this engine cannot run here; empty when it can.

    ``gpu_cc`` is the running GPU's compute capability ("8.6"); ``plugin_hash``
    the sha256 of the plugin library that will be loaded (None: not found).
    """
    errors = []
    if sidecar.tensorrt_version != trt_version:
        errors.append(f"engine was built with TensorRT {sidecar.tensorrt_version}, this is "
                      f"TensorRT {trt_version}; rebuild the engine here or install that version")
    built = parse_compute_capability(sidecar.compute_capability)
    here = parse_compute_capability(gpu_cc)
    level = sidecar.hardware_compatibility
    if level == "ampere_plus":
        if here < AMPERE:
            errors.append(f"engine is hardware-compatible with Ampere and newer (sm >= 8.0), this "
                          f"GPU is sm {gpu_cc}; rebuild the engine on this GPU")
    elif level in ("none", "same_compute_capability"):
        if here != built:
            errors.append(f"engine was built for compute capability {sidecar.compute_capability} "
                          f"({sidecar.gpu_name}), this GPU is {gpu_cc}; rebuild it here or build "
                          f"with --hardware-compat ampere_plus")
    else:
        errors.append(f"unknown hardware-compatibility level {level!r} in the sidecar; "
                      f"expected one of {', '.join(HARDWARE_COMPAT_LEVELS)}")
    return errors + check_plugin(sidecar, plugin_hash)


def check_plugin(sidecar: EngineSidecar, plugin_hash: str | None) -> list[str]:
    """The plugin part of :func:`check_sidecar` (needs no TensorRT, so it runs first)."""
    if plugin_hash is None:
        return [f"plugin library {sidecar.plugin.library} is missing; build it with "
                f"`bash scripts/setup.sh` (cmake) or pass --plugin"]
    if plugin_hash != sidecar.plugin.sha256:
        return [f"plugin library differs from the one the engine was built with "
                f"(sha256 {plugin_hash[:12]} != {sidecar.plugin.sha256[:12]}); rebuild the engine "
                f"or pass --plugin with the library it was built with"]
    return []
