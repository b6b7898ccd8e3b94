"""Accuracy of the search-transfer kernels against the PyTorch reference block, and the pass bars.

FP32 kernels vs :class:`ttsr.model.SearchTransfer` (TF32 off): max abs error per output; FP16
kernels vs the FP32 reference: argmax agreement rate and PSNR of the transferred textures.
Each case runs at several Ref chunk caps, so that the kernels' merge of the running best
across chunks runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ttsr import contract
from ttsr.bench.features import Case, make_inputs
from ttsr.bench.tables import markdown_table

# Pass bars (tests/test_plugin_cpu.py holds the host twin to the same FP32 bound)
FP32_MAX_ABS = 1e-5  # ttsr/contract.py: float32 outputs within 1e-5 where the argmax agrees
FP16_MIN_AGREEMENT = 0.95
FP16_MIN_PSNR_DB = 40.0
# FP16 stores s with an 11-bit significand: a picked relevance lower than the best by
# more than this (relevances lie in [-1, 1]) means another Ref position was chosen.
FP16_RELEVANCE_TOL = 2e-3
FP32_TIE_TOL = 1e-6  # ttsr/contract.py: closer maxima may resolve either way

# odd, non-square, Ref != LR, batch > 1, 1x1 and 2x2 grids
ACCURACY_CASES = (
    Case(1, 40, 40, 40, 40),
    Case(2, 23, 17, 31, 29),
    Case(1, 12, 30, 9, 5),
    Case(2, 2, 2, 1, 1, (16, 16, 8, 4)),
    Case(1, 1, 1, 2, 2, (16, 16, 8, 4)),
    Case(1, 96, 96, 48, 48),
)
# 0: the kernels' own plan; 1: one Ref position per pass; 7 divides none of the Ref sizes, so
# wherever it splits the Ref, the last chunk is partial: caps 1 and 7 run the kernels' merge of
# the running best across chunks whatever the default plan does.
REF_CHUNKS = (0, 1, 7)

Outputs = tuple[Tensor, ...]  # s, t3, t2, t1


class Kernels(Protocol):
    """What :func:`check_accuracy` needs of the kernels (:class:`ttsr.plugin.torch_kernels.TorchKernels`)."""

    def chunk_size(self, shapes: contract.Shapes, dtype: type, ref_chunk: int) -> int: ...

    def prepare(self, inputs: Sequence[Tensor], ref_chunk: int = 0) -> Callable[[], Outputs]: ...


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
    grown = F.max_pool2d(lr_mask.float(), kernel_size=3, stride=1, padding=1)
    return grown.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3) > 0


def best_two_relevances(q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """Top-2 cosine relevances per LR position (the reference block's relevance, in float32)."""
    from ttsr.model.search_transfer import relevance

    scores = relevance(q, k)
    if scores.shape[1] == 1:
        best = scores[:, 0]
        return best, torch.full_like(best, -math.inf)
    top = scores.topk(2, dim=1).values
    return top[:, 0], top[:, 1]


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
    relevance: str = "auto"  # the relevance path the kernels were told to take

    @property
    def label(self) -> str:
        path = "" if self.relevance == "auto" else f" relevance={self.relevance}"
        return f"{self.case.label} ref_chunk={self.ref_chunk}{path}"

    def to_dict(self) -> dict[str, object]:
        return {"case": self.case.label, "ref_chunk": self.ref_chunk, "relevance": self.relevance, "chunk": self.chunk,
                "ref_positions": self.case.hr * self.case.wr,
                "fp32_max_abs": dict(zip(contract.OUTPUT_NAMES, self.fp32_max_abs)),
                "fp32_near_tie_fraction": self.fp32_near_tie_fraction,
                "fp16_argmax_agreement": self.fp16_agreement, "fp16_ambiguous": self.fp16_ambiguous,
                "fp16_psnr_db": dict(zip(contract.OUTPUT_NAMES[1:], self.fp16_psnr_db))}


def check_accuracy(kernels: Kernels, seed: int, ref_chunks: Sequence[int] = REF_CHUNKS,
                   cases: Sequence[Case] = ACCURACY_CASES, device: str = "cuda",
                   relevance: str = "auto") -> list[AccuracyResult]:
    """Kernels vs the reference block on each case's random features at each Ref chunk cap;
    ``relevance`` names the FP16 path ``kernels`` were opened with, for the labels."""
    results = []
    for index, case in enumerate(cases):
        results += check_inputs(kernels, make_inputs(case, seed + index, device), ref_chunks, case, relevance)
    return results


def check_inputs(kernels: Kernels, inputs: Sequence[Tensor], ref_chunks: Sequence[int],
                 case: Case | None = None, relevance: str = "auto") -> list[AccuracyResult]:
    """Kernels vs the reference block on ``inputs`` (q, k, v3, v2, v1 in float32) at each Ref chunk
    cap; the reference runs once.  ``case`` labels the results (default: read from the shapes)."""
    from ttsr.model.search_transfer import SearchTransfer

    shapes = contract.Shapes.from_inputs(*inputs)
    if case is None:
        case = Case(shapes.n, shapes.h, shapes.w, shapes.hr, shapes.wr, (shapes.ck, shapes.c3, shapes.c2, shapes.c1))
    with torch.no_grad():
        expected = SearchTransfer()(*inputs)
        best, second = best_two_relevances(inputs[0], inputs[1])
    near_tie = ((best - second) <= FP32_TIE_TOL).view(case.n, 1, case.h, case.w)
    results = []
    for ref_chunk in ref_chunks:
        got32 = kernels.prepare(inputs, ref_chunk)()
        got16 = kernels.prepare(tuple(t.half() for t in inputs), ref_chunk)()
        if inputs[0].is_cuda:
            torch.cuda.synchronize()
        errors = []
        for name, want, got, scale in zip(contract.OUTPUT_NAMES, expected, got32, (1, *contract.LEVEL_SCALES)):
            diff = (got - want).abs()
            if name != "s":  # texture pixels fed by a near-tie may legitimately differ
                diff = diff.masked_fill(influenced_mask(near_tie, scale), 0)
            errors.append(diff.max().item())
        agreement, ambiguous = argmax_agreement(got16[0].float(), best, second, FP16_RELEVANCE_TOL)
        t3, t2, t1 = (psnr(want, got.float()) for want, got in zip(expected[1:], got16[1:]))
        s_err, t3_err, t2_err, t1_err = errors
        results.append(AccuracyResult(case, ref_chunk, kernels.chunk_size(shapes, np.float32, ref_chunk),
                                      (s_err, t3_err, t2_err, t1_err), near_tie.float().mean().item(),
                                      agreement, ambiguous, (t3, t2, t1), relevance))
    return results


def accuracy_failures(results: Sequence[AccuracyResult]) -> list[str]:
    """One line per result that misses a bar, naming the numbers; NaN always fails."""
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
    headers = ["case", "ref_chunk", "relevance", "chunk / Ref positions", "FP32 max abs err s", "t3", "t2", "t1",
               "FP32 near-tie positions", "FP16 argmax agreement", "FP16 ambiguous", "FP16 PSNR t3 dB", "t2 dB",
               "t1 dB"]
    rows = [[r.case.label, r.ref_chunk, r.relevance, f"{r.chunk} / {r.case.hr * r.case.wr}", *(f"{e:.2e}" for e in r.fp32_max_abs),
             f"{100 * r.fp32_near_tie_fraction:.3f}%", f"{100 * r.fp16_agreement:.3f}%",
             f"{100 * r.fp16_ambiguous:.3f}%", *r.fp16_psnr_db]
            for r in results]
    return markdown_table(headers, rows)


def accuracy_report(kernels: Kernels, seed: int, ref_chunks: Sequence[int] = REF_CHUNKS,
                    cases: Sequence[Case] = ACCURACY_CASES, device: str = "cuda",
                    relevance: str = "auto") -> tuple[list[AccuracyResult], list[str]]:
    """Prints the accuracy table, its notes and the failing cases; returns the results and the failures."""
    results = check_accuracy(kernels, seed, ref_chunks, cases, device, relevance)
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
    return results, failures
