"""The CUDA-free parts of scripts/gpu_check.py (the GPU itself is exercised on a GPU machine)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from ttsr.plugin import native

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

    def chunk_size(self, shapes, dtype, ref_chunk):
        return native.chunk_size(shapes, dtype, ref_chunk)

    def prepare(self, inputs, ref_chunk=0):
        arrays = [t.numpy() for t in inputs]
        return lambda: tuple(torch.from_numpy(a) for a in native.search_transfer_cpu(*arrays, ref_chunk=ref_chunk))


class _MirroredRefAtChunk7(_TwinKernels):
    """Wrong kernels: at ref_chunk 7 they search a mirrored Ref (picking the wrong patches)."""

    def prepare(self, inputs, ref_chunk=0):
        if ref_chunk == 7:
            inputs = (inputs[0], inputs[1].flip(-1), *inputs[2:])
        return super().prepare(inputs, ref_chunk)


class _LoudFp16Textures(_TwinKernels):
    """Wrong kernels: FP16 textures 10% too large (FP32 and the FP16 argmax are right)."""

    def prepare(self, inputs, ref_chunk=0):
        run = super().prepare(inputs, ref_chunk)
        if inputs[0].dtype != torch.float16:
            return run
        return lambda: (lambda s, *t: (s, *(x * 1.1 for x in t)))(*run())


def _small_cases(gpu_check):
    """The accuracy cases whose Ref has at most 45 positions: ref_chunk 1 stays fast on the CPU."""
    return [c for c in gpu_check.ACCURACY_CASES if c.hr * c.wr <= 45]


def test_accuracy_pipeline_on_the_host_twin(gpu_check, capsys):
    cases = _small_cases(gpu_check)
    assert len(cases) == 3
    failures = gpu_check.accuracy_report(_TwinKernels(), seed=0, cases=cases, device="cpu")
    assert failures == []
    lines = capsys.readouterr().out.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(cases) * len(gpu_check.REF_CHUNKS)
    # Case(1, 12, 30, 9, 5): 45 Ref positions in one pass, in 45 and in 7 (6 full + 3)
    assert [row.split(" | ")[1:3] for row in table[2:5]] == [["0", "45 / 45"], ["1", "1 / 45"], ["7", "7 / 45"]]
    assert "PASSED: all 9 accuracy checks" in lines

    # The batch-2 case with partial chunks of 7 (899 = 128 * 7 + 3), on a budget
    results = gpu_check.check_accuracy(_TwinKernels(), seed=0, ref_chunks=(7,),
                                       cases=[gpu_check.ACCURACY_CASES[1]], device="cpu")
    assert gpu_check.accuracy_failures(results) == []
    assert all(e <= gpu_check.FP32_MAX_ABS for e in results[0].fp32_max_abs)


def test_accuracy_cases_run_the_cross_chunk_merge(gpu_check):
    from ttsr.contract import Shapes

    def chunk(case, ref_chunk):
        shapes = Shapes(case.n, case.channels[0], case.h, case.w, case.hr, case.wr, *case.channels[1:])
        return native.chunk_size(shapes, np.float32, ref_chunk)

    # The default budget (1 GiB) scores every case's Ref in one GEMM; ref_chunk 1 and 7 split it.
    assert all(chunk(c, 0) == c.hr * c.wr for c in gpu_check.ACCURACY_CASES)
    assert {1, 7} <= set(gpu_check.REF_CHUNKS)
    many = [c for c in gpu_check.ACCURACY_CASES if c.hr * c.wr > 7]
    assert len(many) >= 4
    for case in many:
        assert chunk(case, 7) == 7 and case.hr * case.wr % 7, case


def _result(gpu_check, fp32=(0.0, 1e-6, 5e-6, 1e-5), agreement=0.99, psnr=(60.0, math.inf, 41.0)):
    return gpu_check.AccuracyResult(gpu_check.ACCURACY_CASES[2], 7, 7, fp32, 0.0, agreement, 0.01, psnr)


def test_failures_name_each_missed_threshold(gpu_check):
    assert gpu_check.accuracy_failures([_result(gpu_check)]) == []  # bounds are inclusive, inf PSNR passes
    label = "N=1 LR 12x30 Ref 9x5 C=256,256,128,64 ref_chunk=7"
    [line] = gpu_check.accuracy_failures([_result(gpu_check, fp32=(0.0, 0.0, 2e-5, 0.0))])
    assert line == f"{label}: FP32 max abs error > 1e-05 (s 0.00e+00, t3 0.00e+00, t2 2.00e-05, t1 0.00e+00)"
    [line] = gpu_check.accuracy_failures([_result(gpu_check, agreement=0.949)])
    assert line == f"{label}: FP16 argmax agreement 94.900% < 95%"
    [line] = gpu_check.accuracy_failures([_result(gpu_check, psnr=(50.0, 39.9, 50.0))])
    assert line == f"{label}: FP16 texture PSNR < 40 dB (t3 50.00, t2 39.90, t1 50.00 dB)"
    both = gpu_check.accuracy_failures([_result(gpu_check), _result(gpu_check, agreement=0.5, psnr=(1.0, 1.0, 1.0))])
    assert len(both) == 1 and "agreement" in both[0] and "PSNR" in both[0]


@pytest.mark.parametrize("field", ["fp32", "agreement", "psnr"])
def test_nan_fails(gpu_check, field):
    nan = math.nan
    values = {"fp32": (0.0, nan, 0.0, 0.0), "agreement": nan, "psnr": (nan, 50.0, 50.0)}
    assert len(gpu_check.accuracy_failures([_result(gpu_check, **{field: values[field]})])) == 1


def test_wrong_kernels_fail_the_check(gpu_check, capsys):
    case = gpu_check.ACCURACY_CASES[2]
    failures = gpu_check.accuracy_report(_MirroredRefAtChunk7(), seed=0, ref_chunks=(0, 7), cases=[case],
                                         device="cpu")
    assert len(failures) == 1
    assert failures[0].startswith(f"{case.label} ref_chunk=7: FP32 max abs error > 1e-05")
    assert "FP16 argmax agreement" in failures[0]
    out = capsys.readouterr().out
    assert "FAILED: 1 of 2 accuracy checks" in out and f"- {failures[0]}" in out

    failures = gpu_check.accuracy_report(_LoudFp16Textures(), seed=0, ref_chunks=(0,), cases=[case], device="cpu")
    assert len(failures) == 1 and failures[0].startswith(f"{case.label} ref_chunk=0: FP16 texture PSNR < 40 dB (")


@pytest.mark.parametrize("kernels, exit_code", [(_TwinKernels, 0), (_MirroredRefAtChunk7, 1)])
def test_exit_status_follows_the_accuracy_verdict(gpu_check, monkeypatch, kernels, exit_code):
    """main on a pretend GPU: the twin (or a wrong stand-in) as kernels, one small case on the CPU."""
    report = gpu_check.accuracy_report
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "pretend GPU")
    monkeypatch.setattr(gpu_check, "CudaKernels", lambda path: type("K", (kernels,), {
        "open": lambda self: None, "close": lambda self: None})())
    monkeypatch.setattr(gpu_check, "accuracy_report", lambda k, seed, ref_chunks: report(
        k, seed, ref_chunks, cases=[gpu_check.ACCURACY_CASES[2]], device="cpu"))
    result = CliRunner().invoke(gpu_check.main, ["--no-benchmark", "--ref-chunk", "3"])
    assert result.exit_code == exit_code, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("| N=1 LR 12x30 Ref 9x5") for line in lines) == 4  # ref_chunk 0, 1, 7 and 3
    if exit_code:
        assert "FAILED: 1 of 4 accuracy checks" in lines
        assert "Error: 1 accuracy checks failed (listed under the accuracy table)" in lines, result.output
    else:
        assert "PASSED: all 4 accuracy checks" in lines


def test_cuda_binding_plans_like_the_twin_without_a_gpu(gpu_check):
    from ttsr.contract import Shapes

    path = native.library_dir() / native.CUDA_LIBRARY
    if not path.is_file():
        pytest.skip(f"{path} not built (needs nvcc and cuBLAS)")
    op = native.CudaSearchTransfer(path)
    for shapes in (Shapes(2, 256, 23, 17, 31, 29, 256, 128, 64), Shapes(1, 256, 96, 96, 48, 48, 256, 128, 64)):
        for dtype, ref_chunk in ((np.float32, 0), (np.float16, 5), (np.float32, 7)):
            assert op.workspace_size(shapes, dtype, ref_chunk) == native.workspace_size(shapes, dtype, ref_chunk)
            assert op.chunk_size(shapes, dtype, ref_chunk) == native.chunk_size(shapes, dtype, ref_chunk)
    assert gpu_check.CudaKernels(path).chunk_size(shapes, np.float32, 0) == native.chunk_size(shapes)
    with pytest.raises(ValueError, match="not supported"):
        op.workspace_size(Shapes(1, 256, 0, 4, 4, 4, 256, 128, 64))
    with pytest.raises(ValueError, match="5 input and 4 output addresses"):
        op.enqueue(shapes, np.float32, 0, [0] * 4, [0] * 4, 0)
    if not torch.cuda.is_available():
        with pytest.raises(native.NativeOpError, match="^ttsr_st_context_create: "):
            op.open()
        with pytest.raises(native.NativeOpError, match="^ttsr_st_context_create: "):
            op.enqueue(shapes, np.float32, 0, [0] * 5, [0] * 4, 0)


def test_missing_cuda_library_names_the_fix(gpu_check, tmp_path):
    with pytest.raises(native.NativeLibraryError, match=r"libttsr_st_cuda\.so not found: .*--target ttsr_st_cuda"):
        gpu_check.CudaKernels(tmp_path / "libttsr_st_cuda.so")
    (tmp_path / "broken.so").write_bytes(b"not a library")
    with pytest.raises(native.NativeLibraryError, match="^cannot load .*broken.so"):
        native.CudaSearchTransfer(tmp_path / "broken.so")


def test_importing_native_loads_no_cuda_library():
    """native is imported on CPU machines: the twin must run without mapping the CUDA kernels."""
    code = ("import numpy as np, sys; from ttsr.contract import Shapes; from ttsr.plugin import native; "
            "shapes = Shapes(1, 2, 2, 2, 2, 2, 1, 1, 1); "
            "native.search_transfer_cpu(*(np.ones(s, np.float32) for s in shapes.expected_inputs())); "
            "maps = open('/proc/self/maps').read(); "
            "print('libttsr_st_cpu' in maps, 'libttsr_st_cuda' in maps, 'libcudart' in maps, 'libcublas' in maps)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(native.__file__).parents[2]).stdout
    assert out.split() == ["True", "False", "False", "False"]


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


def _fake_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("cmake_version, caps, cuda_archs, expected", [
    ("3.25.1", "9.0", None, "native"),
    ("3.24.0", None, None, "native"),
    ("3.22.1", "9.0", None, "90"),
    ("3.18.4", "8.6\n9.0\n8.6", None, "86;90"),
    ("3.9.2", "12.0", None, "120"),  # a version sort, not a string sort: 3.9 < 3.24
    ("3.22.1", None, None, None),  # no GPU: CMakeLists.txt's default list
    ("3.22.1", "9.0", "75;80", "75;80"),  # CUDA_ARCHS wins
])
def test_gpu_check_sh_picks_cuda_architectures(tmp_path, cmake_version, caps, cuda_archs, expected):
    """gpu_check.sh against a fake cmake (records its arguments, then fails) and a fake nvidia-smi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "cmake", f'if [ "$1" = --version ]; then echo "cmake version {cmake_version}"; exit 0; fi\n'
                                 'for a in "$@"; do echo "ARG $a"; done; exit 1')
    if caps is None:  # as nvidia-smi answers without a driver: an error on stdout
        _fake_tool(bin_dir, "nvidia-smi", "echo 'NVIDIA-SMI has failed because it could not communicate'; exit 9")
    else:
        _fake_tool(bin_dir, "nvidia-smi", f"printf '{caps}\\n'")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GPU_CHECK_BUILD_DIR": str(tmp_path / "build" / "gpu-check"),
           "PYTHON": sys.executable}
    if cuda_archs is not None:
        env["CUDA_ARCHS"] = cuda_archs
    result = subprocess.run(["bash", str(SCRIPT.with_suffix(".sh"))], capture_output=True, text=True, env=env)
    assert result.returncode == 1, result.stderr
    args = [line[4:] for line in result.stdout.splitlines() if line.startswith("ARG ")]
    assert str(tmp_path / "build" / "gpu-check") in args  # -B, so the repo is left alone
    archs = [a.split("=", 1)[1] for a in args if a.startswith("-DCMAKE_CUDA_ARCHITECTURES=")]
    assert archs == ([] if expected is None else [expected])
