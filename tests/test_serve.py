"""``ttsr serve`` on a real Triton server (nvidia-pytriton's tritonserver, loopback only): outputs equal
``infer``'s, dynamic batching seen in Triton's metrics, bad requests answered with their problem, the
client example and ``bench-serve``; then a clean SIGTERM shutdown.

One server serves the whole module (its start, mostly the stub importing torch and ONNX Runtime, takes
10-30 s on two busy cores); every request loop is bounded and has a timeout.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests._onnx_models import onnx_models
from ttsr.cli import main

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets" / "pairs"
NAMES = ("cat", "coffee")
LR_CROP, REF_CROP = (12, 16), (48, 64)  # (height, width): each CPU run well under a second
MAX_LR, MAX_REF, MAX_BATCH = (24, 24), (64, 64), 4
READY_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 60


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _crop(path: Path, size: tuple[int, int], out: Path) -> Path:
    with Image.open(path) as image:
        image.convert("RGB").crop((0, 0, size[1], size[0])).save(out)
    return out


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-pairs")
    for role in ("lr", "ref"):
        (root / role).mkdir()
    for name in NAMES:
        _crop(ASSETS / "lr" / f"{name}.png", LR_CROP, root / "lr" / f"{name}.png")
        _crop(ASSETS / "ref" / f"{name}.png", REF_CROP, root / "ref" / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return onnx_models(tmp_path_factory)


@pytest.fixture(scope="module")
def expected(graph, pairs, tmp_path_factory):
    """infer's SR images (ort backend, same graph) for each pair: what the server must return."""
    out = tmp_path_factory.mktemp("infer-sr")
    result = CliRunner().invoke(main, [
        "infer", "--lr-dir", str(pairs / "lr"), "--ref-dir", str(pairs / "ref"), "--backend", "ort",
        "--onnx", str(graph.rewritten), "--checkpoint", str(graph.checkpoint), "--threads", "1",
        "--warmup", "0", "--out-dir", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {name: np.asarray(Image.open(out / f"{name}.png")) for name in NAMES}


class Server:
    def __init__(self, graph, log: Path) -> None:
        self.http, self.grpc, self.metrics = _free_ports(3)
        self.log_path = log
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ttsr.cli", "serve", "--backend", "ort", "--onnx", str(graph.rewritten),
             "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics),
             "--max-lr", "x".join(map(str, MAX_LR)), "--max-ref", "x".join(map(str, MAX_REF)),
             "--max-batch", str(MAX_BATCH), "--max-queue-delay-us", "300000", "--threads", "1",
             "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"ttsr serve exited:\n{self.output()}"
            if "Serving model 'ttsr'" in self.output():
                return
            time.sleep(0.5)
        pytest.fail(f"ttsr serve not ready after {READY_TIMEOUT_S} s:\n{self.output()}")

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=10) as response:
            text = response.read().decode()
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(f"{name}{{") and 'model="ttsr"' in line]
        assert len(values) == 1, f"{name} for model ttsr not in the metrics:\n{text[:2000]}"
        return values[0]


@pytest.fixture(scope="module")
def started(graph, tmp_path_factory):
    server = Server(graph, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        server.log.close()


@pytest.fixture(scope="module")
def server(started, expected):
    """The server, ready; ``expected`` is made while it starts."""
    started.wait_ready()
    return started


def _image(pairs: Path, role: str, name: str) -> np.ndarray:
    return np.asarray(Image.open(pairs / role / f"{name}.png"))


def _http_infer(port: int, lr: np.ndarray, ref: np.ndarray, lr_type: str = "UINT8") -> np.ndarray:
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=REQUEST_TIMEOUT_S,
                                        network_timeout=REQUEST_TIMEOUT_S)
    try:
        inputs = []
        for name, array, dtype in (("LR", lr, lr_type), ("REF", ref, "UINT8")):
            tensor = http.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = client.infer("ttsr", inputs, outputs=[http.InferRequestedOutput("SR")])
        out: np.ndarray = result.as_numpy("SR")
        return out
    finally:
        client.close()


def test_concurrent_requests_equal_infer_and_are_batched(server, pairs, expected):
    jobs = [NAMES[i % len(NAMES)] for i in range(8)]
    results: dict[int, object] = {}
    barrier = threading.Barrier(len(jobs))

    def send(index: int, name: str) -> None:
        lr, ref = _image(pairs, "lr", name)[None], _image(pairs, "ref", name)[None]
        barrier.wait(timeout=REQUEST_TIMEOUT_S)
        try:
            results[index] = _http_infer(server.http, lr, ref)
        except Exception as exc:
            results[index] = exc

    requests_before = server.metric("nv_inference_request_success")
    executions_before = server.metric("nv_inference_exec_count")
    threads = [threading.Thread(target=send, args=(i, name)) for i, name in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * REQUEST_TIMEOUT_S)
    for index, name in enumerate(jobs):
        sr = results.get(index)
        assert isinstance(sr, np.ndarray), f"request {index} ({name}): {sr!r}"
        assert sr.shape == (1, 4 * LR_CROP[0], 4 * LR_CROP[1], 3) and sr.dtype == np.uint8
        np.testing.assert_array_equal(sr[0], expected[name], err_msg=f"request {index} ({name})")
    requests = server.metric("nv_inference_request_success") - requests_before
    executions = server.metric("nv_inference_exec_count") - executions_before
    assert requests == len(jobs)
    # Arriving together, same-size requests share executions (at most MAX_BATCH pairs each).
    assert len(jobs) / MAX_BATCH <= executions < requests


def test_a_request_may_carry_a_batch_of_pairs(server, pairs, expected):
    lr = np.stack([_image(pairs, "lr", name) for name in NAMES])
    ref = np.stack([_image(pairs, "ref", name) for name in NAMES])
    sr = _http_infer(server.http, lr, ref)
    for index, name in enumerate(NAMES):
        np.testing.assert_array_equal(sr[index], expected[name])


def _error_of(call) -> str:
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("case, problem", [
    ("float32 LR", "data-type is 'FP32', but model 'ttsr' expects 'UINT8'"),
    ("2-D LR", "unexpected shape for input 'LR'"),
    ("3x3 Ref", "Ref is 3x3, each side must be at least 4 pixels"),
    ("LR over the limit", "LR 28x28 with Ref 48x64 is outside what this model takes (LR 1x1..24x24"),
])
def test_bad_request_gets_its_problem_and_the_server_keeps_serving(server, pairs, expected, case, problem):
    lr, ref = _image(pairs, "lr", "cat")[None], _image(pairs, "ref", "cat")[None]
    bad = {
        "float32 LR": lambda: _http_infer(server.http, lr.astype(np.float32), ref, lr_type="FP32"),
        "2-D LR": lambda: _http_infer(server.http, lr[..., 0], ref),
        "3x3 Ref": lambda: _http_infer(server.http, lr, ref[:, :3, :3]),
        "LR over the limit": lambda: _http_infer(server.http, np.zeros((1, 28, 28, 3), np.uint8), ref),
    }[case]
    assert problem in _error_of(bad)
    np.testing.assert_array_equal(_http_infer(server.http, lr, ref)[0], expected["cat"])


def test_garbage_bytes_get_an_error_and_the_server_keeps_serving(server, pairs, expected):
    garbage = np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes()
    for headers in ({}, {"Inference-Header-Content-Length": "100"}):
        request = urllib.request.Request(f"http://127.0.0.1:{server.http}/v2/models/ttsr/infer", data=garbage,
                                         headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S)
        assert caught.value.code in (400, 500)
        assert "failed to parse" in json.loads(caught.value.read())["error"]
    lr, ref = _image(pairs, "lr", "coffee")[None], _image(pairs, "ref", "coffee")[None]
    np.testing.assert_array_equal(_http_infer(server.http, lr, ref)[0], expected["coffee"])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_client_example(server, pairs, expected, protocol, tmp_path):
    port = server.http if protocol == "http" else server.grpc
    out = tmp_path / "sr.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "triton_client.py"), "--url", f"127.0.0.1:{port}",
         "--protocol", protocol, "--lr", str(pairs / "lr" / "cat.png"), "--ref", str(pairs / "ref" / "cat.png"),
         "--out", str(out)], capture_output=True, text=True, timeout=REQUEST_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected["cat"])


def test_bench_serve_reports_each_concurrency(server, tmp_path):
    report = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [
        "bench-serve", "--url", f"127.0.0.1:{server.grpc}", "--protocol", "grpc", "--concurrency", "1,4",
        "--requests", "6", "--lr-size", "12x16", "--ref-size", "48x64", "--json", str(report)])
    assert result.exit_code == 0, result.output
    levels = json.loads(report.read_text())["levels"]
    assert [(level["concurrency"], level["requests"], level["errors"]) for level in levels] == [(1, 6, 0), (4, 6, 0)]
    for level in levels:
        latency = level["latency_ms"]
        # 6 samples: too few for a p90 or p99 (the project's percentile rule), so none is made up.
        assert latency["count"] == 6 and latency["p90"] is None and latency["p99"] is None
        assert 0 < latency["min"] <= latency["median"] <= latency["max"]
        assert level["requests_per_s"] > 0
    assert "p99 ms" in result.output


def test_bench_serve_counts_errors(server, tmp_path):
    result = CliRunner().invoke(main, [
        "bench-serve", "--url", f"127.0.0.1:{server.http}", "--concurrency", "2", "--requests", "2",
        "--lr-size", "32x32", "--ref-size", "48x64"])
    assert result.exit_code == 1
    assert "outside what this model takes" in result.output


def test_sigterm_stops_the_server_cleanly(server):
    # Last in the module: the fixture's server is stopped here and its exit checked.
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    output = server.output()
    assert "Server stopped (SIGTERM); exit status 0." in output
    assert "Traceback" not in output, output  # the bad requests were answered, not raised
