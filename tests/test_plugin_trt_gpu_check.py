"""The CUDA-free parts of scripts/gpu_check.py (the GPU itself is exercised on a GPU machine)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_help_describes_the_checks(gpu_check):
    result = CliRunner().invoke(gpu_check.main, ["--help"])
    assert result.exit_code == 0
    for option in ("--sizes", "--repeats", "--max-seconds", "--library", "--no-largest"):
        assert option in result.output


def test_bad_sizes_is_a_usage_error(gpu_check):
    result = CliRunner().invoke(gpu_check.main, ["--sizes", "40,-3"])
    assert result.exit_code == 2
    assert "'-3' is not a positive integer" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_no_gpu_is_one_line_error(gpu_check):
    result = CliRunner().invoke(gpu_check.main, ["--no-benchmark"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: PyTorch sees no CUDA GPU: run this on a GPU machine with a "
                                     "CUDA build of torch")


def test_parse_sizes_and_ladder(gpu_check):
    assert gpu_check.parse_sizes(" 40,80 ,120") == [40, 80, 120]
    with pytest.raises(ValueError, match="'0'"):
        gpu_check.parse_sizes("40,0")
    ladder = gpu_check.size_ladder(120, limit=400)
    assert ladder == [152, 192, 240, 304, 384]
    assert all(s % 8 == 0 for s in ladder)
    assert gpu_check.size_ladder(2, limit=40) == [8, 16, 24, 32, 40]


def test_largest_fitting_stops_at_oom_and_at_time_cap(gpu_check):
    Measurement = gpu_check.Measurement
    ms_at = {152: 800.0, 192: 2000.0, 240: 5000.0}

    def fits_below_240(side):
        return Measurement(ms_at[side], 1.0) if side < 240 else Measurement(note="OOM")

    side, m, why = gpu_check.largest_fitting(fits_below_240, 120, 300.0, max_seconds=1000)
    assert (side, m.ms, why) == (192, 2000.0, "OOM at 240x240")

    tried = []

    def record(side):
        tried.append(side)
        return Measurement(ms_at[side], 1.0)

    # 2 s at 192 predicts 2 * (240/192)**4 = 4.9 s at 240: over a 4 s cap, so 240 is never run.
    side, _, why = gpu_check.largest_fitting(record, 120, 300.0, max_seconds=4)
    assert side == 192 and tried == [152, 192]
    assert why.startswith("stopped by time: 240x240 would take ~5 s")


def test_psnr_known_values(gpu_check):
    reference = torch.tensor([0.0, 1.0, 2.0, 4.0])
    noisy = reference + torch.tensor([0.1, -0.1, 0.1, -0.1])
    assert gpu_check.psnr(reference, noisy) == pytest.approx(10 * math.log10(16 / 0.01))
    assert gpu_check.psnr(reference, reference.clone()) == math.inf


def test_argmax_agreement_counts_lower_picks_and_ties(gpu_check):
    best = torch.tensor([0.9, 0.8, 0.7, 0.6])
    second = torch.tensor([0.5, 0.7999, 0.1, 0.2])
    picked = torch.tensor([0.9, 0.7999, 0.65, 0.5995])
    agreement, ambiguous = gpu_check.argmax_agreement(picked, best, second, tol=1e-3)
    assert agreement == pytest.approx(0.75)  # 0.65 is not within 1e-3 of 0.7
    assert ambiguous == pytest.approx(0.25)


def test_best_two_relevances_match_brute_force(gpu_check):
    case = gpu_check.Case(1, 3, 4, 2, 3, (5, 5, 3, 2))
    q, k, *_ = gpu_check.make_inputs(case, seed=1, device="cpu")
    assert all(t.min() >= 0 for t in (q, k))
    best, second = gpu_check.best_two_relevances(q, k)
    qp = F.pad(q, (1, 1, 1, 1))
    kp = F.pad(k, (1, 1, 1, 1))
    for p in range(case.h * case.w):
        y, x = divmod(p, case.w)
        qv = qp[0, :, y:y + 3, x:x + 3].flatten()
        scores = sorted(
            (float(torch.dot(qv / qv.norm(), kp[0, :, r:r + 3, c:c + 3].flatten()
                             / kp[0, :, r:r + 3, c:c + 3].flatten().norm()))
             for r in range(case.hr) for c in range(case.wr)), reverse=True)
        assert best[0, p].item() == pytest.approx(scores[0], abs=1e-6)
        assert second[0, p].item() == pytest.approx(scores[1], abs=1e-6)


def test_influenced_mask_covers_the_transfer_footprint(gpu_check):
    lr = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    lr[0, 0, 0, 4] = True
    mask = gpu_check.influenced_mask(lr, scale=2)
    assert mask.shape == (1, 1, 8, 10)
    # LR (0, 4) feeds LR rows 0..1 and columns 3..4 -> output rows 0..3, columns 6..9 at x2.
    expected = torch.zeros(8, 10, dtype=torch.bool)
    expected[0:4, 6:10] = True
    assert torch.equal(mask[0, 0], expected)


def test_markdown_table_and_extrapolation(gpu_check):
    table = gpu_check.markdown_table(["a", "b", "c"], [[1, 2.345, None], ["x", 0.5, "OOM"]])
    assert table.splitlines() == ["| a | b | c |", "|---|---|---|", "| 1 | 2.35 | - |", "| x | 0.50 | OOM |"]
    sides = [40, 80, 120]
    quadratic = [10 + 1e-4 * (s * s) ** 2 for s in sides]
    side = gpu_check.extrapolated_side(sides, quadratic, capacity=10 + 1e-4 * 400.0 ** 4, degree=2)
    assert 392 <= side <= 400
    linear = [5 + 0.01 * s * s for s in sides]
    assert 2992 <= gpu_check.extrapolated_side(sides, linear, capacity=5 + 0.01 * 3000 ** 2, degree=1) <= 3000
    assert gpu_check.extrapolated_side([40, 80], quadratic[:2], capacity=1e9, degree=2) is None


class _TwinKernels:
    """The host twin behind gpu_check's kernel interface: same index math and GEMM arguments
    as the CUDA kernels, so the accuracy pipeline runs end to end on the CPU."""

    def prepare(self, inputs, ref_chunk=0):
        from ttsr.plugin.native import search_transfer_cpu

        arrays = [t.numpy() for t in inputs]
        return lambda: tuple(torch.from_numpy(a) for a in search_transfer_cpu(*arrays, ref_chunk=ref_chunk))


def test_accuracy_pipeline_on_the_host_twin(gpu_check):
    results = gpu_check.check_accuracy(_TwinKernels(), seed=0, ref_chunk=256, device="cpu")
    assert [r.case for r in results] == list(gpu_check.ACCURACY_CASES)
    for r in results:
        assert max(r.fp32_max_abs) <= 1e-5, r
        assert r.fp16_agreement >= 0.95, r
        assert min(r.fp16_psnr_db) >= 40, r
    table = gpu_check.accuracy_table(results).splitlines()
    assert len(table) == 2 + len(results)
    assert table[2].startswith("| N=1 LR 40x40 Ref 40x40 C=256,256,128,64 |")


def test_cuda_library_binding_without_a_gpu(gpu_check):
    from ttsr.contract import Shapes
    from ttsr.plugin.native import library_dir, workspace_size

    path = library_dir() / "libttsr_st_cuda.so"
    if not path.is_file():
        pytest.skip(f"{path} not built (needs nvcc and cuBLAS)")
    kernels = gpu_check.CudaKernels(path)
    shapes = Shapes(2, 256, 23, 17, 31, 29, 256, 128, 64)
    assert kernels.workspace_bytes(shapes, half=False) == workspace_size(shapes)
    assert kernels.workspace_bytes(shapes, half=True, ref_chunk=5) == workspace_size(shapes, "float16", 5)
    with pytest.raises(gpu_check.KernelError, match="rejected"):
        kernels.workspace_bytes(Shapes(1, 256, 0, 4, 4, 4, 256, 128, 64), half=False)
    if not torch.cuda.is_available():
        with pytest.raises(gpu_check.KernelError, match="^ttsr_st_context_create: "):
            kernels.open()


def test_benchmark_report_rows_largest_sizes_and_notes(gpu_check):
    Measurement = gpu_check.Measurement
    calls = []

    def fake(kind, oom_from, per_side4_ms, mib_per_area, degree):
        def measure(side, timed_calls):
            calls.append((kind, side, timed_calls))
            if side >= oom_from:
                return Measurement(note="OOM")
            area = side * side
            return Measurement(per_side4_ms * side ** 4, mib_per_area * area ** degree, 0.5)
        return measure

    measures = {"ref": fake("ref", 190, 1e-6, 1e-4, 2), "k32": fake("k32", 10**9, 1e-6, 1e-2, 1),
                "k16": fake("k16", 10**9, 2e-7, 5e-3, 1)}
    table, notes = gpu_check.benchmark_report([40, 80, 120], measures, repeats=5, max_seconds=2.0, largest=True,
                                              capacity_mib=80 * 1024)
    lines = table.splitlines()
    # 40, 80, 120, the reference's largest (152: 192 does not fit), the kernels' largest by time
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 40x40", "| 80x80", "| 120x120", "| 152x152",
                                                             "| 192x192"]
    assert "| 192x192 | OOM |" in lines[-1]
    assert notes[0] == "reference: largest LR measured 152x152 (OOM at 192x192)"
    # 1e-6 * 192**4 ms = 1.36 s; 240 would take 1e-6 * 240**4 / 1000 = 3.3 s > 2 s
    assert notes[1].startswith("kernels FP32: largest LR measured 192x192 (stopped by time: 240x240 would take ~3 s")
    assert notes[2].startswith("reference: extrapolated memory limit ~")
    assert notes[3].startswith("kernels FP32: extrapolated memory limit ~")
    assert all(n == 5 for kind, side, n in calls if side in (40, 80, 120))
    assert all(n == 1 for kind, side, n in calls if side > 120)
