"""The plugin's search-transfer kernels on torch tensors, and as a drop-in for the PyTorch block.

:class:`TorchKernels` runs an op with the :class:`ttsr.plugin.native.CudaSearchTransfer`
interface (plan, workspace size, enqueue on raw addresses) on torch tensors, on the current
torch stream, so that it mixes with PyTorch work and CUDA-graph capture.
:class:`KernelSearchTransfer` is that op as an ``nn.Module`` with the signature of
:class:`ttsr.model.SearchTransfer`, and :func:`swap_search_transfer` puts it into a TTSR model:
the whole model on the GPU without TensorRT (``infer --search-transfer kernels``, the
whole-model GPU check).  The kernels' library is opened in one place, :func:`open_cuda_kernels`.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ttsr import contract
from ttsr.model.ttsr import TTSR

Inputs = tuple[Tensor, ...]  # q, k, v3, v2, v1
Outputs = tuple[Tensor, ...]  # s, t3, t2, t1

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16}


class SearchTransferOp(Protocol):
    """What :class:`ttsr.plugin.native.CudaSearchTransfer` offers (and the CPU twin in the tests)."""

    def chunk_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int) -> int: ...

    def workspace_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int) -> int: ...

    def enqueue(self, shapes: contract.Shapes, dtype: type, ref_chunk: int, inputs: Sequence[int],
                outputs: Sequence[int], workspace: int, stream: int = 0) -> None: ...

    def relevance_path(self, shapes: contract.Shapes, dtype: type) -> str: ...

    def close(self) -> None: ...


def open_cuda_kernels(library: Path | None = None, device: torch.device | None = None,
                      relevance: str = "auto") -> SearchTransferOp:
    """The CUDA kernels of ``libttsr_st_cuda.so`` (default: ``ttsr.plugin.native.library_dir()``),
    with their cuBLAS context created on ``device`` (default: the current one); ``relevance``: the
    relevance path (auto, gemm, fused, gram; see ttsr_st_cuda_api.h).
    NativeLibraryError / NativeOpError name the problem."""
    from ttsr.plugin.native import CudaSearchTransfer

    op = CudaSearchTransfer(library, relevance=relevance)
    with torch.cuda.device(device) if device is not None else contextlib.nullcontext():
        op.open()
    return op


def numpy_dtype(dtype: torch.dtype) -> type:
    """The op's element type for a torch dtype; TypeError naming the supported ones."""
    try:
        return _NUMPY_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"{contract.OP_TYPE}: dtype {dtype} is not supported by the kernels, "
                        f"use torch.float32 or torch.float16") from None


@dataclass
class KernelCall:
    """One prepared call: outputs and workspace stay allocated so that it can be replayed and timed."""

    op: SearchTransferOp
    shapes: contract.Shapes
    dtype: type
    ref_chunk: int
    inputs: Inputs
    outputs: Outputs
    workspace: Tensor

    def __call__(self) -> Outputs:
        device = self.inputs[0].device
        if device.type != "cuda":  # the CPU twin in the tests: host addresses, no stream
            self._enqueue(0)
        else:
            with torch.cuda.device(device):  # the kernels launch on the current device
                self._enqueue(torch.cuda.current_stream(device).cuda_stream)
        return self.outputs

    def _enqueue(self, stream: int) -> None:
        self.op.enqueue(self.shapes, self.dtype, self.ref_chunk, [t.data_ptr() for t in self.inputs],
                        [t.data_ptr() for t in self.outputs], self.workspace.data_ptr(), stream)


class TorchKernels:
    """A search-transfer op on torch tensors (all five of one dtype and device)."""

    def __init__(self, op: SearchTransferOp):
        self.op = op

    def close(self) -> None:
        self.op.close()

    def chunk_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int = 0) -> int:
        return self.op.chunk_size(shapes, dtype, ref_chunk)

    def workspace_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int = 0) -> int:
        return self.op.workspace_size(shapes, dtype, ref_chunk)

    def relevance_path(self, shapes: contract.Shapes, dtype: type) -> str:
        """The relevance path a call with these sizes takes (``gram``, ``gemm`` or ``fused``)."""
        return self.op.relevance_path(shapes, dtype)

    def prepare(self, inputs: Sequence[Tensor], ref_chunk: int = 0) -> KernelCall:
        """Checks ``inputs`` (q, k, v3, v2, v1) and allocates the outputs and the workspace next to them."""
        if len(inputs) != len(contract.INPUT_NAMES):
            raise ValueError(f"{contract.OP_TYPE}: takes {len(contract.INPUT_NAMES)} inputs "
                             f"{contract.INPUT_NAMES}, got {len(inputs)}")
        first = inputs[0]
        for name, tensor in zip(contract.INPUT_NAMES, inputs):
            if tensor.dtype != first.dtype or tensor.device != first.device:
                raise TypeError(f"{contract.OP_TYPE}: input {name!r} is {tensor.dtype} on {tensor.device}, "
                                f"but q is {first.dtype} on {first.device}; give all five alike")
        dtype = numpy_dtype(first.dtype)
        # The kernels read linear NCHW; a no-op for tensors that already are.
        linear = tuple(t.contiguous() for t in inputs)
        shapes = contract.Shapes.from_inputs(*linear)
        outputs = tuple(torch.empty(s, dtype=first.dtype, device=first.device) for s in shapes.outputs())
        workspace = torch.empty(self.workspace_size(shapes, dtype, ref_chunk), dtype=torch.uint8,
                                device=first.device)
        return KernelCall(self.op, shapes, dtype, ref_chunk, linear, outputs, workspace)


class KernelSearchTransfer(nn.Module):
    """:class:`ttsr.model.SearchTransfer` computed by the plugin's kernels: same inputs and outputs,
    memory linear in the image area.  Not differentiable (inference only)."""

    def __init__(self, kernels: TorchKernels, ref_chunk: int = 0) -> None:
        super().__init__()
        self.kernels = kernels
        self.ref_chunk = ref_chunk

    def forward(self, q: Tensor, k: Tensor, v3: Tensor, v2: Tensor, v1: Tensor) -> Outputs:
        return self.kernels.prepare((q, k, v3, v2, v1), self.ref_chunk)()


def swap_search_transfer(model: TTSR, block: nn.Module) -> TTSR:
    """A TTSR that runs ``block`` as its search-transfer and shares every other module (and
    so every weight) with ``model``, which is left unchanged."""
    swapped = copy.copy(model)
    # copy.copy shares the submodule table; a table of its own keeps ``model``'s block in place.
    swapped._modules = dict(model._modules)
    swapped._modules["search_transfer"] = block
    return swapped
