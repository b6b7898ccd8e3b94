"""The whole TTSR on the GPU with the search-transfer on the plugin's kernels, against the same
model with the PyTorch block: latency (eager and CUDA-graph replay), peak memory and the SR
output's distance from the PyTorch FP32 model, in FP32 and FP16, batch 1, Ref 4x the LR.

With seeded random weights the SR output hardly depends on the textures (a search of the mirrored
Ref still gave 70 dB at LR 4 with the CPU twin), so the SR bar only catches broken runs (NaN, garbage).  The
kernels are held to the block's bars on the model's own LTE features instead: the features the
PyTorch block receives in the FP32 model go through the block accuracy check."""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ttsr.bench import accuracy
from ttsr.bench.features import SCALE, model_inputs
from ttsr.bench.tables import markdown_table
from ttsr.bench.timing import MIB, Measurement, cuda_time_ms, graph_replay, measured
from ttsr.model.ttsr import TTSR
from ttsr.plugin.torch_kernels import KernelSearchTransfer, TorchKernels, swap_search_transfer

SIZES = (40, 80, 120, 160)
PRECISIONS = {"FP32": torch.float32, "FP16": torch.float16}
BLOCKS = ("PyTorch block", "kernels")
MODES = ("eager", "graph")
# The SR image of the model with the kernels against the PyTorch FP32 model, in dB over the
# output range [-1, 1].
MIN_PSNR_DB = 40.0

Key = tuple[int, str, str, str]  # LR side, precision, block, mode


@dataclass
class Distance:
    """The SR output of one variant against the PyTorch FP32 model's."""

    psnr_db: float
    max_abs: float
    graph_vs_eager_max_abs: float | None  # the replayed graph's output against the eager one

    def to_dict(self) -> dict[str, object]:
        return {"psnr_db": self.psnr_db, "max_abs": self.max_abs,
                "graph_vs_eager_max_abs": self.graph_vs_eager_max_abs}


@dataclass
class WholeModelBenchmark:
    cells: dict[Key, Measurement] = field(default_factory=dict)
    distances: dict[tuple[int, str, str], Distance] = field(default_factory=dict)  # LR side, precision, block
    block_accuracy: list[accuracy.AccuracyResult] = field(default_factory=list)  # on the model's features

    def sizes(self) -> list[int]:
        return sorted({key[0] for key in self.cells})

    def table(self) -> str:
        headers = ["LR / Ref"]
        for precision, block, mode in itertools.product(PRECISIONS, BLOCKS, MODES):
            headers.append(f"{block} {precision} {mode} ms")
        rows = []
        for side in self.sizes():
            row: list[object] = [f"{side} / {SCALE * side}"]
            for precision, block, mode in itertools.product(PRECISIONS, BLOCKS, MODES):
                cell = self.cells.get((side, precision, block, mode))
                row.append(cell.cell() if cell is not None else None)
            rows.append(row)
        return markdown_table(headers, rows)

    def accuracy_table(self) -> str:
        headers = ["LR / Ref", "precision", "block", "SR PSNR dB vs PyTorch FP32", "max abs", "graph vs eager max abs",
                   "peak MiB (eager)"]
        rows = []
        for (side, precision, block), d in self.distances.items():
            peak = self.cells[(side, precision, block, "eager")].peak_mib
            graph = None if d.graph_vs_eager_max_abs is None else f"{d.graph_vs_eager_max_abs:.2e}"
            rows.append([f"{side} / {SCALE * side}", precision, block, d.psnr_db, f"{d.max_abs:.2e}", graph, peak])
        return markdown_table(headers, rows)

    def failures(self) -> list[str]:
        """The runs with the kernels that failed, and their SR outputs below :data:`MIN_PSNR_DB`
        against the PyTorch FP32 model (NaN fails); out of memory is a note, not a failure."""
        failed = [f"whole model LR {side} / Ref {SCALE * side} {precision} with the kernels, {mode}: {m.note}"
                  for (side, precision, block, mode), m in self.cells.items()
                  if block == "kernels" and m.note.startswith("failed")]
        features = [f"whole model features: {line}" for line in accuracy.accuracy_failures(self.block_accuracy)]
        return failed + features + [f"whole model LR {side} / Ref {SCALE * side} {precision} with the kernels: SR PSNR "
                         f"{d.psnr_db:.2f} dB < {MIN_PSNR_DB:g} dB against the PyTorch FP32 model"
                         for (side, precision, block), d in self.distances.items()
                         if block == "kernels" and not d.psnr_db >= MIN_PSNR_DB]

    def to_dict(self) -> dict[str, object]:
        return {"cells": [{"lr": side, "ref": SCALE * side, "precision": precision, "block": block, "mode": mode,
                           **m.to_dict()} for (side, precision, block, mode), m in self.cells.items()],
                "accuracy": [{"lr": side, "precision": precision, "block": block, **d.to_dict()}
                             for (side, precision, block), d in self.distances.items()],
                "block_accuracy_on_model_features": [r.to_dict() for r in self.block_accuracy],
                "min_psnr_db": MIN_PSNR_DB}


def model_variants(model: TTSR, kernels: TorchKernels, ref_chunk: int = 0,
                   precisions: Sequence[str] = tuple(PRECISIONS)) -> dict[tuple[str, str], nn.Module]:
    """(precision, block) -> the model in that precision with that search-transfer; the FP32
    variants share ``model``'s weights, the FP16 ones a half copy."""
    variants: dict[tuple[str, str], nn.Module] = {}
    for precision in precisions:
        dtype = PRECISIONS[precision]
        base = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        variants[(precision, "PyTorch block")] = base
        variants[(precision, "kernels")] = swap_search_transfer(base, KernelSearchTransfer(kernels, ref_chunk))
    return variants


def _distance(expected: Tensor, got: Tensor, graph_got: Tensor | None) -> Distance:
    expected64 = expected.double()
    got64 = got.double()
    # PSNR over the output's full range [-1, 1], as images are scored.
    mse = (got64 - expected64).pow(2).mean().item()
    db = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
    graph = None if graph_got is None else (graph_got.double() - got64).abs().max().item()
    return Distance(db, (got64 - expected64).abs().max().item(), graph)


def benchmark_model(model: TTSR, kernels: TorchKernels, sizes: Sequence[int], repeats: int, budget_s: float,
                    seed: int, device: str = "cuda", ref_chunk: int = 0,
                    timer: Callable[[Callable[[], object], int, float], float] = cuda_time_ms,
                    capture: Callable[[Callable[[], Tensor]], tuple[Callable[[], None], Tensor]] = graph_replay,
                    precisions: Sequence[str] = tuple(PRECISIONS)) -> WholeModelBenchmark:
    """Every size x precision x block x mode; ``timer`` and ``capture`` are the CUDA ones on a GPU
    (the tests pass CPU stand-ins)."""
    model = model.to(device).eval()
    variants = model_variants(model, kernels, ref_chunk, precisions)
    result = WholeModelBenchmark()
    for side in sizes:
        inputs32 = tuple(t.to(device) for t in model_inputs(side, seed))
        features: list[tuple[Tensor, ...]] = []
        hook = model.search_transfer.register_forward_hook(lambda module, args, output: features.append(args))
        try:
            with torch.no_grad():
                expected = model(*inputs32).float()
        finally:
            hook.remove()
        result.block_accuracy += accuracy.check_inputs(kernels, features[0], (ref_chunk,))
        del features
        for (precision, block), net in variants.items():
            inputs = tuple(t.to(PRECISIONS[precision]) for t in inputs32)
            outputs: dict[str, Tensor] = {}

            def forward() -> Tensor:
                with torch.no_grad():
                    return net(*inputs)  # type: ignore[no-any-return]

            def eager() -> Measurement:
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                outputs["eager"] = forward().float()
                ms = timer(forward, repeats, budget_s)
                peak = torch.cuda.max_memory_allocated() / MIB if device == "cuda" else None
                return Measurement(ms, peak)

            def graph() -> Measurement:
                replay, output = capture(forward)
                replay()
                outputs["graph"] = output.float()
                return Measurement(timer(replay, repeats, budget_s))

            result.cells[(side, precision, block, "eager")] = measured(eager)
            result.cells[(side, precision, block, "graph")] = measured(graph)
            if "eager" in outputs:
                result.distances[(side, precision, block)] = _distance(expected, outputs["eager"],
                                                                       outputs.get("graph"))
            print(f"  measured LR {side} {precision} {block}", flush=True)
    return result
