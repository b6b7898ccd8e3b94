"""build-engine on a machine without TensorRT or GPU: usage errors, the one-line refusal, the help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ttsr.cli import main

REPO = Path(__file__).resolve().parents[1]


def build(*args: str):
    return CliRunner().invoke(main, ["build-engine", *args], catch_exceptions=False)


def tensorrt_installed() -> bool:
    try:
        import tensorrt
    except ImportError:
        return False
    return hasattr(tensorrt, "Builder")


def test_without_tensorrt_one_line_with_the_install_hint(tmp_path):
    if tensorrt_installed():
        pytest.skip("TensorRT is installed here")
    engine = tmp_path / "ttsr.engine"
    result = build("--seed", "0", "--opt-lr", "16", "--opt-ref", "64", "--output", str(engine))
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith("Error: TensorRT is not installed") and "pip install tensorrt-cu12" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    ([], "give --checkpoint PTH or --onnx"),
    (["--seed", "0", "--onnx", "x.onnx"], "give one of --checkpoint, --onnx or --seed"),
    (["--seed", "0", "--opt-lr", "16", "--opt-ref", "62"], "multiple of 4"),
    (["--seed", "0", "--opt-lr", "16"], "--min-ref, --opt-ref, --max-ref"),
    (["--seed", "0", "--min-lr", "32", "--opt-lr", "16", "--opt-ref", "64"], "min <= opt <= max"),
    (["--seed", "0", "--opt-lr", "16x", "--opt-ref", "64"], "not HxW"),
    (["--seed", "0", "--opt-lr", "16", "--opt-ref", "64", "--precision", "fp32", "--weak-fp16"],
     "--weak-fp16 builds an FP16 engine"),
])
def test_usage_errors_come_before_any_work(tmp_path, args, message):
    result = build(*args, "--output", str(tmp_path / "e.engine"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_teaches_through_the_shim():
    result = subprocess.run([sys.executable, "build_engine.py", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: build_engine.py")
    for text in ("--checkpoint", "--precision", "--min-lr", "--max-ref", "--max-batch", "--workspace",
                 "--timing-cache", "--opt-level", "--hardware-compat", "--plugin", "Examples:",
                 "strongly typed", "pip install tensorrt-cu12"):
        assert text in result.stdout, text


def test_module_entry_point_lists_every_step():
    result = subprocess.run([sys.executable, "-m", "ttsr.cli", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for command in ("build-engine", "infer", "export", "fp16-estimate", "evaluate"):
        assert command in result.stdout
