"""Loading the TTSRSearchTransfer plugin library into a TensorRT plugin registry (build and run)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ttsr import contract
from ttsr.backends.trt.checks import BuildError

if TYPE_CHECKING:
    import tensorrt as trt

PLUGIN_HINT = ("build it with `bash scripts/setup.sh` (cmake configures the plugin when it finds "
               "TensorRT: pass -DTensorRT_ROOT=/path/to/TensorRT) or pass --plugin")


def require_plugin_file(path: Path) -> None:
    if not path.is_file():
        raise BuildError(f"plugin library {path} does not exist; {PLUGIN_HINT}")


def load_plugin_library(registry: "trt.IPluginRegistry", path: str | os.PathLike[str]) -> None:
    """Register the TTSRSearchTransfer creator from ``path`` (dynamic registration, getCreators)."""
    path = Path(path)
    require_plugin_file(path)
    # IPluginRegistry::loadLibrary is noexcept: a failed dlopen or a library without the entry
    # points returns None (nullptr), as does a library whose creators were registered earlier in
    # this process.  So the creator itself tells whether the plugin is usable.
    handle = registry.load_library(str(path))
    if handle is None and registry.get_creator(contract.OP_TYPE, contract.PLUGIN_VERSION,
                                               contract.PLUGIN_NAMESPACE) is None:
        raise BuildError(f"plugin library {path} did not load or registers no {contract.OP_TYPE} "
                         f"version {contract.PLUGIN_VERSION} (TensorRT's log above says why); {PLUGIN_HINT}")
