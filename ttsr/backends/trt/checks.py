"""What TensorRT needs before it builds or runs anything: TensorRT itself, a GPU, and a GPU that
can build an engine of the asked hardware-compatibility level; each missing piece is one line."""

from __future__ import annotations

from ttsr.backends.gpu import GpuInfo, detect_gpu
from ttsr.backends.trt.sidecar import AMPERE, parse_compute_capability

INSTALL_HINT = ("install it with `pip install tensorrt-cu13 pycuda` (TensorRT for the CUDA major the "
                "plugin library was built with; or `pip install -e .[trt]`) on a machine with an NVIDIA driver")


class BuildError(RuntimeError):
    """The engine cannot be built (or TensorRT cannot run here); the message is one line naming the fix."""


def require_tensorrt() -> str:
    """The installed TensorRT version, or BuildError with the install hint.

    A directory holding only type stubs also imports as ``tensorrt`` (a
    namespace package), so the check is for the real ``Builder``.
    """
    try:
        import tensorrt as trt
    except ImportError:
        raise BuildError(f"TensorRT is not installed; {INSTALL_HINT}") from None
    if not hasattr(trt, "Builder"):
        raise BuildError(f"TensorRT is not installed (only its type stubs are); {INSTALL_HINT}")
    return str(trt.__version__)


def require_gpu() -> GpuInfo:
    gpu = detect_gpu()
    if gpu is None:
        raise BuildError("no NVIDIA GPU found (pycuda and nvidia-smi see none); TensorRT engines are "
                         "built and run on the GPU: use --backend ort on this machine")
    return gpu


def check_hardware_compat(level: str, gpu: GpuInfo) -> None:
    """BuildError when this GPU cannot build an engine of hardware-compatibility ``level``."""
    if level == "ampere_plus" and parse_compute_capability(gpu.compute_capability) < AMPERE:
        raise BuildError(f"--hardware-compat ampere_plus needs an Ampere or newer GPU (sm >= 8.0) to build "
                         f"on, this {gpu.name} is sm {gpu.compute_capability}; build with --hardware-compat none")
