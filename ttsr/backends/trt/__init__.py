"""The ``trt`` backend: TensorRT engines, built (:mod:`.builder`) with the JSON sidecar (:mod:`.sidecar`)
and run (:mod:`.runner`), with the TTSRSearchTransfer plugin library (:mod:`.plugin`) and the checks
for TensorRT and the GPU (:mod:`.checks`).  TensorRT and pycuda are imported only when used."""

from __future__ import annotations

import os

from ttsr.backends.base import BackendError
from ttsr.backends.profiles import ProfileError
from ttsr.backends.trt.checks import BuildError, require_gpu, require_tensorrt
from ttsr.backends.trt.runner import EngineError, TrtBackend
from ttsr.backends.trt.sidecar import SidecarError
from ttsr.onnx_io import OnnxInfoError

# Builds and runs: every one of these carries a one-line message naming the fix.
KNOWN_ERRORS: tuple[type[Exception], ...] = (EngineError, BuildError, SidecarError, ProfileError, OnnxInfoError)
UNEXPECTED_HINT = ("rerun with --backend ort to tell the engine from the inputs, or report it with the "
                   "engine's .json sidecar")


def open_backend(engine: str | os.PathLike[str], plugin: str | os.PathLike[str] | None = None,
                 cuda_graph: bool = False) -> TrtBackend:
    try:
        backend = TrtBackend(engine, plugin_library=plugin, cuda_graph=cuda_graph)
    except EngineError as exc:
        raise BackendError(str(exc)) from None
    backend.artefact, backend.source = f"engine {engine}", backend.sidecar.source
    return backend


def unavailable_reason() -> str | None:
    try:
        require_tensorrt()
        require_gpu()
    except BuildError as exc:
        return str(exc)
    return None


__all__ = ["KNOWN_ERRORS", "EngineError", "TrtBackend", "UNEXPECTED_HINT", "open_backend",
           "unavailable_reason"]
