"""Latency by CUDA events (median), CUDA-graph replay, and failures of one measurement as a note."""

from __future__ import annotations

import gc
import statistics
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from ttsr.errors import first_line
from ttsr.plugin.native import NativeOpError

MIB = 1 << 20
T = TypeVar("T")


@dataclass
class Measurement:
    """One cell of a benchmark table: latency, peak memory, workspace; or why there is none."""

    ms: float | None = None
    peak_mib: float | None = None
    workspace_mib: float | None = None
    note: str = ""

    def cell(self) -> float | str:
        """The latency, or the note where there is none."""
        return self.ms if self.ms is not None else self.note

    def to_dict(self) -> dict[str, object]:
        return {"ms": self.ms, "peak_mib": self.peak_mib, "workspace_mib": self.workspace_mib,
                "note": self.note or None}


def cuda_time_ms(fn: Callable[[], object], repeats: int, budget_s: float) -> float:
    """Median latency (ms) by CUDA events: one warm-up, then up to ``repeats`` calls within ``budget_s``."""
    fn()
    torch.cuda.synchronize()
    samples: list[float] = []
    while len(samples) < repeats and (not samples or sum(samples) / 1000 < budget_s):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def graph_replay(fn: Callable[[], T]) -> tuple[Callable[[], None], T]:
    """``fn`` captured into a CUDA graph: its replay, and what the captured call returned (the
    tensors each replay rewrites).  A warm-up call runs first on the stream that then captures
    (torch.cuda.graphs asks for a side stream), so that lazy per-stream set-up (cuBLAS's) happens
    outside the capture."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        output = fn()
    return graph.replay, output


def release() -> None:
    """Frees what the last measurement left in torch's cache, so the next one starts empty."""
    gc.collect()
    torch.cuda.empty_cache()


def measured(run: Callable[[], Measurement]) -> Measurement:
    """Runs one measurement; out-of-memory and kernel or capture failures become its note, so that
    one cell cannot end the whole check.  Memory is released once the measurement's frame is gone."""
    try:
        return run()
    except torch.cuda.OutOfMemoryError:
        return Measurement(note="OOM")
    except (NativeOpError, ValueError, RuntimeError) as exc:  # cuBLAS out of memory, sizes over the
        return Measurement(note=f"failed ({first_line(exc)})")  # int indices, a refused graph capture
    finally:
        release()
