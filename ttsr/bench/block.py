"""Latency and peak memory of the search-transfer block: the PyTorch reference (FP32 and FP16)
and the kernels (FP32 and FP16) at square sizes (batch 1, Ref = LR), optionally up to the
largest size each fits in GPU memory."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ttsr.bench.features import Case, make_inputs
from ttsr.bench.tables import markdown_table
from ttsr.bench.timing import MIB, Measurement, cuda_time_ms, measured
from ttsr.contract import Shapes
from ttsr.plugin.torch_kernels import TorchKernels

Measure = Callable[[int, int], Measurement]  # (LR side, timed calls) -> Measurement

# column key -> header, in table order; k32 / k16 take the library's own relevance path (auto:
# gram), the -gemm / -fused columns force the patch paths, so that the table shows whether auto
# picks the faster one.
COLUMNS = {"ref32": "PyTorch block FP32", "ref16": "PyTorch block FP16", "k32": "kernels FP32",
           "k32-gemm": "kernels FP32 gemm", "k16": "kernels FP16", "k16-gemm": "kernels FP16 gemm",
           "k16-fused": "kernels FP16 fused"}
KERNEL_COLUMNS = ("k32", "k32-gemm", "k16", "k16-gemm", "k16-fused")


def size_ladder(start: int, limit: int = 4096, growth: float = 1.25, multiple: int = 8) -> list[int]:
    """LR sides above ``start`` growing by ``growth``, rounded up to ``multiple``, up to ``limit``."""
    sizes: list[int] = []
    size = start
    while True:
        size = max(math.ceil((size + 1) / multiple), math.ceil(size * growth / multiple)) * multiple
        if size > limit:
            return sizes
        sizes.append(size)


def extrapolated_side(sides: Sequence[int], peaks: Sequence[float], capacity: float, degree: int) -> int | None:
    """Largest square LR side whose peak memory, fitted as a polynomial of ``degree`` in the LR
    area (2: the reference's relevance matrix, 1: the kernels), stays within ``capacity``."""
    if len(sides) <= degree:
        return None
    area = np.array([s * s for s in sides], dtype=float)
    fit = np.polynomial.Polynomial.fit(area, np.array(peaks, dtype=float), degree).convert()
    side = max(sides)
    while fit(float(side * side)) <= capacity:
        side += 8
        if side > 65536:
            return None
    return side - 8


def largest_fitting(measure: Callable[[int], Measurement], start: int, start_ms: float,
                    max_seconds: float) -> tuple[int, Measurement, str]:
    """Walks up :func:`size_ladder` from a measured ``start`` until OOM or until one call would
    take longer than ``max_seconds`` (compute grows with LR area x Ref area = side**4)."""
    best, best_m, last_side, last_ms = start, Measurement(start_ms), start, start_ms
    for side in size_ladder(start):
        predicted_s = last_ms / 1000 * (side / last_side) ** 4
        if predicted_s > max_seconds:
            return best, best_m, f"stopped by time: {side}x{side} would take ~{predicted_s:.0f} s (--max-seconds)"
        m = measure(side)
        if m.ms is None:
            return best, best_m, f"{m.note} at {side}x{side}"
        best, best_m, last_side, last_ms = side, m, side, m.ms
    return best, best_m, f"reached the ladder's end ({best}x{best})"


def measure_reference(side: int, half: bool, repeats: int, budget_s: float, seed: int) -> Measurement:
    from ttsr.model.search_transfer import SearchTransfer

    def run() -> Measurement:
        block = SearchTransfer().cuda()
        inputs = make_inputs(Case.square(side), seed)
        if half:
            inputs = tuple(t.half() for t in inputs)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            ms = cuda_time_ms(lambda: block(*inputs), repeats, budget_s)
        return Measurement(ms, torch.cuda.max_memory_allocated() / MIB)

    return measured(run)


def measure_kernels(kernels: TorchKernels, side: int, half: bool, repeats: int, budget_s: float, seed: int,
                    ref_chunk: int) -> Measurement:
    def run() -> Measurement:
        inputs = make_inputs(Case.square(side), seed)
        if half:
            inputs = tuple(t.half() for t in inputs)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        call = kernels.prepare(inputs, ref_chunk)
        ms = cuda_time_ms(call, repeats, budget_s)
        return Measurement(ms, torch.cuda.max_memory_allocated() / MIB, call.workspace.numel() / MIB)

    return measured(run)


def measures_on_gpu(kernels: TorchKernels, budget_s: float, seed: int, ref_chunk: int,
                    forced: Mapping[str, TorchKernels] | None = None) -> dict[str, Measure]:
    """The columns' measurements on this GPU, keyed as :data:`COLUMNS`; ``forced``: relevance path ->
    kernels opened with it, for the FP16 column of each path (and the FP32 one of gemm)."""
    measures: dict[str, Measure] = {
        "ref32": lambda side, calls: measure_reference(side, False, calls, budget_s, seed),
        "ref16": lambda side, calls: measure_reference(side, True, calls, budget_s, seed),
        "k32": lambda side, calls: measure_kernels(kernels, side, False, calls, budget_s, seed, ref_chunk),
        "k16": lambda side, calls: measure_kernels(kernels, side, True, calls, budget_s, seed, ref_chunk),
    }
    for path, path_kernels in (forced or {}).items():
        for half, prefix in ((True, "k16"), (False, "k32")):
            if f"{prefix}-{path}" in COLUMNS:
                measures[f"{prefix}-{path}"] = functools.partial(_measure_path, path_kernels, half=half,
                                                                 budget_s=budget_s, seed=seed, ref_chunk=ref_chunk)
    return measures


def _measure_path(kernels: TorchKernels, side: int, calls: int, half: bool, budget_s: float, seed: int,
                  ref_chunk: int) -> Measurement:
    return measure_kernels(kernels, side, half, calls, budget_s, seed, ref_chunk)


def square_shapes(side: int) -> Shapes:
    """The benchmark's shape: batch 1, LR = Ref = ``side``, TTSR's channels."""
    ck, c3, c2, c1 = Case.square(side).channels
    return Shapes(1, ck, side, side, side, side, c3, c2, c1)


@dataclass
class BlockBenchmark:
    rows: dict[int, dict[str, Measurement]] = field(default_factory=dict)  # LR side -> column key -> cell
    notes: list[str] = field(default_factory=list)
    auto_paths: dict[int, str] = field(default_factory=dict)  # LR side -> the FP16 path auto takes

    def table(self) -> str:
        keys = [key for key in COLUMNS if any(key in cells for cells in self.rows.values())]
        headers = ["LR (=Ref)"]
        for key in keys:
            headers += [f"{COLUMNS[key]} ms", f"{COLUMNS[key]} peak MiB"]
        headers += ["FP16 auto path", "workspace MiB (FP32/FP16)"]
        table = []
        for side in sorted(self.rows):
            cells = self.rows[side]
            row: list[object] = [f"{side}x{side}"]
            for key in keys:
                cell = cells.get(key, Measurement())
                row += [cell.cell(), cell.peak_mib]
            row.append(self.auto_paths.get(side))
            row.append(f"{cells['k32'].workspace_mib or 0:.1f} / {cells['k16'].workspace_mib or 0:.1f}")
            table.append(row)
        return markdown_table(headers, table)

    def failures(self) -> list[str]:
        """Kernel runs that failed (out of memory is a note, not a failure)."""
        return [f"block benchmark LR = Ref {side} {COLUMNS[key]}: {cells[key].note}"
                for side, cells in sorted(self.rows.items()) for key in KERNEL_COLUMNS
                if key in cells and cells[key].note.startswith("failed")]

    def to_dict(self) -> dict[str, object]:
        return {"rows": {str(side): {key: m.to_dict() for key, m in cells.items()}
                         for side, cells in sorted(self.rows.items())},
                "fp16_auto_paths": {str(side): path for side, path in sorted(self.auto_paths.items())},
                "notes": list(self.notes)}


def benchmark_block(sizes: Sequence[int], measures: dict[str, Measure], repeats: int, max_seconds: float,
                    largest: bool, capacity_mib: float,
                    auto_path: Callable[[int], str] | None = None) -> BlockBenchmark:
    """Every column of ``measures`` at ``sizes``; with ``largest``, the FP32 reference and kernels
    walk up from the largest size until they no longer fit (or take longer than ``max_seconds``).
    ``auto_path``: LR side -> the FP16 relevance path the kernels take there."""
    result = BlockBenchmark()
    for side in sizes:
        result.rows[side] = {key: measure(side, repeats) for key, measure in measures.items()}
        if auto_path is not None:
            result.auto_paths[side] = auto_path(side)
        print(f"  measured LR {side}x{side}", flush=True)

    if largest:
        top = max(sizes)
        for key in ("ref32", "k32"):
            top_ms = result.rows[top][key].ms
            if top_ms is None:
                result.notes.append(f"{COLUMNS[key]}: does not fit at {top}x{top}")
                continue
            # Probes time one call after the warm-up: at these sizes a call takes seconds.
            side, found, why = largest_fitting(lambda n: measures[key](n, 1), top, top_ms, max_seconds)
            result.notes.append(f"{COLUMNS[key]}: largest LR measured {side}x{side} ({why})")
            if side not in result.rows:
                result.rows[side] = {k: found if k == key else measure(side, 1) for k, measure in measures.items()}

    for key, degree in (("ref32", 2), ("k32", 1)):
        usable: dict[int, float] = {}
        for side in sizes:
            peak = result.rows[side][key].peak_mib
            if peak is not None:
                usable[side] = peak
        limit = extrapolated_side(list(usable), list(usable.values()), capacity_mib, degree)
        if limit is not None:
            result.notes.append(f"{COLUMNS[key]}: extrapolated memory limit ~{limit}x{limit} LR on "
                                f"{capacity_mib / 1024:.0f} GiB (degree-{degree} fit of peak vs LR area; not measured)")
    return result
