"""TTSR deployment toolkit: PyTorch -> ONNX -> rewritten graph -> TensorRT / ONNX Runtime / PyTorch backends."""

from importlib import metadata


def tool_version() -> str:
    """This package's version, as engine sidecars and reports record it."""
    try:
        return metadata.version("ttsr-trt")
    except metadata.PackageNotFoundError:
        return "unknown"
