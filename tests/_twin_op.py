"""The plugin's host twin behind the CudaSearchTransfer interface, for CPU tensors.

Same index math and GEMM arguments as the CUDA kernels: with it standing in, everything
above the op (TorchKernels, KernelSearchTransfer, the swapped model, the GPU check's
pipelines) runs on the CPU.  It reads and writes the tensors through their addresses, as the
kernels do, so a wrong address, shape or dtype handed to the op shows in the results.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ttsr.plugin import native


def _array(address: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    count = int(np.prod(shape))
    buffer = (ctypes.c_byte * (count * np.dtype(dtype).itemsize)).from_address(address)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


class TwinOp:
    """``transform`` (optional) changes the input arrays the twin reads, to make wrong kernels."""

    def __init__(self, transform=None) -> None:
        self.calls: list[tuple[object, type, int, int]] = []  # shapes, dtype, ref_chunk, stream
        self.closed = False
        self.transform = transform

    def chunk_size(self, shapes, dtype=np.float32, ref_chunk=0):
        return native.chunk_size(shapes, dtype, ref_chunk)

    def workspace_size(self, shapes, dtype=np.float32, ref_chunk=0):
        return native.workspace_size(shapes, dtype, ref_chunk)

    def enqueue(self, shapes, dtype, ref_chunk, inputs, outputs, workspace, stream=0):
        assert workspace != 0
        self.calls.append((shapes, dtype, ref_chunk, stream))
        arrays = [_array(a, s, dtype) for a, s in zip(inputs, shapes.expected_inputs())]
        if self.transform is not None:
            arrays = self.transform(arrays)
        results = native.search_transfer_cpu(*arrays, ref_chunk=ref_chunk)
        for address, result in zip(outputs, results):
            np.copyto(_array(address, result.shape, dtype), result)

    def relevance_path(self, shapes, dtype):
        return "twin"

    def close(self):
        self.closed = True
