"""The one place where serving opens an inference backend (the runtime classes of :mod:`ttsr.runtime`)."""

from __future__ import annotations

from typing import Any

from ttsr.serve.spec import BackendSpec


def open_backend(spec: BackendSpec) -> Any:
    """A backend with ``run(ModelInputs) -> sr`` for ``spec``; the trt one holds GPU memory until ``close()``."""
    if spec.kind == "trt":
        from ttsr.runtime.trt_backend import TrtBackend

        if spec.engine is None:
            raise ValueError("the trt backend needs an engine")
        return TrtBackend(spec.engine, plugin_library=spec.plugin)
    if spec.kind == "ort":
        from ttsr.runtime.backends import OrtRunner

        if spec.onnx is None:
            raise ValueError("the ort backend needs the rewritten ONNX graph")
        return OrtRunner(spec.onnx, threads=spec.threads)
    if spec.kind == "torch":
        import torch

        from ttsr.model import build_model, load_checkpoint
        from ttsr.runtime.backends import TorchBackend

        if spec.threads is not None:
            torch.set_num_threads(spec.threads)

        model = (load_checkpoint(spec.checkpoint) if spec.checkpoint is not None
                 else build_model(seed=spec.seed))
        return TorchBackend(model, device=spec.torch_device)
    raise ValueError(f"unknown backend {spec.kind!r}; expected trt, ort or torch")
