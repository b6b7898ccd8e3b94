"""CPU benchmark of the search-transfer op: the native host twin vs the PyTorch reference block.

Prints a markdown table of latency and peak memory per LR size (Ref of the same size,
TTSR channels 256/256/128/64, relu-like random features), with the twin's time per stage
and its tiles.  The whole pipeline (torch vs ort backend): ``scripts/bench_cpu_pipeline.py``.  Each measurement runs in a
fresh child process; peak memory is the child's ``ru_maxrss`` (resource module) minus
its resident size just before the op ran, so it counts what the op itself allocated
(workspace, intermediates and outputs), not the interpreter or the inputs.

    .venv/bin/python scripts/bench_cpu.py [--sizes 40,80,120] [--repeats 3] [--threads 2] [--budget 0]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ttsr.bench.sizes import parse_sizes  # noqa: E402
IMPLEMENTATIONS = ("twin", "reference")
CHANNELS = (256, 256, 128, 64)  # ck, c3, c2, c1


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(implementation: str, side: int, repeats: int, threads: int, budget: int) -> dict[str, float]:
    """Runs in the child: latency (median of repeats after one warm-up) and peak extra memory."""
    import numpy as np
    import torch

    from ttsr.contract import Shapes
    from ttsr.model.search_transfer import SearchTransfer
    from ttsr.plugin.native import CPU_DEFAULT_BUDGET, TWIN_STAGES, cpu_workspace_size, search_transfer_cpu, tile_sizes

    torch.set_num_threads(threads)
    ck, c3, c2, c1 = CHANNELS
    shapes = Shapes(1, ck, side, side, side, side, c3, c2, c1)
    rng = np.random.default_rng(0)
    inputs = [np.maximum(rng.standard_normal(s, dtype=np.float32), 0.0)
              for s in shapes.expected_inputs()]
    stages: dict[str, float] = {}
    if implementation == "twin":
        q, k, v3, v2, v1 = inputs

        def run() -> None:
            stages.clear()
            search_transfer_cpu(q, k, v3, v2, v1, budget=budget, threads=threads, stage_seconds=stages)
    else:
        block = SearchTransfer()
        tensors = [torch.from_numpy(a) for a in inputs]

        def run() -> None:
            with torch.inference_mode():
                block(*tensors)
    before = resident_bytes()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    lr_tile, ref_tile = tile_sizes(shapes, budget=budget or CPU_DEFAULT_BUDGET)
    return {"ms": statistics.median(times[1:]) * 1e3, "peak_mb": (peak - before) / 2**20,
            "workspace_mb": cpu_workspace_size(shapes, budget=budget) / 2**20, "lr_tile": lr_tile,
            "ref_tile": ref_tile, "relevance_mb": (side * side) ** 2 * 4 / 2**20,
            **{f"{stage}_ms": stages.get(stage, 0.0) * 1e3 for stage in TWIN_STAGES}}


def run_child(implementation: str, side: int, repeats: int, threads: int, budget: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", implementation, "--sizes", str(side),
               "--repeats", str(repeats), "--threads", str(threads), "--budget", str(budget)]
    # PyTorch's OpenMP threads wait passively, as the twin's do: spinning ones made its times swing
    # 10x on a shared machine (see bench_cpu_pipeline.py).
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT,
                          env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    if done.returncode != 0:
        raise click.ClickException(f"{implementation} at {side}x{side} failed:\n{done.stderr.strip()}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@click.command()
@click.option("--sizes", default="40,80,120", show_default=True, help="LR sides (Ref the same).")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(min=1),
              help="Timed runs after one warm-up; the median is reported.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(min=1),
              help="Threads for both: torch's, and the twin's workers.")
@click.option("--budget", default=0, show_default=True, type=click.IntRange(min=0),
              help="The twin's tile budget in bytes (0: its default, TTSR_ST_CPU_DEFAULT_WORKSPACE_BUDGET).")
@click.option("--child", type=click.Choice(IMPLEMENTATIONS), hidden=True)
def main(sizes: str, repeats: int, threads: int, budget: int, child: str | None) -> None:
    """Latency and peak memory of the host twin vs the PyTorch reference block."""
    try:
        sides = parse_sizes(sizes)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if child is not None:
        click.echo(json.dumps(measure(child, sides[0], repeats, threads, budget)))
        return
    load = os.getloadavg()
    click.echo(f"CPU: {os.cpu_count()} cores, load average {load[0]:.1f}; {threads} thread(s) each; "
               f"median of {repeats} runs; peak = ru_maxrss - RSS before the op, fresh process each")
    click.echo("")
    click.echo("| LR = Ref | twin ms | reference ms | twin speed-up | twin peak MB | reference peak MB "
               "| twin workspace MB (LR x Ref tile) | reference relevance matrix MB "
               "| twin prepare / gemm / argmax / transfer ms |")
    click.echo("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for side in sides:
        twin = run_child("twin", side, repeats, threads, budget)
        ref = run_child("reference", side, repeats, threads, budget)
        stages = " / ".join(f"{twin[stage + '_ms']:.0f}" for stage in ("prepare", "gemm", "argmax", "transfer"))
        click.echo(f"| {side}x{side} | {twin['ms']:.0f} | {ref['ms']:.0f} | {ref['ms'] / twin['ms']:.1f}x "
                   f"| {twin['peak_mb']:.0f} | {ref['peak_mb']:.0f} "
                   f"| {twin['workspace_mb']:.1f} ({twin['lr_tile']:.0f} x {twin['ref_tile']:.0f}) "
                   f"| {ref['relevance_mb']:.0f} | {stages} |")


if __name__ == "__main__":
    main()
