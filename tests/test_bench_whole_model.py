"""ttsr.bench.whole_model on the CPU: the host twin stands in for the CUDA kernels, the timer and the
graph capture for their CUDA versions; the verdicts and tables are the GPU run's."""

from __future__ import annotations

import numpy as np
import pytest

from tests._twin_op import TwinOp
from ttsr.bench import whole_model
from ttsr.model import build_model
from ttsr.plugin.native import NativeOpError
from ttsr.plugin.torch_kernels import TorchKernels


def _timer(fn, repeats, budget):
    fn()
    return 2.5


def _capture(fn):
    output = fn()
    return (lambda: output.copy_(fn())), output


def _run(kernels, sizes, capture=_capture, precisions=("FP32",)):
    """FP32 only unless asked: FP16 convolutions crawl on the CPU."""
    return whole_model.benchmark_model(build_model(seed=0), kernels, sizes, repeats=1, budget_s=0.0, seed=0,
                                       device="cpu", timer=_timer, capture=capture, precisions=precisions)


class _MirroredRef(TorchKernels):
    """Wrong kernels: they search a mirrored Ref."""

    def prepare(self, inputs, ref_chunk=0):
        return super().prepare((inputs[0], inputs[1].flip(-1), *inputs[2:]), ref_chunk)


def test_the_twin_as_kernels_passes_every_bar():
    op = TwinOp()
    result = _run(TorchKernels(op), [5], precisions=("FP32", "FP16"))
    assert result.failures() == []
    lines = result.table().splitlines()
    assert lines[0].startswith("| LR / Ref | PyTorch block FP32 eager ms | PyTorch block FP32 graph ms | "
                               "kernels FP32 eager ms |")
    assert lines[2] == "| 5 / 20 | " + " | ".join(["2.50"] * 8) + " |"
    distances = {key[1:]: d for key, d in result.distances.items()}
    assert distances[("FP32", "PyTorch block")].psnr_db == float("inf")
    assert distances[("FP32", "kernels")].psnr_db > 100 and distances[("FP16", "kernels")].psnr_db > 60
    assert all(d.graph_vs_eager_max_abs == 0 for d in distances.values())
    [features] = result.block_accuracy
    assert features.case.label == "N=1 LR 5x5 Ref 5x5 C=256,256,128,64"
    assert max(features.fp32_max_abs) <= 1e-5 and features.fp16_agreement >= 0.95
    assert {dtype for _, dtype, _, _ in op.calls} == {np.float32, np.float16}
    report = result.to_dict()
    assert len(report["cells"]) == 8 and report["cells"][0] == {
        "lr": 5, "ref": 20, "precision": "FP32", "block": "PyTorch block", "mode": "eager", "ms": 2.5,
        "peak_mib": None, "workspace_mib": None, "note": None}
    assert len(report["block_accuracy_on_model_features"]) == 1


def test_wrong_kernels_fail_on_the_models_features():
    result = _run(_MirroredRef(TwinOp()), [12])
    failures = result.failures()
    assert len(failures) == 1, failures
    assert failures[0].startswith("whole model features: N=1 LR 12x12 Ref 12x12 C=256,256,128,64 ref_chunk=0: "
                                  "FP32 max abs error > 1e-05")


class _Failing(TorchKernels):
    def prepare(self, inputs, ref_chunk=0):
        raise NativeOpError("ttsr_st_enqueue: a cuBLAS call failed")


def test_failed_runs_are_notes_and_failures_of_the_kernels_only():
    def refuse(fn):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    with pytest.raises(NativeOpError):  # the features check runs the kernels first, outside any cell
        _run(_Failing(TwinOp()), [4])
    result = _run(TorchKernels(TwinOp()), [4], capture=refuse)
    graph = result.cells[(4, "FP32", "kernels", "graph")]
    assert graph.ms is None and graph.note == "failed (operation not permitted when stream is capturing)"
    assert result.cells[(4, "FP32", "kernels", "eager")].ms == 2.5
    assert result.failures() == [
        "whole model LR 4 / Ref 16 FP32 with the kernels, graph: failed (operation not permitted when stream "
        "is capturing)"]
    assert "| 4 / 16 | 2.50 | failed (operation not permitted" in result.table()
