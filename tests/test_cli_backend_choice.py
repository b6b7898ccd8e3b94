"""Issue #14, input side of infer: --engine always means TensorRT, the default backend is said and
recorded, options of another backend are errors, and a graph that was never rewritten is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest

from _onnx_models import onnx_models
from test_cli_infer import assert_clean_failure, fake_trt, folders, invoke, outputs, pairs  # noqa: F401 (fixtures)
from ttsr import pipeline
from ttsr.backends import gpu
from ttsr.backends.trt import checks as trt_checks
from ttsr.backends.trt import runner as trt_runner
from ttsr.backends.trt.sidecar import read_sidecar, write_sidecar


def assert_usage_error(result, tmp_path, expect):
    """Exit 2, click's usage lines and one error line, and no output written."""
    assert result.exit_code == 2, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error:") and expect in error, result.stderr
    assert not (tmp_path / "sr").exists() and not (tmp_path / "report.json").exists()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


@pytest.fixture
def no_export(monkeypatch):
    """infer must not export a graph in these tests (a backend other than the one asked would need it)."""
    def refuse(*args, **kwargs):
        raise AssertionError("infer exported a graph for a backend nobody asked for")

    monkeypatch.setattr(pipeline, "make_graph", refuse)


def test_the_ci_gate_of_the_issue_fails_instead_of_running_ort(models, pairs, tmp_path, no_export):
    """`infer --engine missing.engine --onnx rewritten.onnx --check ...` on a machine without a GPU."""
    result = invoke(*folders(pairs, hr=False), "--engine", str(tmp_path / "none.engine"),
                    "--onnx", str(models.rewritten), "--checkpoint", str(models.checkpoint),
                    *outputs(tmp_path), "--check", "--min-psnr", "40", "--min-ssim", "0.99")
    assert_usage_error(result, tmp_path, "--engine, --onnx name different backends")
    assert "PASSED" not in result.output


def test_an_engine_on_a_machine_without_a_gpu_fails_instead_of_falling_back(pairs, fake_trt, tmp_path,
                                                                            monkeypatch, no_export):
    args, _ = fake_trt
    monkeypatch.setattr(trt_runner, "require_gpu", trt_checks.require_gpu)  # the fixture's fake GPU, gone
    monkeypatch.setattr(trt_checks, "detect_gpu", lambda: None)
    monkeypatch.setattr(gpu, "detect_gpu", lambda: None)
    engine = args[args.index("--engine") + 1]
    result = invoke(*folders(pairs, hr=False), "--engine", engine, "--warmup", "0", *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="no NVIDIA GPU found")
    assert "Backend: trt (chosen by --engine)" in result.stdout


def test_an_engine_without_backend_runs_on_tensorrt(pairs, fake_trt):
    args, log = fake_trt
    engine = args[args.index("--engine") + 1]
    result = invoke(*folders(pairs, hr=False), "--engine", engine, "--warmup", "0")
    assert result.exit_code == 0, result.output
    assert "Backend: trt (chosen by --engine)" in result.stdout and log["executions"] == 2


@pytest.mark.parametrize("args, choice, note", [
    ([], "default", "Backend: ort (the default: no --backend, --engine or --onnx given)"),
    (["--onnx", "{onnx}"], "implied", "Backend: ort (chosen by --onnx)"),
    (["--backend", "ort", "--onnx", "{onnx}"], "asked", "Backend: ort;"),
])
def test_how_the_backend_was_chosen_is_printed_and_recorded(models, pairs, tmp_path, monkeypatch, args, choice,
                                                            note):
    exported = []
    monkeypatch.setattr(pipeline, "make_graph", lambda *a, **k: exported.append(a) or models.rewritten)
    args = [arg.replace("{onnx}", str(models.rewritten)) for arg in args]
    report = tmp_path / "report.json"
    result = invoke(*folders(pairs, hr=False), *args, "--checkpoint", str(models.checkpoint), "--threads", "1",
                    "--warmup", "0", "--json", str(report))
    assert result.exit_code == 0, result.output
    assert note in result.stdout
    recorded = json.loads(report.read_text())
    assert (recorded["backend"], recorded["backend_choice"]) == ("ort", choice)
    assert len(exported) == (choice == "default")


@pytest.mark.parametrize("args, expect", [
    (["--backend", "ort", "--onnx", "{onnx}", "--engine", "{engine}"], "--engine does not apply to --backend ort"),
    (["--backend", "torch", "--onnx", "{onnx}"], "--onnx does not apply to --backend torch"),
    (["--backend", "torch", "--threads", "2"], "--threads does not apply to --backend torch"),
    (["--backend", "ort", "--onnx", "{onnx}", "--plugin", "{engine}"], "--plugin does not apply to --backend ort"),
    (["--backend", "ort", "--onnx", "{onnx}", "--cuda-graph"], "--cuda-graph does not apply to --backend ort"),
    (["--cuda-graph"], "--cuda-graph does not apply to the default ort backend (no --backend given)"),
    (["--engine", "{engine}", "--threads", "2"],
     "--threads does not apply to the trt backend (chosen by --engine); it takes --engine, --plugin, --cuda-graph"),
])
def test_options_of_another_backend_are_errors(models, pairs, tmp_path, no_export, args, expect):
    args = [arg.replace("{onnx}", str(models.rewritten)).replace("{engine}", str(tmp_path / "x.engine"))
            for arg in args]
    result = invoke(*folders(pairs, hr=False), *args, "--checkpoint", str(models.checkpoint), *outputs(tmp_path))
    assert_usage_error(result, tmp_path, expect)


def test_a_graph_that_was_never_rewritten_is_refused(models, pairs, tmp_path):
    result = invoke(*folders(pairs, hr=False), "--backend", "ort", "--onnx", str(models.plain),
                    "--checkpoint", str(models.checkpoint), *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="was never rewritten (no TTSRSearchTransfer node)")


def test_an_engine_of_other_weights_is_refused(pairs, fake_trt, tmp_path, models):
    args, log = fake_trt
    engine = args[args.index("--engine") + 1]
    write_sidecar(engine, dataclasses.replace(read_sidecar(engine), checkpoint_sha256="ab" * 32, seed=None))
    result = invoke(*folders(pairs, hr=False), *args, "--checkpoint", str(models.checkpoint), *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="was made from the checkpoint with sha256 abababababab")
    assert log.get("executions", 0) == 0
