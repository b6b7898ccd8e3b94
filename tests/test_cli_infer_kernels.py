"""``infer --backend torch --search-transfer kernels``: the option's wiring and its errors on the CPU,
and a whole run with the host twin standing in for the CUDA kernels, gated against the PyTorch model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ttsr.backends.torch as torch_backend
from tests._twin_op import TwinOp
from ttsr.backends import BackendError, open_backend
from ttsr.cli import main
from ttsr.model import build_model
from ttsr.plugin import torch_kernels

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "pairs"


@pytest.fixture
def pairs(tmp_path):
    """lr/ref folders with a small crop of the bundled cat pair (12x16 LR, 48x64 Ref)."""
    for role, size in (("lr", (16, 12)), ("ref", (64, 48))):
        (tmp_path / role).mkdir()
        with Image.open(ASSETS / role / "cat.png") as image:
            image.crop((0, 0, *size)).save(tmp_path / role / "cat.png")
    return ["--lr-dir", str(tmp_path / "lr"), "--ref-dir", str(tmp_path / "ref")]


def invoke(*args: str):
    return CliRunner().invoke(main, ["infer", *args])


def test_search_transfer_applies_to_the_torch_backend_only(pairs, tmp_path):
    result = invoke(*pairs, "--backend", "ort", "--search-transfer", "kernels", "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 2
    assert "Error: --search-transfer does not apply to --backend ort; it takes --onnx, --threads" in result.output
    result = invoke(*pairs, "--search-transfer", "kernels", "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 2
    assert "Error: --search-transfer does not apply to the default ort backend (no --backend given)" in result.output
    assert not (tmp_path / "r.json").exists()


def test_kernels_on_the_cpu_device_is_a_one_line_error(pairs, tmp_path):
    result = invoke(*pairs, "--backend", "torch", "--search-transfer", "kernels", "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == ("Error: the search-transfer on the plugin's CUDA kernels needs a CUDA "
                                              "device (infer: --torch-device cuda), not cpu")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")
def test_without_cuda_the_errors_name_the_way_out(pairs):
    with pytest.raises(BackendError, match="^the search-transfer on the plugin's CUDA kernels needs a GPU, but "
                                           "PyTorch sees no CUDA device here: run the search-transfer in PyTorch"):
        open_backend("torch", model=build_model(seed=0), device="cuda", search_transfer="kernels")
    result = invoke(*pairs, "--backend", "torch", "--torch-device", "cuda", "--search-transfer", "kernels")
    assert result.exit_code == 2 and "CUDA is not available to PyTorch here" in result.output


def test_unknown_search_transfer_is_refused_by_the_backend():
    with pytest.raises(BackendError, match="^search_transfer 'cuda' is not one of torch, kernels$"):
        open_backend("torch", model=build_model(seed=0), search_transfer="cuda")


@pytest.fixture
def twin_gpu(monkeypatch):
    """The backend on a pretend CUDA device: the CPU, with the host twin as the CUDA kernels."""
    ops = []

    def open_twin(library=None, device=None):
        ops.append(TwinOp())
        return ops[-1]

    monkeypatch.setattr(torch_backend, "cuda_device", lambda device: torch.device("cpu"))
    monkeypatch.setattr(torch_kernels, "open_cuda_kernels", open_twin)
    return ops


def _mirrored_ref(arrays):
    """Wrong kernels: they search the Ref mirrored left to right."""
    q, k, *values = arrays
    return [q, k[..., ::-1].copy(), *values]


def test_kernels_run_is_gated_against_the_pytorch_model(pairs, tmp_path, twin_gpu):
    report_path = tmp_path / "report.json"
    result = invoke(*pairs, "--backend", "torch", "--search-transfer", "kernels", "--warmup", "0",
                    "--json", str(report_path), "--check", "--min-psnr", "100")
    assert result.exit_code == 0, result.output
    assert "Backend: torch (search-transfer on the plugin's CUDA kernels); 1 pair(s)" in result.output
    assert "PSNR vs reference (dB)            cat       inf  >= 100    pass" in result.output
    assert "[PASSED] 1 of 1 check(s) pass." in result.output
    report = json.loads(report_path.read_text())
    assert report["search_transfer"] == "kernels" and report["backend"] == "torch"
    [op] = twin_gpu
    assert op.calls and op.closed  # the kernels ran, and the backend released them


def test_wrong_kernels_fail_the_gate(pairs, tmp_path, monkeypatch, twin_gpu):
    monkeypatch.setattr(torch_kernels, "open_cuda_kernels", lambda library=None, device=None: TwinOp(_mirrored_ref))
    result = invoke(*pairs, "--backend", "torch", "--search-transfer", "kernels", "--warmup", "0",
                    "--check", "--min-psnr", "100")
    assert result.exit_code == 1, result.output
    assert "[FAILED] 0 of 1 check(s) pass; failing: cat" in result.output


def test_missing_kernel_library_names_the_fix(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(torch_backend, "cuda_device", lambda device: torch.device("cpu"))
    monkeypatch.setenv("TTSR_PLUGIN_DIR", str(tmp_path))
    result = invoke(*pairs, "--backend", "torch", "--search-transfer", "kernels")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: the plugin's CUDA kernels cannot run: {tmp_path}/libttsr_st_cuda.so not found: build it with "
        "`cmake -S . -B build && cmake --build build --target ttsr_st_cuda` (needs nvcc and cuBLAS) or "
        "`bash scripts/gpu_check.sh`")
