"""The ``ort`` backend: ONNX Runtime on the CPU over the exported graph, whose plugin node runs in the
CPU twin of the CUDA kernels (:mod:`ttsr.backends.ort.runner`)."""

from __future__ import annotations

import os

from ttsr import contract
from ttsr.backends.base import BackendError
from ttsr.backends.ort.runner import OrtBackend, OrtBackendError
from ttsr.backends.profiles import ProfileError
from ttsr.errors import first_line
from ttsr.onnx_io import OnnxInfoError, inspect_onnx
from ttsr.plugin.native import NativeLibraryError, NativeOpError, cpu_library

KNOWN_ERRORS: tuple[type[Exception], ...] = (OrtBackendError, NativeLibraryError, NativeOpError, ProfileError)
UNEXPECTED_HINT = "rerun with --backend torch to tell the graph from the inputs, or report it"


def open_backend(onnx: str | os.PathLike[str], threads: int | None = None) -> OrtBackend:
    """``onnx`` must be the rewritten graph (FP32 or FP16), the one TensorRT builds: the plain export
    would run ONNX Runtime's own search-transfer ops, so the plugin's twin would go untested."""
    try:
        info = inspect_onnx(onnx)
    except OnnxInfoError as exc:
        raise BackendError(str(exc)) from None
    if not info.rewritten:
        raise BackendError(f"{onnx} was never rewritten (no {contract.OP_TYPE} node): the ort backend runs "
                           f"the rewritten graph, as TensorRT does; make it with `ttsr export --rewrite`")
    try:
        backend = OrtBackend(onnx, threads=threads)
    except Exception as exc:  # OrtBackendError, NativeLibraryError, and ONNX Runtime's own (not RuntimeErrors)
        raise BackendError(f"ONNX Runtime cannot run {onnx}: {first_line(exc)}") from None
    backend.artefact, backend.source = f"ONNX graph {onnx}", info.source
    return backend


def unavailable_reason() -> str | None:
    """ONNX Runtime is a dependency; the plugin node needs the CPU twin library."""
    try:
        cpu_library()
    except NativeLibraryError as exc:
        return str(exc)
    return None


__all__ = ["KNOWN_ERRORS", "OrtBackend", "OrtBackendError", "UNEXPECTED_HINT", "open_backend",
           "unavailable_reason"]
