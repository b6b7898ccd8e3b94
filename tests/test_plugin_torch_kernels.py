"""The kernels as a torch op and as the PyTorch model's search-transfer, with the host twin
standing in for the CUDA kernels, checked against the PyTorch reference block and model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._twin_op import TwinOp
from ttsr import contract
from ttsr.bench.features import Case, make_inputs, model_inputs
from ttsr.model import SearchTransfer, build_model
from ttsr.plugin import native
from ttsr.plugin.torch_kernels import KernelSearchTransfer, TorchKernels, open_cuda_kernels, swap_search_transfer


def test_module_matches_the_reference_block_fp32_and_fp16():
    kernels = TorchKernels(TwinOp())
    block = KernelSearchTransfer(kernels, ref_chunk=7)
    inputs = make_inputs(Case(2, 9, 11, 6, 5, (32, 32, 16, 8)), seed=3, device="cpu")
    with torch.no_grad():
        expected = SearchTransfer()(*inputs)
        got = block(*inputs)
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in expected]
    for want, have in zip(expected, got):
        assert have.dtype == torch.float32
        torch.testing.assert_close(have, want, rtol=0, atol=1e-5)
    half = block(*(t.half() for t in inputs))
    assert all(t.dtype == torch.float16 for t in half)
    for want, have in zip(expected, half):
        torch.testing.assert_close(have.float(), want, rtol=0, atol=2e-2)
    [(shapes, dtype, ref_chunk, stream)] = kernels.op.calls[:1]
    assert shapes == contract.Shapes(2, 32, 9, 11, 6, 5, 32, 16, 8) and dtype is np.float32
    assert (ref_chunk, stream) == (7, 0)  # CPU tensors: no CUDA stream


def test_non_contiguous_inputs_are_read_as_their_values():
    kernels = TorchKernels(TwinOp())
    q, k, v3, v2, v1 = make_inputs(Case(1, 6, 5, 4, 7, (8, 8, 4, 4)), seed=1, device="cpu")
    # Same values in a transposed memory layout: the op must receive linear NCHW.
    q_t = q.transpose(2, 3).contiguous().transpose(2, 3)
    assert not q_t.is_contiguous()
    got = kernels.prepare((q_t, k, v3, v2, v1))()
    want = kernels.prepare((q, k, v3, v2, v1))()
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad, message", [
    (lambda i: (i[0].double(), *i[1:]), r"input 'q' is torch.float64 .* but q is|'k' is torch.float32 .* but q is"),
    (lambda i: (*i[:4], i[4].half()), r"input 'v1' is torch.float16 on cpu, but q is torch.float32 on cpu"),
    (lambda i: tuple(t.bfloat16() for t in i), r"dtype torch.bfloat16 is not supported by the kernels"),
    (lambda i: i[:4], r"takes 5 inputs"),
    (lambda i: (i[0], i[1][:, :, :-1], *i[2:]), r"input 'v3' has shape"),
])
def test_bad_inputs_name_the_problem(bad, message):
    inputs = make_inputs(Case(1, 3, 3, 2, 2, (4, 4, 4, 4)), seed=0, device="cpu")
    op = TwinOp()
    with pytest.raises((TypeError, ValueError), match=message):
        TorchKernels(op).prepare(bad(inputs))
    assert op.calls == []


def test_swapped_model_matches_the_reference_model_and_leaves_it_alone():
    model = build_model(seed=0)
    swapped = swap_search_transfer(model, KernelSearchTransfer(TorchKernels(TwinOp())))
    assert isinstance(model.search_transfer, SearchTransfer)
    assert isinstance(swapped.search_transfer, KernelSearchTransfer)
    assert swapped.generator is model.generator and swapped.extractor is model.extractor
    assert sum(1 for _ in swapped.parameters()) == sum(1 for _ in model.parameters())
    inputs = model_inputs(8, seed=0)
    with torch.no_grad():
        expected = model(*inputs)
        got = swapped(*inputs)
    assert got.shape == (1, 3, 32, 32)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert swapped.search_transfer.kernels.op.calls, "the kernels did not run"


def test_open_cuda_kernels_names_the_fix(tmp_path):
    with pytest.raises(native.NativeLibraryError, match=r"libttsr_st_cuda\.so not found: .*--target ttsr_st_cuda"):
        open_cuda_kernels(tmp_path / "libttsr_st_cuda.so")
    path = native.library_dir() / native.CUDA_LIBRARY
    if path.is_file() and not torch.cuda.is_available():
        with pytest.raises(native.NativeOpError, match="^ttsr_st_context_create: "):
            open_cuda_kernels(path)
