"""``ttsr serve`` / ``bench-serve`` refusals that need no server: one line naming the problem, no server started."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.test_serve_export import engine_with_sidecar
from ttsr.backends import unavailable_reason
from ttsr.backends.profiles import Profile
from ttsr.cli import main

PROFILE = Profile((16, 16), (32, 32), (64, 64), (64, 64), (128, 128), (256, 256), 1, 2, 4)


def serve(*args: str):
    return CliRunner().invoke(main, ["serve", *args])


@pytest.mark.parametrize("args, expect", [
    (["--http-port", "9000", "--grpc-port", "9000"], "--http-port, --grpc-port and --metrics-port must differ"),
    (["--backend", "ort", "--max-ref", "30"], "must be a multiple of 4"),
    (["--backend", "torch", "--onnx", "{engine}"], "--onnx applies to --backend ort, not torch"),
    (["--backend", "trt", "--engine", "{engine}", "--onnx", "{engine}"], "--onnx applies to --backend ort, not trt"),
    (["--backend", "ort", "--engine", "{engine}"], "--engine/--plugin apply to --backend trt, not ort"),
])
def test_options_that_do_not_fit_are_usage_errors(tmp_path, args, expect):
    engine = engine_with_sidecar(tmp_path, [PROFILE])
    result = serve(*(a.format(engine=engine) for a in args))
    assert result.exit_code == 2 and expect in result.output


def test_trt_limits_come_from_the_engine(tmp_path):
    result = serve("--backend", "trt", "--engine", str(engine_with_sidecar(tmp_path, [PROFILE])), "--max-lr", "32")
    assert result.exit_code == 2 and "--max-lr does not apply to --backend trt" in result.output


def test_trt_without_tensorrt_says_why_before_starting_a_server(tmp_path):
    if unavailable_reason("trt") is None:
        pytest.skip("TensorRT and a GPU are here")
    result = serve("--backend", "trt", "--engine", str(engine_with_sidecar(tmp_path, [PROFILE])))
    assert result.exit_code == 1 and "the trt backend cannot run here" in result.output


def test_bench_serve_without_a_server_says_so():
    result = CliRunner().invoke(main, ["bench-serve", "--url", "127.0.0.1:1", "--timeout", "2"])
    assert result.exit_code == 1 and "no Triton server at 127.0.0.1:1" in result.output


def test_bench_serve_wants_both_images_or_neither(tmp_path):
    result = CliRunner().invoke(main, ["bench-serve", "--lr", str(tmp_path / "lr.png")])
    assert result.exit_code == 2 and "give both --lr and --ref" in result.output
