"""build-engine on a machine without TensorRT or GPU: usage errors, the one-line refusal, the help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_engine_build_flow import fake_tensorrt, write_graph_and_plugin
from ttsr.backends.gpu import GpuInfo
from ttsr.backends.trt import checks as trt_checks
from ttsr.backends.trt.sidecar import read_sidecar
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
    assert message.startswith("Error: TensorRT is not installed") and "pip install tensorrt-cu13 pycuda" in message
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
                 "strongly typed", "pip install tensorrt-cu13 pycuda"):
        assert text in result.stdout, text


def test_module_entry_point_lists_every_step():
    result = subprocess.run([sys.executable, "-m", "ttsr.cli", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for command in ("build-engine", "infer", "export", "fp16-estimate", "evaluate"):
        assert command in result.stdout


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """A rewritten FP16 graph, a plugin file, and the recording TensorRT stand-in on a given GPU."""
    def install(gpu: GpuInfo) -> dict:
        calls: dict = {}
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(calls))
        monkeypatch.setattr(trt_checks, "detect_gpu", lambda: gpu)
        return calls

    graph, plugin = write_graph_and_plugin(tmp_path)
    args = ["--onnx", str(graph), "--plugin", str(plugin), "--opt-lr", "16", "--opt-ref", "64",
            "--output", str(tmp_path / "ttsr.engine")]
    return install, args


def test_build_prints_and_records_the_plugin_workspace(fake_build, tmp_path):
    install, args = fake_build
    install(GpuInfo("Fake GPU", "8.9"))
    result = build(*args)
    assert result.exit_code == 0, result.output
    (memory,) = read_sidecar(tmp_path / "ttsr.engine").plugin_memory
    assert memory.ref_positions == 16 * 16
    assert f"Plugin: {memory.describe()}" in result.stdout


def test_ampere_plus_on_an_older_gpu_fails_before_any_work(fake_build, tmp_path):
    install, args = fake_build
    calls = install(GpuInfo("Tesla T4", "7.5"))
    result = build(*args, "--hardware-compat", "ampere_plus")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "ampere_plus needs an Ampere or newer GPU" in result.stderr and calls == {}
    assert not (tmp_path / "ttsr.engine").exists()


def test_missing_plugin_file(fake_build, tmp_path):
    install, args = fake_build
    install(GpuInfo("Fake GPU", "8.9"))
    (tmp_path / "libplugin.so").unlink()
    result = build(*args)
    assert result.exit_code == 1 and "libplugin.so does not exist; build it with" in result.stderr


def test_workspace_budget_reaches_the_plugin_node_and_the_sidecar(fake_build, tmp_path, monkeypatch):
    import onnx

    from ttsr import contract
    from ttsr.contract import Shapes
    from ttsr.plugin.native import workspace_size

    install, args = fake_build
    install(GpuInfo("Fake GPU", "9.0"))
    fields: list[dict] = []

    def parse_from_file(self, path):  # what the TensorRT ONNX parser would hand the plugin creator
        model = onnx.load(path)
        fields.extend({a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                      for node in model.graph.node if node.op_type == contract.OP_TYPE)
        return True

    monkeypatch.setattr(sys.modules["tensorrt"].OnnxParser, "parse_from_file", parse_from_file)
    # LR 64 x Ref 256 (search grid 64x64): the whole relevance block (64 MiB) exceeds 3 MiB.
    result = build(*args, "--opt-lr", "64", "--opt-ref", "256", "--workspace-budget", "3")
    assert result.exit_code == 0, result.output
    assert fields == [{contract.WORKSPACE_BUDGET_FIELD: 3}]
    (memory,) = read_sidecar(tmp_path / "ttsr.engine").plugin_memory
    assert memory.workspace_budget_mib == 3
    largest = Shapes(1, 256, 64, 64, 64, 64, 256, 128, 64)
    assert memory.workspace_bytes == workspace_size(largest, "float16", budget=3 << 20)
    assert memory.workspace_bytes < workspace_size(largest, "float16")  # the default tile is larger
    assert "tile budget 3 MiB" in result.stdout


@pytest.mark.parametrize("value", ["-1", str((1 << 20) + 1), "1GiB"])
def test_workspace_budget_out_of_range_is_a_usage_error(tmp_path, value):
    result = build("--seed", "0", "--opt-lr", "16", "--opt-ref", "64", "--workspace-budget", value,
                   "--output", str(tmp_path / "e.engine"))
    assert result.exit_code == 2 and "--workspace-budget" in result.stderr
    assert list(tmp_path.iterdir()) == []
