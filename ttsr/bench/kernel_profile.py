"""Where the time goes: a per-kernel breakdown of one call from a torch.profiler trace.

The trace (Chrome trace JSON) records every GPU kernel with its duration and launch grid,
so the breakdown also shows the fewest blocks each kernel was launched with: a kernel launched
with fewer blocks than the GPU has SMs leaves SMs idle (issue #9, item 2).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ttsr.bench.tables import markdown_table
from ttsr.plugin.torch_kernels import TorchKernels

NAME_WIDTH = 90  # cuBLAS kernel names run to hundreds of characters; the start tells them apart


@dataclass
class KernelTime:
    name: str
    launches: int
    total_us: float
    min_blocks: int
    max_blocks: int

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "launches": self.launches, "total_us": self.total_us,
                "min_blocks": self.min_blocks, "max_blocks": self.max_blocks}


def _blocks(args: dict[str, Any]) -> int:
    grid = args.get("grid") or [1]
    blocks = 1
    for extent in grid:
        blocks *= int(extent)
    return blocks


def kernel_breakdown(trace: dict[str, Any]) -> list[KernelTime]:
    """Kernels of a Chrome trace, grouped by name, most total time first."""
    kernels: dict[str, KernelTime] = {}
    for event in trace.get("traceEvents", []):
        if str(event.get("cat", "")).lower() != "kernel" or event.get("ph") != "X":
            continue
        blocks = _blocks(event.get("args") or {})
        name = str(event.get("name", "?"))
        entry = kernels.get(name)
        if entry is None:
            kernels[name] = KernelTime(name, 1, float(event.get("dur", 0.0)), blocks, blocks)
        else:
            entry.launches += 1
            entry.total_us += float(event.get("dur", 0.0))
            entry.min_blocks = min(entry.min_blocks, blocks)
            entry.max_blocks = max(entry.max_blocks, blocks)
    return sorted(kernels.values(), key=lambda k: k.total_us, reverse=True)


def profile_kernels(fn: Callable[[], object], calls: int) -> list[KernelTime]:
    """The kernels of ``calls`` calls of ``fn`` (after one warm-up call), by torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    handle, path = tempfile.mkstemp(suffix=".json", prefix="ttsr-profile-")
    os.close(handle)
    try:
        prof.export_chrome_trace(path)
        with open(path) as stream:
            return kernel_breakdown(json.load(stream))
    finally:
        os.unlink(path)


def breakdown_table(kernels: Sequence[KernelTime], calls: int, sm_count: int, top: int = 12) -> str:
    """The ``top`` kernels per call: launches, time, share of all kernel time, launch blocks
    (marked '< SMs' where some launch had fewer blocks than the GPU's ``sm_count``)."""
    total = sum(k.total_us for k in kernels) or 1.0
    rows = []
    for k in kernels[:top]:
        blocks = f"{k.min_blocks}" if k.min_blocks == k.max_blocks else f"{k.min_blocks}-{k.max_blocks}"
        if k.min_blocks < sm_count:
            blocks += " (< SMs)"
        name = k.name if len(k.name) <= NAME_WIDTH else k.name[:NAME_WIDTH - 3] + "..."
        rows.append([f"`{name}`", f"{k.launches / calls:g}", f"{k.total_us / calls / 1000:.3f}",
                     f"{100 * k.total_us / total:.1f}%", blocks])
    if len(kernels) > top:
        rest = kernels[top:]
        rows.append([f"({len(rest)} more kernels)", f"{sum(k.launches for k in rest) / calls:g}",
                     f"{sum(k.total_us for k in rest) / calls / 1000:.3f}",
                     f"{100 * sum(k.total_us for k in rest) / total:.1f}%", "-"])
    return markdown_table(["kernel", "launches per call", "ms per call", "share", "blocks per launch"], rows)


@dataclass
class BlockProfile:
    """The breakdowns of the kernels and of the PyTorch block at one size (a string: why there is none)."""

    side: int
    half: bool
    calls: int
    sm_count: int
    breakdowns: dict[str, list[KernelTime] | str]

    def tables(self) -> str:
        parts = []
        for name, breakdown in self.breakdowns.items():
            if isinstance(breakdown, str):
                parts.append(f"{name}: no breakdown ({breakdown})")
            else:
                parts.append(f"{name}:\n\n{breakdown_table(breakdown, self.calls, self.sm_count)}")
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {"lr": self.side, "ref": self.side, "precision": "FP16" if self.half else "FP32",
                "calls": self.calls, "sm_count": self.sm_count,
                "kernels": {name: b if isinstance(b, str) else [k.to_dict() for k in b]
                            for name, b in self.breakdowns.items()}}


def profile_block(kernels: TorchKernels, side: int, half: bool, seed: int, ref_chunk: int, sm_count: int,
                  calls: int = 2) -> BlockProfile:
    """Breakdowns of ``calls`` calls of the kernels and of the PyTorch block at LR = Ref ``side``."""
    import torch

    from ttsr.bench.features import Case, make_inputs
    from ttsr.bench.timing import release
    from ttsr.errors import first_line
    from ttsr.model.search_transfer import SearchTransfer

    inputs = make_inputs(Case.square(side), seed)
    if half:
        inputs = tuple(t.half() for t in inputs)
    reference = SearchTransfer().cuda()

    def run_reference() -> object:
        with torch.no_grad():
            return reference(*inputs)

    breakdowns: dict[str, list[KernelTime] | str] = {}
    for name, fn in (("kernels", lambda: kernels.prepare(inputs, ref_chunk)()), ("PyTorch block", run_reference)):
        try:
            breakdowns[name] = profile_kernels(fn, calls)
        except torch.cuda.OutOfMemoryError:
            breakdowns[name] = f"out of memory at {side}x{side}"
        except RuntimeError as exc:  # a profiler without CUPTI, a kernel error: the other sections still run
            breakdowns[name] = first_line(exc)
        release()
    return BlockProfile(side, half, calls, sm_count, breakdowns)
