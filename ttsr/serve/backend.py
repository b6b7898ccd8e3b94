"""The one place where serving opens an inference backend: through the registry of :mod:`ttsr.backends`."""

from __future__ import annotations

from ttsr.backends import Backend, open_backend
from ttsr.serve.spec import ServedBackend


def open_served_backend(spec: ServedBackend) -> Backend:
    """The backend ``spec`` names; BackendError with one line when it cannot open."""
    if spec.kind == "trt":
        return open_backend("trt", engine=spec.engine, plugin=spec.plugin)
    if spec.kind == "ort":
        return open_backend("ort", onnx=spec.onnx, threads=spec.threads)
    import torch

    from ttsr.model import build_model, load_checkpoint

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    model = load_checkpoint(spec.checkpoint) if spec.checkpoint is not None else build_model(seed=spec.seed)
    return open_backend(spec.kind, model=model, device=spec.torch_device)
