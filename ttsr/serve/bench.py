"""A bounded load on a Triton server: a fixed number of requests at each concurrency, latency and errors.

Each concurrent worker is a thread with its own client and sends one request at a time, as a client
application would; a request counts as an error when the server answers with one, the call fails,
or the SR image has the wrong shape.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttsr.errors import first_line
from ttsr.runtime.stats import PERCENTILE_RULE, Summary
from ttsr.serve.spec import LR_INPUT, REF_INPUT, SR_OUTPUT

PROTOCOLS = ("http", "grpc")


def client_module(protocol: str) -> Any:
    """``tritonclient.http`` or ``tritonclient.grpc``."""
    if protocol == "http":
        import tritonclient.http as http

        return http
    import tritonclient.grpc as grpc

    return grpc


def infer(client: Any, module: Any, model: str, lr: np.ndarray, ref: np.ndarray, timeout_s: float) -> np.ndarray:
    """One request with a batch of one pair; the SR image (4H x 4W x 3 uint8)."""
    inputs = []
    for name, image in ((LR_INPUT, lr), (REF_INPUT, ref)):
        tensor = module.InferInput(name, [1, *image.shape], "UINT8")
        tensor.set_data_from_numpy(image[None])
        inputs.append(tensor)
    # The HTTP client's timeouts are set when it is made (make_client); gRPC's go with each call.
    options = {} if module.__name__.endswith("http") else {"client_timeout": timeout_s}
    result = client.infer(model, inputs, outputs=[module.InferRequestedOutput(SR_OUTPUT)], **options)
    return np.asarray(result.as_numpy(SR_OUTPUT)[0])


def make_client(module: Any, url: str, timeout_s: float) -> Any:
    if module.__name__.endswith("http"):
        return module.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
    return module.InferenceServerClient(url)


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latency_ms: Summary | None  # of the successful requests
    first_error: str | None

    @property
    def requests_per_s(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "seconds": self.seconds, "requests_per_s": self.requests_per_s,
                "latency_ms": self.latency_ms.to_dict() if self.latency_ms else None,
                "first_error": self.first_error}


def run_level(url: str, protocol: str, model: str, lr: np.ndarray, ref: np.ndarray, concurrency: int,
              requests: int, timeout_s: float) -> LevelResult:
    module = client_module(protocol)
    expected = (4 * lr.shape[0], 4 * lr.shape[1], 3)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [requests]

    def take() -> bool:
        with lock:
            if remaining[0] == 0:
                return False
            remaining[0] -= 1
            return True

    def worker() -> None:
        client = make_client(module, url, timeout_s)
        try:
            while take():
                start = time.perf_counter()
                try:
                    sr = infer(client, module, model, lr, ref, timeout_s)
                    problem = None if sr.shape == expected else f"SR of shape {sr.shape}, expected {expected}"
                except Exception as exc:  # the client's InferenceServerException and transport errors
                    problem = first_line(exc)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    if problem is None:
                        latencies.append(elapsed)
                    else:
                        errors.append(problem)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return LevelResult(concurrency, requests, len(errors), seconds,
                       Summary.of(latencies) if latencies else None, errors[0] if errors else None)


def _cell(summary: Summary | None, statistic: str) -> str:
    value = summary.value(statistic) if summary is not None else None
    return f"{value:>10.1f}" if value is not None else f"{'-':>10}"


def table(results: list[LevelResult]) -> str:
    """One row per concurrency; a percentile is ``-`` where the level had too few successful requests
    for it (:data:`ttsr.runtime.stats.PERCENTILE_RULE`)."""
    header = f"{'concurrency':>11}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}"
    lines = [header, "-" * len(header)]
    for r in results:
        cells = "".join(_cell(r.latency_ms, statistic) for statistic in ("median", "p90", "p99"))
        lines.append(f"{r.concurrency:>11}{r.requests:>10}{r.errors:>8}{r.requests_per_s:>9.2f}{cells}")
    return "\n".join(lines + [PERCENTILE_RULE])
