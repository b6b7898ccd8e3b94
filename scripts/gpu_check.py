"""GPU check of the search-transfer CUDA kernels against the PyTorch reference block.

Run through ``bash scripts/gpu_check.sh`` (which builds ``libttsr_st_cuda.so``) on a
machine with an NVIDIA GPU and a CUDA build of PyTorch; TensorRT is not needed.

1. Accuracy: FP32 kernels vs :class:`ttsr.model.search_transfer.SearchTransfer` (TF32 off),
   max abs error per output; FP16 kernels vs the FP32 reference: argmax agreement rate and
   PSNR of the transferred textures; each case at several Ref chunk caps, so that the
   kernels' merge of the running best across chunks runs. Exit status 1 when a check misses
   its threshold (FP32_MAX_ABS, FP16_MIN_AGREEMENT, FP16_MIN_PSNR_DB).
2. Benchmark: latency (CUDA events, median) and peak memory of the kernels and of the
   reference at the given LR sizes (Ref = LR), then the largest size each fits in memory.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttsr import contract  # noqa: E402
from ttsr.plugin import native  # noqa: E402

if TYPE_CHECKING:
    from torch import Tensor

    Inputs = tuple[Tensor, ...]  # q, k, v3, v2, v1
    Outputs = tuple[Tensor, ...]  # s, t3, t2, t1

TTSR_CHANNELS = (256, 256, 128, 64)  # ck, c3, c2, c1 of TTSR's LTE features
MIB = 1 << 20
# FP16 stores s with an 11-bit significand: a picked relevance lower than the best by
# more than this (relevances lie in [-1, 1]) means another Ref position was chosen.
FP16_RELEVANCE_TOL = 2e-3
FP32_TIE_TOL = 1e-6  # ttsr/contract.py: closer maxima may resolve either way


# ----------------------------------------------------------------------------- CUDA-free helpers

def parse_sizes(text: str) -> list[int]:
    """'40,80,120' -> [40, 80, 120]; ValueError naming the bad item."""
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"LR size {item!r} is not a positive integer: give e.g. --sizes 40,80,120")
        sizes.append(int(item))
    return sizes


def size_ladder(start: int, limit: int = 4096, growth: float = 1.25, multiple: int = 8) -> list[int]:
    """LR sides above ``start`` growing by ``growth``, rounded up to ``multiple``, up to ``limit``."""
    sizes: list[int] = []
    size = start
    while True:
        size = max(math.ceil((size + 1) / multiple), math.ceil(size * growth / multiple)) * multiple
        if size > limit:
            return sizes
        sizes.append(size)


def psnr(reference: Tensor, test: Tensor) -> float:
    """PSNR (dB) of ``test`` against ``reference`` with the reference's value range as peak."""
    reference = reference.double()
    mse = (test.double() - reference).pow(2).mean().item()
    peak = (reference.max() - reference.min()).item()
    if mse == 0:
        return math.inf
    return 10 * math.log10(peak * peak / mse)


def argmax_agreement(picked: Tensor, best: Tensor, second: Tensor, tol: float) -> tuple[float, float]:
    """(agreement rate, ambiguous rate) of picked relevances against the reference's top two.

    A position agrees when its picked relevance is within ``tol`` of the best one; it is
    ambiguous when the best two are within ``tol`` (either choice is then correct).
    """
    picked, best, second = picked.flatten().double(), best.flatten().double(), second.flatten().double()
    ambiguous = (best - second) <= tol
    agrees = (best - picked) <= tol
    return agrees.double().mean().item(), ambiguous.double().mean().item()


def influenced_mask(lr_mask: Tensor, scale: int) -> Tensor:
    """Output pixels at ``scale`` that receive a patch from any LR position in ``lr_mask`` (N,1,H,W)."""
    import torch.nn.functional as F

    grown = F.max_pool2d(lr_mask.float(), kernel_size=3, stride=1, padding=1)
    return grown.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3) > 0


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; floats with 2 decimals, None as '-'."""
    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


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


@dataclass(frozen=True)
class Case:
    """One accuracy shape: batch, LR and Ref sizes, channels (ck, c3, c2, c1)."""

    n: int
    h: int
    w: int
    hr: int
    wr: int
    channels: tuple[int, int, int, int] = TTSR_CHANNELS

    @property
    def label(self) -> str:
        return f"N={self.n} LR {self.h}x{self.w} Ref {self.hr}x{self.wr} C={','.join(map(str, self.channels))}"


# odd, non-square, Ref != LR, batch > 1, 1x1 and 2x2 grids (issue 4); the default workspace
# budget scores each Ref in one GEMM, so ref_chunk 1 and 7 run the kernels' cross-tile merge.
ACCURACY_CASES = (
    Case(1, 40, 40, 40, 40),
    Case(2, 23, 17, 31, 29),
    Case(1, 12, 30, 9, 5),
    Case(2, 2, 2, 1, 1, (16, 16, 8, 4)),
    Case(1, 1, 1, 2, 2, (16, 16, 8, 4)),
    Case(1, 96, 96, 48, 48),
)
# 0: the kernels' own chunk; 1: one Ref position per pass; 7 divides none of the Ref sizes,
# so wherever it splits the Ref, the last chunk is partial.
REF_CHUNKS = (0, 1, 7)

# Pass thresholds (tests/test_plugin_cpu.py holds the host twin to the same FP32 bound)
FP32_MAX_ABS = 1e-5  # ttsr/contract.py: float32 outputs within 1e-5 where the argmax agrees
FP16_MIN_AGREEMENT = 0.95
FP16_MIN_PSNR_DB = 40.0


# ----------------------------------------------------------------------------- the CUDA library

class CudaKernels:
    """libttsr_st_cuda.so (through :class:`ttsr.plugin.native.CudaSearchTransfer`) on torch tensors."""

    def __init__(self, path: Path):
        self._op = native.CudaSearchTransfer(path)

    def open(self) -> None:
        """Creates the kernels' cuBLAS context (needs a GPU); ``prepare`` does it on first use."""
        self._op.open()

    def close(self) -> None:
        self._op.close()

    def chunk_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int) -> int:
        return self._op.chunk_size(shapes, dtype, ref_chunk)

    def prepare(self, inputs: Inputs, ref_chunk: int = 0) -> KernelCall:
        """Allocates outputs and workspace for ``inputs`` (q, k, v3, v2, v1 CUDA tensors of one dtype)."""
        import torch

        self.open()
        shapes = contract.Shapes.from_inputs(*inputs)
        dtype = {torch.float32: np.float32, torch.float16: np.float16}[inputs[0].dtype]
        workspace_bytes = self._op.workspace_size(shapes, dtype, ref_chunk)
        outputs = tuple(torch.empty(s, dtype=inputs[0].dtype, device=inputs[0].device) for s in shapes.outputs())
        workspace = torch.empty(workspace_bytes, dtype=torch.uint8, device=inputs[0].device)
        return KernelCall(self._op, shapes, dtype, ref_chunk, tuple(inputs), outputs, workspace)


@dataclass
class KernelCall:
    """One prepared kernel invocation: buffers stay allocated so that it can be replayed and timed."""

    op: native.CudaSearchTransfer
    shapes: contract.Shapes
    dtype: type
    ref_chunk: int
    inputs: Inputs
    outputs: Outputs
    workspace: Tensor

    def __call__(self) -> Outputs:
        import torch

        self.op.enqueue(self.shapes, self.dtype, self.ref_chunk, [t.data_ptr() for t in self.inputs],
                        [t.data_ptr() for t in self.outputs], self.workspace.data_ptr(),
                        torch.cuda.current_stream().cuda_stream)
        return self.outputs


# ----------------------------------------------------------------------------- measurements

def make_inputs(case: Case, seed: int, device: str = "cuda") -> Inputs:
    """ReLU-like features (non-negative, with zeros) as the LTE produces; float32."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    ck, c3, c2, c1 = case.channels
    sizes = ((case.n, ck, case.h, case.w), (case.n, ck, case.hr, case.wr), (case.n, c3, case.hr, case.wr),
             (case.n, c2, 2 * case.hr, 2 * case.wr), (case.n, c1, 4 * case.hr, 4 * case.wr))
    return tuple(torch.randn(s, generator=gen, device=device).clamp_(min=0) for s in sizes)


def best_two_relevances(q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """Top-2 cosine relevances per LR position (the reference block's relevance, in float32)."""
    import torch
    import torch.nn.functional as F

    ps = contract.PATCH_SIZE
    qn = F.normalize(F.unfold(q, ps, padding=ps // 2), dim=1, eps=contract.NORM_EPS)
    kn = F.normalize(F.unfold(k, ps, padding=ps // 2), dim=1, eps=contract.NORM_EPS)
    relevance = torch.bmm(kn.transpose(1, 2), qn)
    if relevance.shape[1] == 1:
        best = relevance[:, 0]
        return best, torch.full_like(best, -math.inf)
    top = relevance.topk(2, dim=1).values
    return top[:, 0], top[:, 1]


class Preparer(Protocol):
    """What :func:`check_accuracy` needs of the kernels (CudaKernels, or the host twin in tests)."""

    def chunk_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int) -> int: ...

    def prepare(self, inputs: Inputs, ref_chunk: int = 0) -> Callable[[], Outputs]: ...


@dataclass(frozen=True)
class AccuracyResult:
    case: Case
    ref_chunk: int  # as requested (0: the kernels choose)
    chunk: int  # Ref positions per pass that the kernels used (FP32)
    fp32_max_abs: tuple[float, float, float, float]  # s, t3, t2, t1
    fp32_near_tie_fraction: float
    fp16_agreement: float
    fp16_ambiguous: float
    fp16_psnr_db: tuple[float, float, float]  # t3, t2, t1

    @property
    def label(self) -> str:
        return f"{self.case.label} ref_chunk={self.ref_chunk}"


def check_accuracy(kernels: Preparer, seed: int, ref_chunks: Sequence[int] = REF_CHUNKS,
                   cases: Sequence[Case] = ACCURACY_CASES, device: str = "cuda") -> list[AccuracyResult]:
    """Kernels vs the reference block on each case at each Ref chunk cap; the reference and
    the inputs are computed once per case."""
    import torch

    from ttsr.model.search_transfer import SearchTransfer

    reference = SearchTransfer().to(device)
    results = []
    for index, case in enumerate(cases):
        inputs = make_inputs(case, seed + index, device)
        with torch.no_grad():
            expected = reference(*inputs)
            best, second = best_two_relevances(inputs[0], inputs[1])
        near_tie = ((best - second) <= FP32_TIE_TOL).view(case.n, 1, case.h, case.w)
        shapes = contract.Shapes.from_inputs(*inputs)
        for ref_chunk in ref_chunks:
            got32 = kernels.prepare(inputs, ref_chunk)()
            got16 = kernels.prepare(tuple(t.half() for t in inputs), ref_chunk)()
            if device == "cuda":
                torch.cuda.synchronize()
            errors = []
            for name, want, got, scale in zip(contract.OUTPUT_NAMES, expected, got32, (1, 1, 2, 4)):
                diff = (got - want).abs()
                if name != "s":  # texture pixels fed by a near-tie may legitimately differ
                    diff = diff.masked_fill(influenced_mask(near_tie, scale), 0)
                errors.append(diff.max().item())
            agreement, ambiguous = argmax_agreement(got16[0].float(), best, second, FP16_RELEVANCE_TOL)
            t3, t2, t1 = (psnr(want, got.float()) for want, got in zip(expected[1:], got16[1:]))
            s_err, t3_err, t2_err, t1_err = errors
            results.append(AccuracyResult(case, ref_chunk, kernels.chunk_size(shapes, np.float32, ref_chunk),
                                          (s_err, t3_err, t2_err, t1_err), near_tie.float().mean().item(),
                                          agreement, ambiguous, (t3, t2, t1)))
    return results


def accuracy_failures(results: Sequence[AccuracyResult]) -> list[str]:
    """One line per result that misses a threshold, naming the numbers; NaN always fails."""
    failures = []
    for r in results:
        missed = []
        # Each test reads `not (x within bound)` so that NaN (a broken kernel) fails.
        if not all(e <= FP32_MAX_ABS for e in r.fp32_max_abs):
            errors = ", ".join(f"{n} {e:.2e}" for n, e in zip(contract.OUTPUT_NAMES, r.fp32_max_abs))
            missed.append(f"FP32 max abs error > {FP32_MAX_ABS:g} ({errors})")
        if not r.fp16_agreement >= FP16_MIN_AGREEMENT:
            missed.append(f"FP16 argmax agreement {100 * r.fp16_agreement:.3f}% < {100 * FP16_MIN_AGREEMENT:g}%")
        if not all(db >= FP16_MIN_PSNR_DB for db in r.fp16_psnr_db):
            psnrs = ", ".join(f"{n} {db:.2f}" for n, db in zip(contract.OUTPUT_NAMES[1:], r.fp16_psnr_db))
            missed.append(f"FP16 texture PSNR < {FP16_MIN_PSNR_DB:g} dB ({psnrs} dB)")
        if missed:
            failures.append(f"{r.label}: {'; '.join(missed)}")
    return failures


def accuracy_table(results: Sequence[AccuracyResult]) -> str:
    headers = ["case", "ref_chunk", "chunk / Ref positions", "FP32 max abs err s", "t3", "t2", "t1",
               "FP32 near-tie positions", "FP16 argmax agreement", "FP16 ambiguous", "FP16 PSNR t3 dB", "t2 dB",
               "t1 dB"]
    rows = [[r.case.label, r.ref_chunk, f"{r.chunk} / {r.case.hr * r.case.wr}", *(f"{e:.2e}" for e in r.fp32_max_abs),
             f"{100 * r.fp32_near_tie_fraction:.3f}%", f"{100 * r.fp16_agreement:.3f}%",
             f"{100 * r.fp16_ambiguous:.3f}%", *r.fp16_psnr_db]
            for r in results]
    return markdown_table(headers, rows)


def accuracy_report(kernels: Preparer, seed: int, ref_chunks: Sequence[int] = REF_CHUNKS,
                    cases: Sequence[Case] = ACCURACY_CASES, device: str = "cuda") -> list[str]:
    """Prints the accuracy table, its notes and the failing cases; returns the failures."""
    results = check_accuracy(kernels, seed, ref_chunks, cases, device)
    print(accuracy_table(results))
    print(f"FP32 texture errors exclude pixels fed by near-tie positions (top-2 gap <= {FP32_TIE_TOL:g}); "
          f"FP16 agreement: picked relevance within {FP16_RELEVANCE_TOL:g} of the FP32 best.")
    print(f"Pass: FP32 max abs error <= {FP32_MAX_ABS:g}, FP16 argmax agreement >= {100 * FP16_MIN_AGREEMENT:g}%, "
          f"FP16 texture PSNR >= {FP16_MIN_PSNR_DB:g} dB.")
    failures = accuracy_failures(results)
    if failures:
        print(f"\nFAILED: {len(failures)} of {len(results)} accuracy checks")
        for line in failures:
            print(f"- {line}")
    else:
        print(f"\nPASSED: all {len(results)} accuracy checks")
    return failures


def cuda_time_ms(fn: Callable[[], object], repeats: int, budget_s: float) -> float:
    """Median latency (ms) by CUDA events: one warm-up, then up to ``repeats`` calls within ``budget_s``."""
    import torch

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


@dataclass
class Measurement:
    ms: float | None = None
    peak_mib: float | None = None
    workspace_mib: float | None = None
    note: str = ""


def _release() -> None:
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()


def _measured(run: Callable[[], Measurement]) -> Measurement:
    """Runs one measurement; OOM (and kernel failures) become a note. Memory is released after the
    measurement's own frame is gone, so the next size starts from an empty cache."""
    import torch

    try:
        return run()
    except torch.cuda.OutOfMemoryError:
        return Measurement(note="OOM")
    except (native.NativeOpError, ValueError) as exc:  # e.g. cuBLAS out of memory, sizes over the int indices
        return Measurement(note=f"failed ({exc})")
    finally:
        _release()


def measure_reference(side: int, repeats: int, budget_s: float, seed: int) -> Measurement:
    import torch

    from ttsr.model.search_transfer import SearchTransfer

    def run() -> Measurement:
        block = SearchTransfer().cuda()
        inputs = make_inputs(Case(1, side, side, side, side), seed)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            ms = cuda_time_ms(lambda: block(*inputs), repeats, budget_s)
        return Measurement(ms, torch.cuda.max_memory_allocated() / MIB)

    return _measured(run)


def measure_kernels(kernels: CudaKernels, side: int, half: bool, repeats: int, budget_s: float, seed: int,
                    ref_chunk: int) -> Measurement:
    import torch

    def run() -> Measurement:
        inputs = make_inputs(Case(1, side, side, side, side), seed)
        if half:
            inputs = tuple(t.half() for t in inputs)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        call = kernels.prepare(inputs, ref_chunk)
        ms = cuda_time_ms(call, repeats, budget_s)
        return Measurement(ms, torch.cuda.max_memory_allocated() / MIB, call.workspace.numel() / MIB)

    return _measured(run)


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


Measure = Callable[[int, int], Measurement]  # (LR side, timed calls) -> Measurement

BENCHMARK_HEADERS = ("LR (=Ref)", "reference ms", "reference peak MiB", "kernels FP32 ms", "kernels FP32 peak MiB",
                     "kernels FP16 ms", "kernels FP16 peak MiB", "workspace MiB (FP32/FP16)")


def benchmark_report(sizes: Sequence[int], measures: dict[str, Measure], repeats: int, max_seconds: float,
                     largest: bool, capacity_mib: float) -> tuple[str, list[str]]:
    """The benchmark table and its notes from ``measures`` keyed 'ref', 'k32', 'k16'."""
    rows: dict[int, dict[str, Measurement]] = {}
    for side in sizes:
        rows[side] = {key: measure(side, repeats) for key, measure in measures.items()}
        print(f"  measured LR {side}x{side}", flush=True)

    notes = []
    if largest:
        top = max(sizes)
        for key, label in (("ref", "reference"), ("k32", "kernels FP32")):
            top_ms = rows[top][key].ms
            if top_ms is None:
                notes.append(f"{label}: does not fit at {top}x{top}")
                continue
            # Probes time one call after the warm-up: at these sizes a call takes seconds.
            side, found, why = largest_fitting(lambda n: measures[key](n, 1), top, top_ms, max_seconds)
            notes.append(f"{label}: largest LR measured {side}x{side} ({why})")
            if side not in rows:
                rows[side] = {k: found if k == key else measure(side, 1) for k, measure in measures.items()}

    table = []
    for side in sorted(rows):
        r, a, b = rows[side]["ref"], rows[side]["k32"], rows[side]["k16"]
        table.append([f"{side}x{side}", r.ms if r.ms is not None else r.note, r.peak_mib,
                      a.ms if a.ms is not None else a.note, a.peak_mib,
                      b.ms if b.ms is not None else b.note, b.peak_mib,
                      f"{a.workspace_mib or 0:.1f} / {b.workspace_mib or 0:.1f}"])
    for key, label, degree in (("ref", "reference", 2), ("k32", "kernels FP32", 1)):
        peaks = {s: rows[s][key].peak_mib for s in sizes}
        usable = {s: p for s, p in peaks.items() if p is not None}
        limit = extrapolated_side(list(usable), list(usable.values()), capacity_mib, degree)
        if limit is not None:
            notes.append(f"{label}: extrapolated memory limit ~{limit}x{limit} LR on {capacity_mib / 1024:.0f} GiB "
                         f"(degree-{degree} fit of peak vs LR area; not measured)")
    return markdown_table(BENCHMARK_HEADERS, table), notes


def benchmark(kernels: CudaKernels, sizes: list[int], repeats: int, budget_s: float, max_seconds: float,
              largest: bool, seed: int, ref_chunk: int) -> None:
    import torch

    measures: dict[str, Measure] = {
        "ref": lambda side, calls: measure_reference(side, calls, budget_s, seed),
        "k32": lambda side, calls: measure_kernels(kernels, side, False, calls, budget_s, seed, ref_chunk),
        "k16": lambda side, calls: measure_kernels(kernels, side, True, calls, budget_s, seed, ref_chunk),
    }
    capacity_mib = torch.cuda.mem_get_info()[1] / MIB
    table, notes = benchmark_report(sizes, measures, repeats, max_seconds, largest, capacity_mib)
    print(table)
    print("Peak = torch.cuda.max_memory_allocated with inputs, outputs and (kernels) workspace; batch 1; "
          "TTSR channels 256/256/128/64; reference in FP32 with TF32 off.")
    for note in notes:
        print(f"- {note}")


# ----------------------------------------------------------------------------- command line

@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--library", type=click.Path(path_type=Path), default=REPO / "build" / "gpu-check" / "libttsr_st_cuda.so",
              show_default=True, help="libttsr_st_cuda.so built by scripts/gpu_check.sh.")
@click.option("--sizes", default="40,80,120", show_default=True,
              help="Comma-separated square LR sizes (Ref = LR) for the benchmark.")
@click.option("--repeats", type=click.IntRange(1), default=10, show_default=True,
              help="Timed calls per measurement (median), after one warm-up.")
@click.option("--cell-seconds", type=click.FloatRange(0), default=20.0, show_default=True,
              help="Stop repeating a measurement once this much time is spent (at least one call).")
@click.option("--max-seconds", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Largest-size search: skip sizes whose one call would take longer than this.")
@click.option("--largest/--no-largest", default=True, show_default=True,
              help="Search the largest LR size the reference and the kernels fit in GPU memory.")
@click.option("--accuracy/--no-accuracy", default=True, show_default=True, help="Run the accuracy checks.")
@click.option("--benchmark/--no-benchmark", "run_benchmark", default=True, show_default=True,
              help="Run the latency / memory benchmark.")
@click.option("--ref-chunk", type=click.IntRange(0), default=0, show_default=True,
              help="Cap on Ref positions per pass in the benchmark (0: the kernels choose); the accuracy "
                   f"checks run caps {', '.join(map(str, REF_CHUNKS))} and this one.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random features.")
def main(library: Path, sizes: str, repeats: int, cell_seconds: float, max_seconds: float, largest: bool,
         accuracy: bool, run_benchmark: bool, ref_chunk: int, seed: int) -> None:
    """Check the search-transfer CUDA kernels against the PyTorch reference block on this GPU.

    Exits 1 when an accuracy check misses its threshold (after the benchmark, which still runs)."""
    try:
        side_list = parse_sizes(sizes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sizes") from exc
    import torch

    if not torch.cuda.is_available():
        raise click.ClickException("PyTorch sees no CUDA GPU: run this on a GPU machine with a CUDA build of torch")
    # The contract's FP32 is true FP32: no TF32 in the reference either.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        kernels = CudaKernels(library)
        kernels.open()
    except (native.NativeLibraryError, native.NativeOpError) as exc:
        raise click.ClickException(str(exc)) from exc
    print(f"GPU: {torch.cuda.get_device_name()} | torch {torch.__version__} | CUDA {torch.version.cuda} | {library}")
    failures: list[str] = []
    try:
        if accuracy:
            print("\n## Accuracy (kernels vs PyTorch reference block)\n")
            ref_chunks = REF_CHUNKS if ref_chunk in REF_CHUNKS else (*REF_CHUNKS, ref_chunk)
            failures = accuracy_report(kernels, seed, ref_chunks)
        if run_benchmark:
            print("\n## Benchmark (batch 1, Ref = LR)\n")
            benchmark(kernels, side_list, repeats, cell_seconds, max_seconds, largest, seed, ref_chunk)
    except native.NativeOpError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        kernels.close()
    if failures:
        raise click.ClickException(f"{len(failures)} accuracy checks failed (listed under the accuracy table)")


if __name__ == "__main__":
    main()
