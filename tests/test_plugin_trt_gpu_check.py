"""scripts/gpu_check.py and gpu_check.sh, the front end of ttsr.bench, without a GPU: options,
errors, the whole run on a pretend GPU (the host twin standing in for the CUDA kernels), the
JSON report and the exit status."""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests._twin_op import TwinOp
from ttsr.bench import accuracy, whole_model
from ttsr.plugin import native
from ttsr.plugin import torch_kernels

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_help_describes_the_checks(gpu_check):
    result = CliRunner().invoke(gpu_check.main, ["--help"])
    assert result.exit_code == 0
    for option in ("--sizes", "--model-sizes", "--profile-size", "--memcheck", "--json", "--library",
                   "--no-largest", "Examples:"):
        assert option in result.output


@pytest.mark.parametrize("option", ["--sizes", "--model-sizes"])
def test_bad_sizes_is_a_usage_error(gpu_check, option):
    result = CliRunner().invoke(gpu_check.main, [option, "40,-3"])
    assert result.exit_code == 2
    assert f"'-3' is not a positive integer: give e.g. {option} 40,80,120" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_no_gpu_is_one_line_error(gpu_check):
    result = CliRunner().invoke(gpu_check.main, ["--no-memcheck"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: PyTorch sees no CUDA GPU: run this on a GPU machine with a "
                                     "CUDA build of torch")


def test_gpu_check_imports_only_what_the_gpu_machine_has(tmp_path):
    """The GPU machine has torch, numpy and click but maybe not Pillow, ONNX or tqdm: the check, and
    the memcheck child, must not import them."""
    code = ("import sys\n"
            "for name in ('PIL', 'onnx', 'onnxruntime', 'onnx_graphsurgeon', 'tqdm', 'tensorrt', 'pycuda'):\n"
            "    sys.modules[name] = None\n"
            "import importlib.util, runpy\n"
            f"spec = importlib.util.spec_from_file_location('gpu_check', {str(SCRIPT)!r})\n"
            "module = importlib.util.module_from_spec(spec); sys.modules['gpu_check'] = module\n"
            "spec.loader.exec_module(module)\n"
            "import ttsr.bench.memcheck, ttsr.bench.kernel_profile, ttsr.bench.whole_model, ttsr.model\n"
            "print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=SCRIPT.parents[1])
    assert out.stdout.strip() == "imported", out.stderr


class _MirroredRefAtChunk7(torch_kernels.TorchKernels):
    """Wrong kernels: at ref_chunk 7 they search a mirrored Ref (picking the wrong patches)."""

    def prepare(self, inputs, ref_chunk=0):
        if ref_chunk == 7:
            inputs = (inputs[0], inputs[1].flip(-1), *inputs[2:])
        return super().prepare(inputs, ref_chunk)


def _pretend_gpu(monkeypatch, gpu_check, kernels_class, tmp_path):
    """main on a pretend GPU: the twin (or a wrong stand-in) as kernels, everything on the CPU."""
    ops = []

    def open_twin(library, device=None, relevance="auto"):
        ops.append(TwinOp())
        return ops[-1]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "pretend GPU")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: type("P", (), {"multi_processor_count": 132, "total_memory": 1 << 37})())
    monkeypatch.setattr(torch_kernels, "open_cuda_kernels", open_twin)
    monkeypatch.setattr(torch_kernels, "TorchKernels", kernels_class)
    report = accuracy.accuracy_report
    monkeypatch.setattr(accuracy, "accuracy_report", lambda k, seed, ref_chunks, relevance: report(
        k, seed, ref_chunks, cases=[accuracy.ACCURACY_CASES[2]], device="cpu", relevance=relevance))
    monkeypatch.setattr(whole_model, "benchmark_model", functools.partial(
        whole_model.benchmark_model, device="cpu", timer=lambda fn, repeats, budget: (fn(), 1.5)[1],
        capture=lambda fn: (lambda: None, fn()), precisions=("FP32",)))  # FP16 convolutions crawl on a CPU
    return ops


@pytest.mark.parametrize("kernels_class, exit_code", [(torch_kernels.TorchKernels, 0), (_MirroredRefAtChunk7, 1)])
def test_exit_status_and_json_follow_the_bars(gpu_check, monkeypatch, tmp_path, kernels_class, exit_code):
    ops = _pretend_gpu(monkeypatch, gpu_check, kernels_class, tmp_path)
    report_path = tmp_path / "out" / "report.json"
    # The whole model runs with the right kernels only: the wrong ones fail the block check already.
    model_sizes = "" if exit_code else "4"
    result = CliRunner().invoke(gpu_check.main, ["--no-memcheck", "--sizes", "", "--profile-size", "0",
                                                 "--model-sizes", model_sizes, "--ref-chunk", "3",
                                                 "--json", str(report_path)])
    assert result.exit_code == exit_code, result.output
    lines = result.output.splitlines()
    assert "GPU: pretend GPU (132 SMs)" in lines[0]
    # ref_chunk 0, 1, 7 and 3, on each relevance path
    rows = [line.split(" | ")[1:3] for line in lines if line.startswith("| N=1 LR 12x30 Ref 9x5")]
    assert rows == [[chunk, path] for path in ("gram", "gemm", "fused") for chunk in ("0", "1", "7", "3")]
    report = json.loads(report_path.read_text())
    assert report["gpu"]["name"] == "pretend GPU" and report["ref_chunk"] == 3
    assert len(report["accuracy"]) == 12 and report["accuracy"][8]["relevance"] == "fused"
    assert len(ops) == 4 and all(op.closed for op in ops)  # auto, gram, gemm, fused
    assert report["passed"] is (exit_code == 0)
    if exit_code:
        assert len(report["failures"]) == 3
        for line, path in zip(report["failures"], ("gram", "gemm", "fused")):
            assert line.startswith(f"N=1 LR 12x30 Ref 9x5 C=256,256,128,64 ref_chunk=7 relevance={path}: "
                                   "FP32 max abs error > 1e-05")
        assert "Error: 3 check(s) missed their bar (listed above)" in lines
    else:
        assert report["failures"] == []
        assert "PASSED: every bar met" in lines
        assert "| 4 / 16 | 1.50 | 1.50 | 1.50 | 1.50 | - | - | - | - |" in lines
        assert len(report["whole_model"]["cells"]) == 4
        assert [t["verdict"] for t in report["targets"]] == ["not measured"] * 2  # LR 160 FP16 not run
        assert set(report["seconds"]) == {
            "total", *(f"Accuracy (kernels vs PyTorch reference block), relevance path {path}"
                       for path in ("gram", "gemm", "fused")),
            "Whole model (PyTorch with the kernels vs the PyTorch block, batch 1)"}
        whole = {(c["precision"], c["block"]): c for c in report["whole_model"]["accuracy"]}
        assert whole[("FP32", "kernels")]["psnr_db"] > 80  # the twin computes what the reference does


def test_cuda_binding_plans_like_the_twin_without_a_gpu():
    from ttsr.contract import Shapes

    path = native.library_dir() / native.CUDA_LIBRARY
    if not path.is_file():
        pytest.skip(f"{path} not built (needs nvcc and cuBLAS)")
    op = native.CudaSearchTransfer(path)
    for shapes in (Shapes(2, 256, 23, 17, 31, 29, 256, 128, 64), Shapes(1, 256, 96, 96, 48, 48, 256, 128, 64)):
        for dtype, ref_chunk in ((np.float32, 0), (np.float16, 5), (np.float32, 7)):
            assert op.workspace_size(shapes, dtype, ref_chunk) == native.workspace_size(shapes, dtype, ref_chunk)
            assert op.chunk_size(shapes, dtype, ref_chunk) == native.chunk_size(shapes, dtype, ref_chunk)
    # The patch paths tile by the patch rules and lay out their own buffers: their tables name the
    # tiles those paths run, and their callers allocate what those paths use.
    big = Shapes(1, 256, 120, 120, 120, 120, 256, 128, 64)
    gram_tiles, patch_tiles = (native.tile_sizes(big, budget=64 << 20, relevance=r) for r in ("gram", "gemm"))
    for relevance, tiles in (("auto", gram_tiles), ("gram", gram_tiles), ("gemm", patch_tiles), ("fused", patch_tiles)):
        forced = native.CudaSearchTransfer(path, relevance)
        assert forced.tile_sizes(big, budget=64 << 20) == tiles
        for dtype in (np.float32, np.float16):
            assert forced.workspace_size(big, dtype) == native.workspace_size(big, dtype, relevance=relevance)
    assert gram_tiles != patch_tiles
    assert native.workspace_size(big, budget=64 << 20, relevance="gemm") > 3 * native.workspace_size(big, budget=64 << 20)
    with pytest.raises(ValueError, match="not supported"):
        op.workspace_size(Shapes(1, 256, 0, 4, 4, 4, 256, 128, 64))
    with pytest.raises(ValueError, match="5 input and 4 output addresses"):
        op.enqueue(shapes, np.float32, 0, [0] * 4, [0] * 4, 0)
    if not torch.cuda.is_available():
        with pytest.raises(native.NativeOpError, match="^ttsr_st_context_create: "):
            op.open()
        with pytest.raises(native.NativeOpError, match="^ttsr_st_context_create: "):
            op.enqueue(shapes, np.float32, 0, [0] * 5, [0] * 4, 0)


def test_missing_cuda_library_names_the_fix(tmp_path):
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


def _fake_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("cmake_version, caps, cuda_archs, expected", [
    ("3.25.1", "9.0", None, "native"),
    ("3.24.0", None, None, None),  # no GPU: refused before CMake (native would fail there)
    ("3.22.1", "9.0", None, "90"),
    ("3.18.4", "8.6\n9.0\n8.6", None, "86;90"),
    ("3.9.2", "12.0", None, "120"),  # a version sort, not a string sort: 3.9 < 3.24
    ("3.22.1", None, None, None),
    ("3.22.1", "9.0", "75;80", "75;80"),  # CUDA_ARCHS wins
    ("3.25.1", None, "90", "90"),  # no GPU but CUDA_ARCHS: a build only
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
    if expected is None:
        assert args == [] and "nvidia-smi lists no GPU" in result.stderr
        return
    assert str(tmp_path / "build" / "gpu-check") in args  # -B, so the repo is left alone
    assert "-DTTSR_CPU_TWIN=OFF" in args  # the GPU machine's Python may lack the twin's OpenBLAS
    archs = [a.split("=", 1)[1] for a in args if a.startswith("-DCMAKE_CUDA_ARCHITECTURES=")]
    assert archs == [expected]


def test_gpu_check_sh_builds_then_runs_the_check_with_the_json_report(tmp_path):
    """A fake cmake that configures with cuBLAS and builds; a fake Python that records what it runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "cmake", 'if [ "$1" = --version ]; then echo "cmake version 3.28.0"; exit 0; fi\n'
                                 'echo "-- cuBLAS: /usr/lib/libcublas.so"; echo "CMAKE $*" >> "$LOG"')
    _fake_tool(bin_dir, "fake-python", 'echo "PYTHON $*" >> "$LOG"; exit 7')
    _fake_tool(bin_dir, "nvidia-smi", "printf '9.0\\n'")
    build = tmp_path / "build" / "gpu-check"
    log = tmp_path / "log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GPU_CHECK_BUILD_DIR": str(build), "PYTHON": "fake-python",
           "LOG": str(log)}
    result = subprocess.run(["bash", str(SCRIPT.with_suffix(".sh")), "--no-memcheck", "--sizes", "40"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 7, result.stderr  # the check's own status
    calls = log.read_text().splitlines()
    assert calls[1].startswith(f"CMAKE --build {build} -j ") and calls[1].endswith("--target ttsr_st_cuda")
    assert calls[-1] == (f"PYTHON scripts/gpu_check.py --library {build}/libttsr_st_cuda.so "
                         f"--json {build}/report.json --no-memcheck --sizes 40")
