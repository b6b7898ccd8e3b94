"""Issue #9's speed and memory targets (Hopper, batch 1, medians of CUDA events, PyTorch measured
in the same run) against this run's figures.  Informational: the exit status follows the
accuracy bars only, since a target is a goal of the kernels' work, not a correctness check."""

from __future__ import annotations

from dataclasses import dataclass

from ttsr.bench.block import BlockBenchmark
from ttsr.bench.tables import markdown_table
from ttsr.bench.whole_model import WholeModelBenchmark

GIB_IN_MIB = 1024.0
MODEL_TARGET = (160, "FP16", 25.0)  # LR side, precision, ms (Ref 640)


@dataclass
class Target:
    label: str
    limit: str
    measured: float | None
    bound: float | None
    pytorch: float | None = None  # the PyTorch block's time in the same run, where the target is a time

    @property
    def speedup(self) -> float | None:
        """PyTorch's time over the kernels' (same run); None where either is missing."""
        if self.measured is None or self.pytorch is None or self.measured <= 0:
            return None
        return self.pytorch / self.measured

    @property
    def verdict(self) -> str:
        if self.measured is None or self.bound is None:
            return "not measured"
        return "met" if self.measured <= self.bound else "missed"

    def to_dict(self) -> dict[str, object]:
        return {"target": self.label, "limit": self.limit, "measured": self.measured, "bound": self.bound,
                "pytorch_same_run": self.pytorch, "speedup_vs_pytorch": self.speedup, "verdict": self.verdict}


def _ms(block: BlockBenchmark, side: int, key: str) -> float | None:
    cells = block.rows.get(side)
    return cells[key].ms if cells is not None else None


def evaluate(block: BlockBenchmark | None, model: WholeModelBenchmark | None) -> list[Target]:
    targets = []
    if block is not None:
        targets += [Target("FP16 kernels, LR = Ref 120 (ms)", "<= 2.5 ms", _ms(block, 120, "k16"), 2.5,
                           _ms(block, 120, "ref16")),
                    Target("FP16 kernels, LR = Ref 384 (ms)", "<= 150 ms", _ms(block, 384, "k16"), 150.0,
                           _ms(block, 384, "ref16"))]
        for side in (120, 384):
            pytorch = _ms(block, side, "ref32")
            targets.append(Target(f"FP32 kernels, LR = Ref {side} (ms)", "<= PyTorch FP32 block, same run",
                                  _ms(block, side, "k32"), pytorch, pytorch))
        cells = block.rows.get(384)
        workspaces = [] if cells is None else [m.workspace_mib for key, m in cells.items()
                                                if key in ("k32", "k16") and m.workspace_mib is not None]
        targets.append(Target("workspace at LR = Ref 384 (MiB, larger of FP32/FP16)", "<= 4 GiB",
                              max(workspaces) if workspaces else None, 4 * GIB_IN_MIB))
    if model is not None:
        side, precision, bound = MODEL_TARGET
        for mode in ("eager", "graph"):
            cell = model.cells.get((side, precision, "kernels", mode))
            block_cell = model.cells.get((side, precision, "PyTorch block", mode))
            targets.append(Target(f"whole model {precision} with the kernels, LR {side} / Ref {4 * side}, {mode} (ms)",
                                  f"<= {bound:g} ms", cell.ms if cell is not None else None, bound,
                                  block_cell.ms if block_cell is not None else None))
    return targets


def targets_table(targets: list[Target]) -> str:
    return markdown_table(["target", "limit", "measured", "PyTorch, same run", "speed-up vs PyTorch", "verdict"],
                          [[t.label, t.limit, t.measured, t.pytorch,
                            None if t.speedup is None else f"{t.speedup:.2f}x", t.verdict] for t in targets])
