"""Warm-up, then timed passes of a backend over batches, as trtexec measures an engine."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ttsr.backends.base import Backend
from ttsr.data.prepare import ModelInputs
from ttsr.runtime.batching import Batch
from ttsr.runtime.stats import LatencyRecorder, LatencyReport


def stack_batch(inputs: Sequence[ModelInputs], batch: Batch) -> ModelInputs:
    return ModelInputs.stack([inputs[i] for i in batch.indices])


def run_batches(backend: Backend, inputs: Sequence[ModelInputs], batches: Sequence[Batch],
                warmup: int = 1, iterations: int = 1,
                progress: Callable[[int], None] | None = None) -> tuple[list[np.ndarray], LatencyReport]:
    """Outputs per input (from the last pass) and the latency of every timed call.

    Warm-up runs the first batch of each shape ``warmup`` times (the first call of a
    shape pays for allocations and kernel selection).  Then ``iterations`` passes run
    every batch; stacking the inputs is host preparation and stays outside the timing.
    ``progress`` is called with the number of real images each timed call finished.
    """
    stacked = [stack_batch(inputs, batch) for batch in batches]
    seen: set[tuple[int, ...]] = set()
    for batch, batch_inputs in zip(batches, stacked):
        shape = (batch.size, *batch.lr_size, *batch.ref_size)
        if shape not in seen:
            seen.add(shape)
            for _ in range(warmup):
                backend.run(batch_inputs)
    recorder = LatencyRecorder()
    outputs: list[np.ndarray | None] = [None] * len(inputs)
    for _ in range(iterations):
        for batch, batch_inputs in zip(batches, stacked):
            start = time.perf_counter()
            sr = backend.run(batch_inputs)
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            recorder.add(elapsed_ms, batch.real, dict(backend.last_stages) or None)
            for slot, index in enumerate(batch.indices[:batch.real]):
                outputs[index] = sr[slot]
            if progress is not None:
                progress(batch.real)
    missing = [i for i, out in enumerate(outputs) if out is None]
    if missing:
        raise ValueError(f"batches cover no output for inputs {missing}")
    return [out for out in outputs if out is not None], recorder.report()
