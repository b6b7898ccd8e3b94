"""Warm-up, then timed passes of a backend over batches, as trtexec measures an engine."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ttsr.backends.base import Backend
from ttsr.data.prepare import ModelInputs
from ttsr.runtime.batching import Batch
from ttsr.runtime.stats import LatencyRecorder, LatencyReport, Shape


def stack_batch(inputs: Sequence[ModelInputs], batch: Batch) -> ModelInputs:
    return ModelInputs.stack([inputs[i] for i in batch.indices])


def batch_shape(batch: Batch) -> Shape:
    return Shape(batch.size, batch.lr_size, batch.ref_size)


def count_calls(batches: Sequence[Batch], warmup: int, iterations: int) -> tuple[int, dict[Shape, int]]:
    """Warm-up calls, and timed calls per shape, that :func:`run_batches` will make."""
    timed: dict[Shape, int] = {}
    for batch in batches:
        timed[batch_shape(batch)] = timed.get(batch_shape(batch), 0) + iterations
    return warmup * len(timed), timed


def run_batches(backend: Backend, inputs: Sequence[ModelInputs], batches: Sequence[Batch],
                warmup: int = 1, iterations: int = 1,
                progress: Callable[[int], None] | None = None) -> tuple[list[np.ndarray], LatencyReport]:
    """Outputs per input (from the last pass) and the latency of every call.

    Warm-up runs the first batch of each shape ``warmup`` times (the first call of a
    shape pays for allocations and kernel selection); those calls are recorded as
    warm-up, outside the statistics.  Then ``iterations`` passes run every batch;
    stacking the inputs is host preparation and stays outside the timing.
    ``progress`` is called with 1 after every call, warm-up included.
    """
    stacked = [stack_batch(inputs, batch) for batch in batches]
    recorder = LatencyRecorder()
    origin = time.perf_counter()

    def timed_call(batch: Batch, batch_inputs: ModelInputs, warm: bool) -> np.ndarray:
        start = time.perf_counter()
        sr = backend.run(batch_inputs)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        recorder.add(batch_shape(batch), elapsed_ms, batch.real, dict(backend.last_stages), warmup=warm,
                     start_ms=(start - origin) * 1000.0)
        if progress is not None:
            progress(1)
        return sr

    seen: set[Shape] = set()
    for batch, batch_inputs in zip(batches, stacked):
        if batch_shape(batch) not in seen:
            seen.add(batch_shape(batch))
            for _ in range(warmup):
                timed_call(batch, batch_inputs, True)
    outputs: list[np.ndarray | None] = [None] * len(inputs)
    for _ in range(iterations):
        for batch, batch_inputs in zip(batches, stacked):
            sr = timed_call(batch, batch_inputs, False)
            for slot, index in enumerate(batch.indices[:batch.real]):
                outputs[index] = sr[slot]
    missing = [i for i, out in enumerate(outputs) if out is None]
    if missing:
        raise ValueError(f"batches cover no output for inputs {missing}")
    return [out for out in outputs if out is not None], recorder.report()
