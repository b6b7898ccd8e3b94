"""GPU check of the search-transfer CUDA kernels: the front end of :mod:`ttsr.bench`.

Run through ``bash scripts/gpu_check.sh`` (which builds ``libttsr_st_cuda.so``) on a machine with
an NVIDIA GPU and a CUDA build of PyTorch; TensorRT is not needed.  In order:

1. accuracy of the kernels against the PyTorch reference block (bars: FP32 max abs error <= 1e-5,
   FP16 argmax agreement >= 95 %, FP16 texture PSNR >= 40 dB), each case at several Ref chunk caps,
   on each relevance path (gram: the library's default; gemm and fused: the patch paths);
2. compute-sanitizer memcheck of the kernels on small odd shapes (where compute-sanitizer exists);
3. block benchmark: PyTorch block FP32 / FP16 and kernels FP32 (auto, gemm) / FP16 (auto, gemm,
   fused), latency and peak memory;
4. per-kernel time breakdown of one call (torch.profiler) at one size, kernels and PyTorch block;
5. whole model: TTSR with the kernels swapped in vs the PyTorch block, eager and CUDA-graph replay,
   FP32 and FP16, LR 40/80/120/160 with Ref 4x (bar: SR PSNR >= 40 dB against the PyTorch FP32 model);
6. issue #9's targets against the figures, and the JSON report (--json).

Exit status 1 when a bar is missed (accuracy, memcheck errors, whole-model output), after every step ran.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttsr.bench import accuracy, block, kernel_profile, memcheck, targets, whole_model  # noqa: E402
from ttsr.bench.sizes import parse_sizes  # noqa: E402
from ttsr.errors import first_line  # noqa: E402
from ttsr.plugin import native  # noqa: E402

PRECISIONS = {"fp32": False, "fp16": True}  # --profile-precision -> half
RELEVANCE_PATHS = ("gram", "gemm", "fused")  # the paths the accuracy checks force, one after the other


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    if value.strip() in ("", "0", "none"):
        return []
    try:
        return parse_sizes(value, f"--{param.name.replace('_', '-')}" if param.name else "")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


class Sections:
    """Runs the report's sections in order, printing each heading and its time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, title: str, step: Callable[[], Any]) -> Any:
        click.echo(f"\n## {title}\n")
        start = time.perf_counter()
        try:
            return step()
        finally:
            self.seconds[title] = round(time.perf_counter() - start, 1)
            click.echo(f"({title}: {self.seconds[title]:.1f} s)")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--library", type=click.Path(path_type=Path), default=REPO / "build" / "gpu-check" / "libttsr_st_cuda.so",
              show_default=True, help="libttsr_st_cuda.so built by scripts/gpu_check.sh.")
@click.option("--sizes", default="40,120,384", show_default=True, callback=_sizes,
              help="Square LR sizes (Ref = LR) of the block benchmark, comma-separated ('' skips it).")
@click.option("--model-sizes", default=",".join(map(str, whole_model.SIZES)), show_default=True, callback=_sizes,
              help="LR sizes of the whole-model benchmark (Ref 4x), comma-separated ('' skips it).")
@click.option("--profile-size", type=click.IntRange(0), default=384, show_default=True,
              help="LR = Ref size of the per-kernel breakdown (0 skips it).")
@click.option("--profile-precision", type=click.Choice(list(PRECISIONS)), default="fp16", show_default=True,
              help="Precision of the per-kernel breakdown.")
@click.option("--repeats", type=click.IntRange(1), default=10, show_default=True,
              help="Timed calls per measurement (median), after one warm-up.")
@click.option("--cell-seconds", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Stop repeating a measurement once this much time is spent (at least one call).")
@click.option("--largest/--no-largest", default=False, show_default=True,
              help="Search the largest LR size the FP32 reference and kernels fit in GPU memory (minutes).")
@click.option("--max-seconds", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Largest-size search: skip sizes whose one call would take longer than this.")
@click.option("--accuracy/--no-accuracy", "run_accuracy", default=True, show_default=True,
              help="Run the block accuracy checks.")
@click.option("--memcheck/--no-memcheck", "run_memcheck", default=True, show_default=True,
              help="Run compute-sanitizer memcheck on small cases (skipped with a note where it is missing).")
@click.option("--memcheck-timeout", type=click.FloatRange(1), default=180.0, show_default=True,
              help="Seconds before the memcheck run is abandoned (reported as timed out, not as a failure).")
@click.option("--ref-chunk", type=click.IntRange(0), default=0, show_default=True,
              help="Cap on Ref positions per pass in the benchmarks (0: the kernels choose); the accuracy "
                   f"checks run caps {', '.join(map(str, accuracy.REF_CHUNKS))} and this one.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random features and model.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the whole report as JSON here (gpu_check.sh: build/gpu-check/report.json).")
def main(library: Path, sizes: list[int], model_sizes: list[int], profile_size: int, profile_precision: str,
         repeats: int, cell_seconds: float, largest: bool, max_seconds: float, run_accuracy: bool,
         run_memcheck: bool, memcheck_timeout: float, ref_chunk: int, seed: int, json_path: Path | None) -> None:
    """Check the search-transfer CUDA kernels against the PyTorch reference on this GPU: accuracy,
    memcheck, block and whole-model benchmarks, per-kernel breakdown, issue #9's targets.

    \b
    Examples:
      bash scripts/gpu_check.sh                          # everything (sized for < 5 minutes on an H200)
      bash scripts/gpu_check.sh --no-memcheck --sizes 40,120 --model-sizes 40 --profile-size 0
      python scripts/gpu_check.py --library build/gpu-check/libttsr_st_cuda.so --json report.json

    Exits 1 when a bar is missed (listed at the end, after every step ran)."""
    import torch

    from ttsr.atomic import write_json_atomic
    from ttsr.model import build_model
    from ttsr.plugin.torch_kernels import TorchKernels, open_cuda_kernels

    if not torch.cuda.is_available():
        raise click.ClickException("PyTorch sees no CUDA GPU: run this on a GPU machine with a CUDA build of torch")
    # The contract's FP32 is true FP32: no TF32 in the reference either.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        kernels = TorchKernels(open_cuda_kernels(library))
        forced = {path: TorchKernels(open_cuda_kernels(library, relevance=path)) for path in RELEVANCE_PATHS}
    except (native.NativeLibraryError, native.NativeOpError) as exc:
        raise click.ClickException(str(exc)) from exc
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    gpu = {"name": torch.cuda.get_device_name(), "sm_count": properties.multi_processor_count,
           "memory_mib": properties.total_memory / (1 << 20), "torch": torch.__version__, "cuda": torch.version.cuda,
           "library": str(library)}
    click.echo(f"GPU: {gpu['name']} ({gpu['sm_count']} SMs) | torch {gpu['torch']} | CUDA {gpu['cuda']} | {library}")
    report: dict[str, Any] = {"gpu": gpu, "seed": seed, "ref_chunk": ref_chunk}
    failures: list[str] = []
    started = time.perf_counter()
    sections = Sections()
    block_result = model_result = None
    try:
        if run_accuracy:
            ref_chunks = accuracy.REF_CHUNKS if ref_chunk in accuracy.REF_CHUNKS else (*accuracy.REF_CHUNKS, ref_chunk)
            report["accuracy"] = []
            for path, path_kernels in forced.items():
                results, missed = sections.run(
                    f"Accuracy (kernels vs PyTorch reference block), relevance path {path}",
                    functools.partial(accuracy.accuracy_report, path_kernels, seed, ref_chunks, relevance=path))
                failures += missed
                report["accuracy"] += [r.to_dict() for r in results]
        if run_memcheck:
            def check_memory() -> memcheck.MemcheckResult:
                result = memcheck.run_memcheck(library, memcheck_timeout)
                click.echo(result.line())
                for line in result.detail if result.failed else []:
                    click.echo(f"    {line}")
                return result

            checked = sections.run("compute-sanitizer memcheck (small odd shapes)", check_memory)
            if checked.failed:
                failures.append(checked.line())
            report["memcheck"] = checked.to_dict()
        if sizes:
            def run_block() -> block.BlockBenchmark:
                patch_paths = {path: opened for path, opened in forced.items() if path != "gram"}  # gram = auto
                measures = block.measures_on_gpu(kernels, cell_seconds, seed, ref_chunk, patch_paths)
                result = block.benchmark_block(
                    sizes, measures, repeats, max_seconds, largest, gpu["memory_mib"],
                    auto_path=lambda side: kernels.relevance_path(block.square_shapes(side), np.float16))
                click.echo(result.table())
                click.echo("Peak = torch.cuda.max_memory_allocated with inputs, outputs and (kernels) workspace; "
                           "batch 1; TTSR channels 256/256/128/64; PyTorch FP32 with TF32 off.")
                for note in result.notes:
                    click.echo(f"- {note}")
                return result

            block_result = sections.run("Block benchmark (batch 1, Ref = LR)", run_block)
            failures += block_result.failures()
            report["block"] = block_result.to_dict()
        if profile_size:
            def run_profile() -> kernel_profile.BlockProfile:
                result = kernel_profile.profile_block(kernels, profile_size, PRECISIONS[profile_precision], seed,
                                                      ref_chunk, gpu["sm_count"])
                click.echo(result.tables())
                return result

            report["profile"] = sections.run(f"Per-kernel breakdown (LR = Ref {profile_size}, "
                                             f"{profile_precision.upper()}, torch.profiler)", run_profile).to_dict()
        if model_sizes:
            def run_model() -> whole_model.WholeModelBenchmark:
                result = whole_model.benchmark_model(build_model(seed=seed), kernels, model_sizes, repeats,
                                                     cell_seconds, seed, ref_chunk=ref_chunk)
                click.echo(result.table())
                click.echo()
                click.echo(result.accuracy_table())
                click.echo(f"Seeded random TTSR (seed {seed}), smooth random images; graph = CUDA-graph replay; "
                           f"bar: SR PSNR >= {whole_model.MIN_PSNR_DB:g} dB with the kernels.\n")
                click.echo("The kernels on the model's own LTE features (FP32 model), with the block's bars:\n")
                click.echo(accuracy.accuracy_table(result.block_accuracy))
                return result

            model_result = sections.run("Whole model (PyTorch with the kernels vs the PyTorch block, batch 1)",
                                        run_model)
            failures += model_result.failures()
            report["whole_model"] = model_result.to_dict()
        evaluated = targets.evaluate(block_result, model_result)
        if evaluated:
            click.echo("\n## Issue #9 targets (informational)\n")
            click.echo(targets.targets_table(evaluated))
            report["targets"] = [t.to_dict() for t in evaluated]
    except native.NativeOpError as exc:
        failures.append(f"kernels failed: {exc}")
    except BaseException as exc:
        failures.append(f"gpu_check stopped by {type(exc).__name__}: {first_line(exc)}")
        raise
    finally:
        for opened in (kernels, *forced.values()):
            opened.close()
        report["seconds"] = {**sections.seconds, "total": round(time.perf_counter() - started, 1)}
        click.echo(f"\nChecks took {report['seconds']['total']:.1f} s (after the build)")
        report["failures"] = failures
        report["passed"] = not failures
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(json_path, report)
            click.echo(f"\nJSON report: {json_path}")
    if failures:
        click.echo(f"\nFAILED: {len(failures)} bar(s) missed:")
        for line in failures:
            click.echo(f"- {line}")
        raise click.ClickException(f"{len(failures)} check(s) missed their bar (listed above)")
    click.echo("\nPASSED: every bar met")


if __name__ == "__main__":
    main()
