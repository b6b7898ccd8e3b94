"""The PyTorch reference model as a backend, on the CPU or a CUDA device."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from ttsr.backends.base import Backend
from ttsr.backends.profiles import ProfileError
from ttsr.data.prepare import ModelInputs
from ttsr.model.ttsr import TTSR


class TorchBackend(Backend):
    """The PyTorch reference, on the CPU or a CUDA device (TF32 off); times include the host copies."""

    name = "torch"

    def __init__(self, model: TTSR, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.last_stages: dict[str, float] = {}

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


KNOWN_ERRORS: tuple[type[Exception], ...] = (ProfileError,)
UNEXPECTED_HINT = "report it with the command line"


def open_backend(model: TTSR, device: str | torch.device = "cpu") -> TorchBackend:
    return TorchBackend(model, device=device)


def unavailable_reason() -> None:
    """The PyTorch reference runs wherever this package imports."""
    return None
