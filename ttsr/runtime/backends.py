"""The three inference backends behind one ``run(inputs) -> sr`` interface, and the default choice.

* ``trt``: a TensorRT engine on the GPU (:mod:`ttsr.runtime.trt_backend`).
* ``ort``: ONNX Runtime on the CPU over the rewritten graph, whose plugin node
  runs in the CPU twin of the CUDA kernels (:mod:`ttsr.runtime.ort_backend`).
* ``torch``: the PyTorch reference model itself, on the CPU or a CUDA device.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Protocol

import numpy as np
import torch

from ttsr.data.prepare import ModelInputs
from ttsr.engine.gpu import detect_gpu
from ttsr.engine.profiles import Profile
from ttsr.model.ttsr import TTSR

class Backend(Protocol):
    name: str
    last_stages: dict[str, float]

    def run(self, inputs: ModelInputs) -> np.ndarray:
        """SR output (N, 3, 4H, 4W) float32 in [-1, 1]."""
        ...


class TorchBackend:
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


class OrtRunner:
    """Adapts :class:`ttsr.runtime.ort_backend.OrtBackend` to :class:`Backend`."""

    name = "ort"

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int | None = None) -> None:
        from ttsr.runtime.ort_backend import OrtBackend

        self.backend = OrtBackend(onnx_path, threads=threads)
        self.last_stages: dict[str, float] = {}

    def run(self, inputs: ModelInputs) -> np.ndarray:
        return self.backend.run(inputs)


def default_backend(engine: str | os.PathLike[str] | None) -> str:
    """``trt`` when an engine is given and a GPU is present, else ``ort`` (the rewritten graph on the CPU)."""
    return "trt" if engine is not None and detect_gpu() is not None else "ort"


def backend_profiles(backend: Backend) -> list[Profile] | None:
    """The engine's optimisation profiles for ``trt``; None where any size runs."""
    profiles = getattr(backend, "profiles", None)
    return list(profiles) if profiles is not None else None
