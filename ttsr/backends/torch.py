"""The PyTorch reference model as a backend, on the CPU or a CUDA device; on CUDA, optionally with its
search-transfer on the plugin's CUDA kernels (``search_transfer="kernels"``: no TensorRT needed)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

from ttsr.backends.base import Backend, BackendError
from ttsr.backends.profiles import ProfileError
from ttsr.data.prepare import ModelInputs
from ttsr.model.ttsr import TTSR
from ttsr.plugin.native import NativeOpError


class TorchBackend(Backend):
    """The PyTorch reference, on the CPU or a CUDA device (TF32 off); times include the host copies."""

    name = "torch"

    def __init__(self, model: TTSR, device: str | torch.device = "cpu",
                 release: Callable[[], None] | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.last_stages: dict[str, float] = {}
        self._release = release  # frees what the model holds outside PyTorch (the kernels' cuBLAS context)

    def close(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def run(self, inputs: ModelInputs) -> np.ndarray:
        tensors = [t.to(self.device) for t in inputs.as_torch()]
        with torch.inference_mode(), _fp32_matmul(self.device):
            sr = self.model(*tensors)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        output: np.ndarray = sr.float().cpu().numpy()
        return output


@contextmanager
def _fp32_matmul(device: torch.device) -> Iterator[None]:
    """TF32 off on CUDA while the reference runs: it would round convolutions and the relevance
    matmul to 10-bit mantissas and can flip near-tied argmax choices of the search."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


KNOWN_ERRORS: tuple[type[Exception], ...] = (ProfileError, NativeOpError)
UNEXPECTED_HINT = "report it with the command line"
SEARCH_TRANSFERS = ("torch", "kernels")  # where the search-transfer block runs


def open_backend(model: TTSR, device: str | torch.device = "cpu", search_transfer: str = "torch") -> TorchBackend:
    if search_transfer == "torch":
        return TorchBackend(model, device=device)
    if search_transfer != "kernels":
        raise BackendError(f"search_transfer {search_transfer!r} is not one of {', '.join(SEARCH_TRANSFERS)}")
    from ttsr.plugin.native import NativeLibraryError
    from ttsr.plugin.torch_kernels import KernelSearchTransfer, TorchKernels, open_cuda_kernels, swap_search_transfer

    cuda = cuda_device(device)
    try:
        kernels = TorchKernels(open_cuda_kernels(device=cuda))
    except (NativeLibraryError, NativeOpError) as exc:
        raise BackendError(f"the plugin's CUDA kernels cannot run: {exc}") from None
    return TorchBackend(swap_search_transfer(model, KernelSearchTransfer(kernels)), cuda, release=kernels.close)


def cuda_device(device: str | torch.device) -> torch.device:
    """``device`` when it is a CUDA device PyTorch can use; else BackendError naming the fix."""
    device = torch.device(device)
    if device.type != "cuda":
        raise BackendError(f"the search-transfer on the plugin's CUDA kernels needs a CUDA device "
                           f"(infer: --torch-device cuda), not {device}")
    if not torch.cuda.is_available():
        raise BackendError("the search-transfer on the plugin's CUDA kernels needs a GPU, but PyTorch sees no CUDA "
                           "device here: run the search-transfer in PyTorch (infer: --search-transfer torch), or "
                           "use the ort backend on the CPU")
    return device


def unavailable_reason() -> None:
    """The PyTorch reference runs wherever this package imports."""
    return None
