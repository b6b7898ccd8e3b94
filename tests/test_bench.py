"""The CUDA-free parts of ttsr.bench: accuracy verdicts (with the host twin as the kernels),
benchmark tables and size search, the per-kernel breakdown, the targets and the memcheck runner."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests._twin_op import TwinOp
from ttsr.bench import accuracy, block, kernel_profile, memcheck, sizes, targets
from ttsr.bench.features import Case, make_inputs, model_inputs
from ttsr.bench.tables import markdown_table
from ttsr.bench.timing import Measurement
from ttsr.bench.whole_model import WholeModelBenchmark
from ttsr.contract import Shapes
from ttsr.plugin import native
from ttsr.plugin.torch_kernels import TorchKernels


# ----------------------------------------------------------------------------- inputs and helpers

def test_parse_sizes_and_ladder():
    assert sizes.parse_sizes(" 40,80 ,120") == [40, 80, 120]
    with pytest.raises(ValueError, match="'0' is not a positive integer: give e.g. --model-sizes"):
        sizes.parse_sizes("40,0", "--model-sizes")
    ladder = block.size_ladder(120, limit=400)
    assert ladder == [152, 192, 240, 304, 384]
    assert block.size_ladder(2, limit=40) == [8, 16, 24, 32, 40]


def test_model_inputs_have_the_models_ranges_and_a_ref_four_times_the_lr():
    lq, lq_up, ref, ref_downup = model_inputs(10, seed=2)
    assert lq.shape == (1, 3, 10, 10) and lq_up.shape == ref.shape == ref_downup.shape == (1, 3, 40, 40)
    assert lq.min() >= -1 and lq.max() <= 1 and lq.std() > 0.05
    assert all(t.min() >= 0 and t.max() <= 1 for t in (lq_up, ref, ref_downup))
    assert torch.equal(model_inputs(10, seed=2)[2], ref) and not torch.equal(model_inputs(10, seed=3)[2], ref)


def test_psnr_known_values():
    reference = torch.tensor([0.0, 1.0, 2.0, 4.0])
    noisy = reference + torch.tensor([0.1, -0.1, 0.1, -0.1])
    assert accuracy.psnr(reference, noisy) == pytest.approx(10 * math.log10(16 / 0.01))
    assert accuracy.psnr(reference, reference.clone()) == math.inf


def test_argmax_agreement_counts_lower_picks_and_ties():
    best = torch.tensor([0.9, 0.8, 0.7, 0.6])
    second = torch.tensor([0.5, 0.7999, 0.1, 0.2])
    picked = torch.tensor([0.9, 0.7999, 0.65, 0.5995])
    agreement, ambiguous = accuracy.argmax_agreement(picked, best, second, tol=1e-3)
    assert agreement == pytest.approx(0.75)  # 0.65 is not within 1e-3 of 0.7
    assert ambiguous == pytest.approx(0.25)


def test_best_two_relevances_match_brute_force():
    case = Case(1, 3, 4, 2, 3, (5, 5, 3, 2))
    q, k, *_ = make_inputs(case, seed=1, device="cpu")
    assert all(t.min() >= 0 for t in (q, k))
    best, second = accuracy.best_two_relevances(q, k)
    qp, kp = F.pad(q, (1, 1, 1, 1)), F.pad(k, (1, 1, 1, 1))
    for p in range(case.h * case.w):
        y, x = divmod(p, case.w)
        qv = qp[0, :, y:y + 3, x:x + 3].flatten()
        scores = sorted(
            (float(torch.dot(qv / qv.norm(), kp[0, :, r:r + 3, c:c + 3].flatten()
                             / kp[0, :, r:r + 3, c:c + 3].flatten().norm()))
             for r in range(case.hr) for c in range(case.wr)), reverse=True)
        assert best[0, p].item() == pytest.approx(scores[0], abs=1e-6)
        assert second[0, p].item() == pytest.approx(scores[1], abs=1e-6)


def test_influenced_mask_covers_the_transfer_footprint():
    lr = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    lr[0, 0, 0, 4] = True
    mask = accuracy.influenced_mask(lr, scale=2)
    # LR (0, 4) feeds LR rows 0..1 and columns 3..4 -> output rows 0..3, columns 6..9 at x2.
    expected = torch.zeros(8, 10, dtype=torch.bool)
    expected[0:4, 6:10] = True
    assert torch.equal(mask[0, 0], expected)


def test_markdown_table_and_extrapolation():
    table = markdown_table(["a", "b", "c"], [[1, 2.345, None], ["x", 0.5, "OOM"]])
    assert table.splitlines() == ["| a | b | c |", "|---|---|---|", "| 1 | 2.35 | - |", "| x | 0.50 | OOM |"]
    sides = [40, 80, 120]
    quadratic = [10 + 1e-4 * (s * s) ** 2 for s in sides]
    assert 392 <= block.extrapolated_side(sides, quadratic, capacity=10 + 1e-4 * 400.0 ** 4, degree=2) <= 400
    linear = [5 + 0.01 * s * s for s in sides]
    assert 2992 <= block.extrapolated_side(sides, linear, capacity=5 + 0.01 * 3000 ** 2, degree=1) <= 3000
    assert block.extrapolated_side([40, 80], quadratic[:2], capacity=1e9, degree=2) is None


# ----------------------------------------------------------------------------- accuracy

class _MirroredRefAtChunk7(TorchKernels):
    """Wrong kernels: at ref_chunk 7 they search a mirrored Ref (picking the wrong patches)."""

    def prepare(self, inputs, ref_chunk=0):
        if ref_chunk == 7:
            inputs = (inputs[0], inputs[1].flip(-1), *inputs[2:])
        return super().prepare(inputs, ref_chunk)


class _LoudFp16Textures(TorchKernels):
    """Wrong kernels: FP16 textures 10% too large (FP32 and the FP16 argmax are right)."""

    def prepare(self, inputs, ref_chunk=0):
        run = super().prepare(inputs, ref_chunk)
        if inputs[0].dtype != torch.float16:
            return run
        return lambda: (lambda s, *t: (s, *(x * 1.1 for x in t)))(*run())


def _small_cases():
    """The accuracy cases whose Ref has at most 45 positions: ref_chunk 1 stays fast on the CPU."""
    return [c for c in accuracy.ACCURACY_CASES if c.hr * c.wr <= 45]


def test_accuracy_pipeline_on_the_host_twin(capsys):
    cases = _small_cases()
    assert len(cases) == 3
    results, failures = accuracy.accuracy_report(TorchKernels(TwinOp()), seed=0, cases=cases, device="cpu")
    assert failures == [] and len(results) == 9
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(cases) * len(accuracy.REF_CHUNKS)
    # Case(1, 12, 30, 9, 5): 45 Ref positions in one pass, in 45 and in 7 (6 full + 3)
    assert [row.split(" | ")[1:4] for row in table[2:5]] == [["0", "auto", "45 / 45"], ["1", "auto", "1 / 45"],
                                                             ["7", "auto", "7 / 45"]]
    assert "PASSED: all 9 accuracy checks" in lines
    assert results[0].to_dict()["fp32_max_abs"].keys() == {"s", "t3", "t2", "t1"}

    # The batch-2 case with partial chunks of 7 (899 = 128 * 7 + 3)
    results = accuracy.check_accuracy(TorchKernels(TwinOp()), seed=0, ref_chunks=(7,),
                                      cases=[accuracy.ACCURACY_CASES[1]], device="cpu")
    assert accuracy.accuracy_failures(results) == []


def test_accuracy_cases_run_the_cross_chunk_merge():
    def chunk(case, ref_chunk):
        shapes = Shapes(case.n, case.channels[0], case.h, case.w, case.hr, case.wr, *case.channels[1:])
        return native.chunk_size(shapes, np.float32, ref_chunk)

    assert {1, 7} <= set(accuracy.REF_CHUNKS)
    many = [c for c in accuracy.ACCURACY_CASES if c.hr * c.wr > 7]
    assert len(many) >= 4
    for case in many:
        assert chunk(case, 7) == 7 and case.hr * case.wr % 7, case


def _result(fp32=(0.0, 1e-6, 5e-6, 1e-5), agreement=0.99, psnr=(60.0, math.inf, 41.0)):
    return accuracy.AccuracyResult(accuracy.ACCURACY_CASES[2], 7, 7, fp32, 0.0, agreement, 0.01, psnr)


def test_failures_name_each_missed_bar():
    assert accuracy.accuracy_failures([_result()]) == []  # bounds are inclusive, inf PSNR passes
    label = "N=1 LR 12x30 Ref 9x5 C=256,256,128,64 ref_chunk=7"
    [line] = accuracy.accuracy_failures([_result(fp32=(0.0, 0.0, 2e-5, 0.0))])
    assert line == f"{label}: FP32 max abs error > 1e-05 (s 0.00e+00, t3 0.00e+00, t2 2.00e-05, t1 0.00e+00)"
    [line] = accuracy.accuracy_failures([_result(agreement=0.949)])
    assert line == f"{label}: FP16 argmax agreement 94.900% < 95%"
    [line] = accuracy.accuracy_failures([_result(psnr=(50.0, 39.9, 50.0))])
    assert line == f"{label}: FP16 texture PSNR < 40 dB (t3 50.00, t2 39.90, t1 50.00 dB)"


@pytest.mark.parametrize("field", ["fp32", "agreement", "psnr"])
def test_nan_fails(field):
    nan = math.nan
    values = {"fp32": (0.0, nan, 0.0, 0.0), "agreement": nan, "psnr": (nan, 50.0, 50.0)}
    assert len(accuracy.accuracy_failures([_result(**{field: values[field]})])) == 1


def test_wrong_kernels_fail_the_check(capsys):
    case = accuracy.ACCURACY_CASES[2]
    _, failures = accuracy.accuracy_report(_MirroredRefAtChunk7(TwinOp()), seed=0, ref_chunks=(0, 7), cases=[case],
                                           device="cpu")
    assert len(failures) == 1
    assert failures[0].startswith(f"{case.label} ref_chunk=7: FP32 max abs error > 1e-05")
    assert "FP16 argmax agreement" in failures[0]
    assert "FAILED: 1 of 2 accuracy checks" in capsys.readouterr().out

    _, failures = accuracy.accuracy_report(_LoudFp16Textures(TwinOp()), seed=0, ref_chunks=(0,), cases=[case],
                                           device="cpu")
    assert len(failures) == 1 and failures[0].startswith(f"{case.label} ref_chunk=0: FP16 texture PSNR < 40 dB (")


# ----------------------------------------------------------------------------- block benchmark

def test_largest_fitting_stops_at_oom_and_at_time_cap():
    ms_at = {152: 800.0, 192: 2000.0, 240: 5000.0}

    def fits_below_240(side):
        return Measurement(ms_at[side], 1.0) if side < 240 else Measurement(note="OOM")

    side, m, why = block.largest_fitting(fits_below_240, 120, 300.0, max_seconds=1000)
    assert (side, m.ms, why) == (192, 2000.0, "OOM at 240x240")

    tried = []

    def record(side):
        tried.append(side)
        return Measurement(ms_at[side], 1.0)

    # 2 s at 192 predicts 2 * (240/192)**4 = 4.9 s at 240: over a 4 s cap, so 240 is never run.
    side, _, why = block.largest_fitting(record, 120, 300.0, max_seconds=4)
    assert side == 192 and tried == [152, 192]
    assert why.startswith("stopped by time: 240x240 would take ~5 s")


def test_block_benchmark_rows_columns_largest_sizes_and_notes():
    calls = []

    def fake(kind, oom_from, per_side4_ms, mib_per_area, degree):
        def measure(side, timed_calls):
            calls.append((kind, side, timed_calls))
            if side >= oom_from:
                return Measurement(note="OOM")
            area = side * side
            return Measurement(per_side4_ms * side ** 4, mib_per_area * area ** degree, 0.5)
        return measure

    measures = {"ref32": fake("ref32", 190, 1e-6, 1e-4, 2), "ref16": fake("ref16", 190, 3e-7, 5e-5, 2),
                "k32": fake("k32", 10**9, 1e-6, 1e-2, 1), "k16": fake("k16", 10**9, 2e-7, 5e-3, 1)}
    result = block.benchmark_block([40, 80, 120], measures, repeats=5, max_seconds=2.0, largest=True,
                                   capacity_mib=80 * 1024)
    lines = result.table().splitlines()
    assert lines[0] == ("| LR (=Ref) | PyTorch block FP32 ms | PyTorch block FP32 peak MiB | PyTorch block FP16 ms | "
                        "PyTorch block FP16 peak MiB | kernels FP32 ms | kernels FP32 peak MiB | kernels FP16 ms | "
                        "kernels FP16 peak MiB | FP16 auto path | workspace MiB (FP32/FP16) |")
    # 40, 80, 120, the reference's largest (152: 192 does not fit), the kernels' largest by time
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 40x40", "| 80x80", "| 120x120", "| 152x152",
                                                             "| 192x192"]
    assert lines[-1].startswith("| 192x192 | OOM | - | OOM | - | 1358.95 | 368.64 |")
    assert lines[2].endswith("| - | 0.5 / 0.5 |")  # no auto path asked for
    assert result.notes[0] == "PyTorch block FP32: largest LR measured 152x152 (OOM at 192x192)"
    # 1e-6 * 192**4 ms = 1.36 s; 240 would take 1e-6 * 240**4 / 1000 = 3.3 s > 2 s
    assert result.notes[1].startswith("kernels FP32: largest LR measured 192x192 (stopped by time: 240x240 would")
    assert result.notes[2].startswith("PyTorch block FP32: extrapolated memory limit ~")
    assert result.notes[3].startswith("kernels FP32: extrapolated memory limit ~")
    assert all(n == 5 for kind, side, n in calls if side in (40, 80, 120))
    assert all(n == 1 for kind, side, n in calls if side > 120)
    assert result.to_dict()["rows"]["40"]["k16"] == {"ms": 2e-7 * 40 ** 4, "peak_mib": 5e-3 * 1600,
                                                     "workspace_mib": 0.5, "note": None}


def test_block_failures_are_the_kernels_failed_runs_not_oom():
    cells = {"ref32": Measurement(note="OOM"), "ref16": Measurement(note="failed (reference broke)"),
             "k32": Measurement(note="OOM"), "k16": Measurement(note="failed (ttsr_st_enqueue: a cuBLAS call failed)")}
    result = block.BlockBenchmark(rows={384: cells, 40: {k: Measurement(1.0) for k in cells}})
    assert result.failures() == [
        "block benchmark LR = Ref 384 kernels FP16: failed (ttsr_st_enqueue: a cuBLAS call failed)"]


# ----------------------------------------------------------------------------- per-kernel breakdown

def _kernel(name, dur, grid, cat="kernel"):
    return {"ph": "X", "cat": cat, "name": name, "dur": dur, "args": {"grid": grid, "block": [256, 1, 1]}}


def test_kernel_breakdown_groups_by_name_and_keeps_the_fewest_blocks():
    trace = {"traceEvents": [
        _kernel("normalise_patches_kernel", 200.0, [4, 1, 1]), _kernel("gemm_sm90", 100.0, [66, 2, 1]),
        _kernel("normalise_patches_kernel", 210.0, [1152, 1, 1]), _kernel("update_best_kernel", 50.0, [4608, 1, 1]),
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 5.0},
        _kernel("gemm_sm90", 90.0, [132, 1, 1], cat="Kernel"),  # older torch spells it so
    ]}
    kernels = kernel_profile.kernel_breakdown(trace)
    assert [(k.name, k.launches, k.total_us, k.min_blocks, k.max_blocks) for k in kernels] == [
        ("normalise_patches_kernel", 2, 410.0, 4, 1152), ("gemm_sm90", 2, 190.0, 132, 132),
        ("update_best_kernel", 1, 50.0, 4608, 4608)]
    lines = kernel_profile.breakdown_table(kernels, calls=2, sm_count=132, top=2).splitlines()
    assert lines[2] == "| `normalise_patches_kernel` | 1 | 0.205 | 63.1% | 4-1152 (< SMs) |"
    assert lines[3] == "| `gemm_sm90` | 1 | 0.095 | 29.2% | 132 |"
    assert lines[4] == "| (1 more kernels) | 0.5 | 0.025 | 7.7% | - |"


@pytest.mark.skipif(not hasattr(torch.profiler, "profile"), reason="torch.profiler missing")
def test_profile_trace_of_this_torch_parses():
    """This torch's trace format, on the CPU (no kernels: the breakdown is empty, not an error)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.ones(4).sum()
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"trace-{os.getpid()}.json"
    try:
        prof.export_chrome_trace(str(path))
        import json

        assert kernel_profile.kernel_breakdown(json.loads(path.read_text())) == []
    finally:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- targets

def test_targets_read_the_figures_they_name():
    bench = block.BlockBenchmark()
    for side, (r32, k32, k16) in {120: (23.0, 20.0, 2.6), 384: (1912.0, 2812.0, 140.0)}.items():
        bench.rows[side] = {"ref32": Measurement(r32), "ref16": Measurement(r32 / 4),
                            "k32": Measurement(k32, workspace_mib=1400.0), "k16": Measurement(k16, workspace_mib=700.0)}
    model = WholeModelBenchmark()
    model.cells[(160, "FP16", "kernels", "eager")] = Measurement(24.0)
    model.cells[(160, "FP16", "PyTorch block", "eager")] = Measurement(30.0)
    model.cells[(160, "FP16", "kernels", "graph")] = Measurement(note="OOM")
    rows = [(t.label, t.measured, t.bound, t.verdict) for t in targets.evaluate(bench, model)]
    assert rows == [
        ("FP16 kernels, LR = Ref 120 (ms)", 2.6, 2.5, "missed"),
        ("FP16 kernels, LR = Ref 384 (ms)", 140.0, 150.0, "met"),
        ("FP32 kernels, LR = Ref 120 (ms)", 20.0, 23.0, "met"),
        ("FP32 kernels, LR = Ref 384 (ms)", 2812.0, 1912.0, "missed"),
        ("workspace at LR = Ref 384 (MiB, larger of FP32/FP16)", 1400.0, 4096.0, "met"),
        ("whole model FP16 with the kernels, LR 160 / Ref 640, eager (ms)", 24.0, 25.0, "met"),
        ("whole model FP16 with the kernels, LR 160 / Ref 640, graph (ms)", None, 25.0, "not measured")]
    # every time target sits beside the PyTorch block of the same run
    assert [(t.pytorch, t.speedup) for t in targets.evaluate(bench, model)][:2] == [(5.75, 5.75 / 2.6),
                                                                                 (478.0, 478.0 / 140.0)]
    assert targets.evaluate(bench, model)[5].speedup == 30.0 / 24.0
    assert targets.evaluate(bench, model)[6].speedup is None
    assert targets.evaluate(None, None) == []
    assert "| FP16 kernels, LR = Ref 120 (ms) | <= 2.5 ms | 2.60 | 5.75 | 2.21x | missed |" in targets.targets_table(
        targets.evaluate(bench, None))


# ----------------------------------------------------------------------------- memcheck

SUMMARY_OK = "memcheck child: ran 30 kernel calls\n========= ERROR SUMMARY: 0 errors\n"


@pytest.mark.parametrize("returncode, output, status, errors", [
    (0, SUMMARY_OK, "passed", 0),
    (3, "========= Invalid __global__ write of size 4 bytes\n========= ERROR SUMMARY: 2 errors\n", "failed", 2),
    (1, "Traceback ...\nttsr.plugin.native.NativeOpError: ttsr_st_enqueue: CUDA error\n"
        "========= ERROR SUMMARY: 0 errors\n", "failed", 0),  # the kernels failed without a memory error
    (0, "memcheck child: ran 30 kernel calls\n", "failed", None),  # no verdict from the sanitizer
])
def test_memcheck_verdict(returncode, output, status, errors):
    result = memcheck.verdict(returncode, output)
    assert (result.status, result.errors) == (status, errors)
    assert result.failed is (status == "failed")
    if status == "passed":
        assert result.line() == "memcheck: 30 kernel calls, 0 errors"
    else:
        assert result.detail[-1] == output.strip().splitlines()[-1]


def _fake_sanitizer(tmp_path, body):
    path = tmp_path / "compute-sanitizer"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_run_memcheck_runs_the_child_under_the_sanitizer(tmp_path):
    log = tmp_path / "args"
    sanitizer = _fake_sanitizer(tmp_path, f'echo "$@" > {log}; echo "cache=$PYTORCH_NO_CUDA_MEMORY_CACHING" >> {log}\n'
                                          f'printf "{SUMMARY_OK}"')
    result = memcheck.run_memcheck(tmp_path / "lib.so", timeout_s=30, python="py", sanitizer=sanitizer)
    assert result.status == "passed" and result.calls == 30
    args, cache = log.read_text().splitlines()
    assert args == ("--tool memcheck --report-api-errors no --error-exitcode 3 --print-limit 20 "
                    f"py -m ttsr.bench.memcheck --library {tmp_path / 'lib.so'}")
    assert cache == "cache=1"


def test_run_memcheck_timeout_ends_the_child_and_skip_without_sanitizer(tmp_path, monkeypatch):
    pid_file = tmp_path / "pid"
    sanitizer = _fake_sanitizer(tmp_path, f"sleep 30 & echo $! > {pid_file}; wait")
    start = time.monotonic()
    result = memcheck.run_memcheck(Path("lib.so"), timeout_s=1, sanitizer=sanitizer)
    assert result.status == "timed out" and not result.failed and time.monotonic() - start < 20
    grandchild = int(pid_file.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]

    monkeypatch.setattr(memcheck, "find_sanitizer", lambda: None)
    skipped = memcheck.run_memcheck(Path("lib.so"), timeout_s=1)
    assert skipped.status == "skipped" and not skipped.failed
    assert skipped.line() == "memcheck skipped: compute-sanitizer not found (PATH, next to nvcc, /usr/local/cuda)"


def test_memcheck_child_runs_every_case_on_each_relevance_path(monkeypatch, capsys):
    opened = []

    def open_twin(library, device=None, relevance="auto"):
        opened.append((library, relevance, TwinOp()))
        return opened[-1][2]

    monkeypatch.setattr(memcheck, "open_cuda_kernels", open_twin)
    monkeypatch.setattr(memcheck, "run_cases", lambda kernels, fp32: 10 if fp32 else 1)
    assert memcheck.main(["--library", "lib.so"]) == 0
    assert [(str(lib), path) for lib, path, _ in opened] == [("lib.so", "gram"), ("lib.so", "gemm"),
                                                             ("lib.so", "fused")]
    assert all(op.closed for _, _, op in opened)
    assert capsys.readouterr().out == memcheck.DONE.format(21) + "\n"  # FP32 on gram and gemm, not fused


def test_memcheck_cases_run_on_the_twin():
    op = TwinOp()
    calls = memcheck.run_cases(TorchKernels(op), device="cpu")
    assert calls == len(memcheck.CASES) * 2 * len(memcheck.REF_CHUNKS) == len(op.calls)
    assert {c[1] for c in op.calls} == {np.float32, np.float16}
    half_only = TwinOp()
    assert memcheck.run_cases(TorchKernels(half_only), device="cpu", fp32=False) == calls // 2
    assert {c[1] for c in half_only.calls} == {np.float16}
    assert any(c.n > 1 for c in memcheck.CASES) and any(c.h * c.w == 1 for c in memcheck.CASES)


def test_memcheck_child_usage():
    assert memcheck.main([]) == 2
    assert memcheck.DONE.format(3) == "memcheck child: ran 3 kernel calls"


def test_block_table_shows_the_fp16_paths_and_the_auto_choice():
    calls = []

    def fake(key, ms):
        def measure(side, timed_calls):
            calls.append((key, side))
            return Measurement(ms * side, 1.0, 0.25)
        return measure

    measures = {key: fake(key, ms) for key, ms in (("ref32", 1.0), ("ref16", 0.5), ("k32", 0.9), ("k32-gemm", 0.95),
                                                   ("k16", 0.2), ("k16-gemm", 0.2), ("k16-fused", 0.3))}
    result = block.benchmark_block([40], measures, repeats=3, max_seconds=1.0, largest=False, capacity_mib=1024.0,
                                   auto_path=lambda side: "gram")
    header, _, row = result.table().splitlines()
    assert header.endswith("| kernels FP16 gemm ms | kernels FP16 gemm peak MiB | kernels FP16 fused ms | "
                           "kernels FP16 fused peak MiB | FP16 auto path | workspace MiB (FP32/FP16) |")
    assert row == "| 40x40 | 40.00 | 1.00 | 20.00 | 1.00 | 36.00 | 1.00 | 38.00 | 1.00 | 8.00 | 1.00 | 8.00 | 1.00 " \
                  "| 12.00 | 1.00 | gram | 0.2 / 0.2 |"
    assert result.to_dict()["fp16_auto_paths"] == {"40": "gram"}


def test_measures_on_gpu_adds_a_column_per_forced_path():
    kernels = TorchKernels(TwinOp())
    measures = block.measures_on_gpu(kernels, 1.0, 0, 0, {"gemm": kernels, "fused": kernels})
    assert sorted(measures) == sorted(block.COLUMNS)
    assert block.square_shapes(24) == Shapes(
        1, 256, 24, 24, 24, 24, 256, 128, 64)
