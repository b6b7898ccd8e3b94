"""Issue #14, output side: paths checked before the run, threshold ranges, -h, --json -, an LR too
small to score, latency per shape with counts, the progress bar and the machine in the JSON."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from tqdm import tqdm

from test_cli_infer import REPO, fake_trt, folders, make_pairs  # noqa: F401  (fake_trt is a fixture)
from ttsr.cli import infer as infer_module
from ttsr.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, ["infer", *args], catch_exceptions=False)


@pytest.fixture
def pairs(tmp_path):
    return make_pairs(tmp_path / "pairs")


def one_line_error(result, expect: str, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("Error:") and expect in line, result.stderr
    assert "Backend:" not in result.stdout  # nothing ran
    return line


def test_json_on_a_folder_names_it_without_a_temp_name(pairs, tmp_path):
    line = one_line_error(invoke(*folders(pairs), "--backend", "torch", "--json", str(tmp_path)),
                          f"--json {tmp_path} is a folder; give a file name such as {tmp_path / 'report.json'}")
    assert ".tmp" not in line and len(invoke(*folders(pairs), "--backend", "torch", "--json",
                                             str(tmp_path)).stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--out-dir", "--report"])
def test_output_folder_that_is_a_file_is_refused_before_the_run(pairs, tmp_path, option):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    one_line_error(invoke(*folders(pairs), "--backend", "torch", option, str(blocker)),
                   f"{option} {blocker} is a file; give a folder")


def test_output_folders_are_made_before_the_run_and_removed_when_it_fails(pairs, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    made = tmp_path / "new"
    result = invoke(*folders(pairs), "--backend", "ort", "--onnx", str(bad), "--out-dir", str(made / "sr"),
                    "--report", str(made / "report"), "--json", str(made / "json" / "r.json"))
    assert result.exit_code == 1 and "not a readable ONNX model" in result.stderr
    assert not made.exists()


@pytest.mark.parametrize("args, option", [
    (["--min-psnr", "-5"], "--min-psnr"),
    (["--min-psnr", "0"], "--min-psnr"),
    (["--min-ssim", "1.5"], "--min-ssim"),
    (["--min-ssim", "-0.1"], "--min-ssim"),
    (["--max-p99-ms", "0"], "--max-p99-ms"),
    (["--max-mean-ms", "-1"], "--max-mean-ms"),
])
def test_threshold_ranges(pairs, args, option):
    result = invoke(*folders(pairs), "--backend", "torch", "--check", *args)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.stderr
    assert "Backend:" not in result.stdout


@pytest.mark.parametrize("script", ["infer.py", "build_engine.py"])
def test_short_help_through_the_shims(script):
    result = subprocess.run([sys.executable, script, "-h"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {script}") and "Examples:" in result.stdout


def test_lr_too_small_to_score_is_refused_before_the_run(pairs, tmp_path):
    Image.new("RGB", (1, 1)).save(pairs / "lr" / "cat.png")
    one_line_error(invoke(*folders(pairs, hr=False), "--backend", "torch", "--out-dir", str(tmp_path / "sr")),
                   "pair cat: LR is 1x1: its 4x4 SR output, less the 4-pixel crop border, is smaller than "
                   "SSIM's 11x11 window; give an LR of at least 5x5")
    assert not (tmp_path / "sr").exists()


def test_p99_gate_on_too_few_calls_is_refused_before_the_run(pairs, tmp_path):
    result = invoke(*folders(pairs), "--backend", "torch", "--iterations", "3", "--check", "--max-p99-ms", "50",
                    "--report", str(tmp_path / "report"))
    assert result.exit_code == 2, result.output
    assert ("--max-p99-ms needs >= 100 timed calls per shape, shape b1 12x16/48x64 gets 6 (2 per pass x "
            "--iterations 3); use --iterations 50") in result.stderr
    assert not (tmp_path / "report").exists()


def test_json_to_stdout_with_shapes_counts_machine_and_a_progress_bar(pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # tqdm draws at most every 0.1 s; calls faster than that would leave "3/3" undrawn.
    monkeypatch.setattr(infer_module, "tqdm", functools.partial(tqdm, mininterval=0))
    result = invoke(*folders(pairs, hr=False), "--backend", "torch", "--warmup", "1", "--json", "-",
                    "--progress")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds the JSON alone
    assert not Path("-").exists()
    assert "=== Latency (torch" in result.stderr and "Host Latency" in result.stderr
    # one warm-up call for the one shape, then two timed calls; torch is its own reference
    assert "infer (torch)" in result.stderr and "3/3" in result.stderr
    (shape,) = report["latency"]["shapes"]
    assert shape["label"] == "b1 12x16/48x64" and shape["batch"] == 1 and shape["lr_size"] == [12, 16]
    assert shape["calls"] == 2 and shape["host_latency_ms"]["count"] == 2
    assert shape["host_latency_ms"]["p90"] is None and "p99: 100" in report["latency"]["percentile_rule"]
    assert report["latency"]["warmup_calls"] == 1 and len(report["latency"]["samples"]) == 3
    machine = report["machine"]
    assert machine["libraries"]["torch"] == torch.__version__
    assert machine["threads"]["torch"] == torch.get_num_threads() and machine["gpu"] is None
    assert machine["cpu"]["logical_cores"] >= 1 and machine["cpu"]["model"]
    assert machine["time_utc"].endswith("+00:00")
    stats = report["images"][0]["error_stats"]["sr"]
    assert stats["abs"]["max"] == 0.0 and stats["share_of_pixels_over"]["0.5/255"] == 0.0  # torch vs itself


def test_trt_latency_has_trtexecs_stage_names_and_the_engine_gpu(pairs, fake_trt):
    """With the recording TensorRT/pycuda stand-ins: H2D, GPU compute and D2H rows from the CUDA events."""
    args, _ = fake_trt
    result = invoke(*folders(pairs, hr=False), *args, "--json", "-")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (shape,) = report["latency"]["shapes"]
    for key in ("h2d_latency_ms", "gpu_compute_time_ms", "d2h_latency_ms"):
        assert shape[key]["count"] == 2 and shape[key]["mean"] >= 0
    for name in ("Host Latency", "H2D Latency", "GPU Compute Time", "D2H Latency", "qps"):
        assert name in result.stderr
    assert report["machine"]["gpu"] == {"name": "Fake GPU", "compute_capability": "8.6"}
