"""``build-engine``: a TensorRT engine (and its JSON sidecar) from a checkpoint or the rewritten ONNX graph."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ttsr import contract
from ttsr.backends import known_errors
from ttsr.backends.profiles import ProfileError, Size, make_profile
from ttsr.backends.trt.builder import BuildOptions, build_engine
from ttsr.backends.trt.checks import BuildError, check_hardware_compat, require_gpu, require_tensorrt
from ttsr.backends.trt.plugin import require_plugin_file
from ttsr.backends.trt.sidecar import HARDWARE_COMPAT_LEVELS, sidecar_path
from ttsr.cli.common import load_model, size_option
from ttsr.errors import first_line
from ttsr.onnx_io import inspect_onnx
from ttsr.provenance import Source

EPILOG = """\b
Examples:
  # FP16 engine for LR images up to 64x64 and Refs up to 256x256, batch 1..4
  python build_engine.py --checkpoint ttsr-rec.pth --output ttsr.engine \\
      --min-lr 16 --opt-lr 40 --max-lr 64 --min-ref 64 --opt-ref 160 --max-ref 256 \\
      --max-batch 4 --opt-batch 2 --timing-cache ttsr.cache
  # FP32 engine from a rewritten graph, one fixed size, portable to Ampere and newer GPUs
  python build_engine.py --onnx ttsr.rewritten.onnx --precision fp32 --opt-lr 40x40 \\
      --opt-ref 160x160 --hardware-compat ampere_plus --output ttsr-fp32.engine

\b
What it does: exports the checkpoint to ONNX (or takes --onnx), rewrites the
search-transfer block into one TTSRSearchTransfer plugin node, makes the FP16
graph for --precision fp16, and builds the engine strongly typed, so the graph
decides every tensor's precision.  Sizes are HxW or N (square): LR sizes are
the LR image (the SR output is 4x), Ref sizes the Ref image after cropping to
multiples of 4.  A missing --min/--max takes --opt.  The engine runs only
with the TensorRT version and (unless --hardware-compat) the GPU it was built
with; <output>.json records both and infer.py checks them before loading.
Needs TensorRT for the CUDA major the plugin library was built with
(pip install tensorrt-cu13 pycuda, or pip install -e .[trt]),
an NVIDIA GPU and the plugin library (bash scripts/setup.sh builds it where
TensorRT's headers are found).
"""


def _default_plugin() -> Path:
    from ttsr.plugin.native import default_plugin_library

    return default_plugin_library()


def _graph(checkpoint: Path | None, onnx_path: Path | None, seed: int | None, precision: str,
           weak_fp16: bool, workdir: Path) -> tuple[Path, Source]:
    """The rewritten graph to build from, in the precision the build needs, and the weights it was made
    from (recorded in the engine's sidecar, so that infer can check them)."""
    from ttsr.pipeline import GRAPH_ERRORS, make_graph

    target = "rewritten" if weak_fp16 or precision == "fp32" else "fp16"
    try:
        if onnx_path is not None:
            return make_graph(onnx_path, target, workdir), inspect_onnx(onnx_path).source
        model, note = load_model(checkpoint, seed or 0)
        click.echo(note)
        source = Source.of(checkpoint, seed or 0)
        click.echo("Exporting to ONNX and rewriting the search-transfer block ...")
        return make_graph(model, target, workdir, weights=source), source
    except GRAPH_ERRORS as exc:
        raise click.ClickException(first_line(exc)) from None


@click.command("build-engine", epilog=EPILOG, context_settings={"max_content_width": 100})
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="mmediting/mmagic TTSR checkpoint (.pth) to export and build.")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path),
              help="ONNX graph to build instead: the rewritten one (or a plain export, rewritten here).")
@click.option("--seed", type=int,
              help="Build a seeded random model instead of a checkpoint (pipeline tests and demos).")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True,
              help="Engine file to write; the sidecar goes to <output>.json.")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True,
              help="fp16: strongly typed build of the FP16 graph; fp32: of the FP32 graph.")
@click.option("--weak-fp16", is_flag=True,
              help="TensorRT 10 only: build the FP32 graph weakly typed with the FP16 builder flag "
                   "(removed in TensorRT 11; strong typing is the default for good reasons).")
@click.option("--min-lr", callback=size_option, metavar="HxW", help="Smallest LR size, HxW.")
@click.option("--opt-lr", callback=size_option, metavar="HxW", help="LR size TensorRT tunes for, HxW.")
@click.option("--max-lr", callback=size_option, metavar="HxW", help="Largest LR size, HxW.")
@click.option("--min-ref", callback=size_option, metavar="HxW", help="Smallest Ref size (multiples of 4), HxW.")
@click.option("--opt-ref", callback=size_option, metavar="HxW", help="Ref size TensorRT tunes for, HxW.")
@click.option("--max-ref", callback=size_option, metavar="HxW", help="Largest Ref size, HxW.")
@click.option("--min-batch", type=click.IntRange(min=1), help="Smallest batch (default: 1).")
@click.option("--opt-batch", type=click.IntRange(min=1), help="Batch TensorRT tunes for (default: --max-batch).")
@click.option("--max-batch", type=click.IntRange(min=1), help="Largest batch (default: --opt-batch, or 1).")
@click.option("--workspace", type=click.IntRange(min=1), metavar="MIB",
              help="Builder workspace limit in MiB (default: TensorRT's, the GPU's memory).")
@click.option("--workspace-budget", type=click.IntRange(0, contract.MAX_WORKSPACE_BUDGET_MIB), default=0,
              metavar="MIB", help="Device memory one tile's Gram block of the plugin's kernels may take, in MiB "
                                  "(0: the kernels' default, 1024); larger tiles, larger GEMMs. Recorded in the sidecar.")
@click.option("--timing-cache", type=click.Path(path_type=Path),
              help="Timing cache file: read if it exists, updated after the build (speeds up rebuilds).")
@click.option("--opt-level", type=click.IntRange(0, 5),
              help="Builder optimisation level 0..5 (TensorRT default 3; higher tries more kernels).")
@click.option("--hardware-compat", type=click.Choice(HARDWARE_COMPAT_LEVELS), default="none",
              show_default=True,
              help="Run on other GPUs than this one: ampere_plus (sm >= 8.0) or same_compute_capability.")
@click.option("--plugin", type=click.Path(path_type=Path),
              help="TTSRSearchTransfer plugin library (default: build/libttsr_trt_plugin.so).")
def build_engine_command(checkpoint: Path | None, onnx_path: Path | None, seed: int | None, output: Path,
                         precision: str, weak_fp16: bool, min_lr: Size | None, opt_lr: Size | None,
                         max_lr: Size | None, min_ref: Size | None, opt_ref: Size | None,
                         max_ref: Size | None, min_batch: int | None, opt_batch: int | None,
                         max_batch: int | None, workspace: int | None, workspace_budget: int,
                         timing_cache: Path | None,
                         opt_level: int | None, hardware_compat: str, plugin: Path | None) -> None:
    """Build a TensorRT engine of TTSR for the GPU at hand (or a hardware-compatibility level)."""
    sources = [s for s in (checkpoint, onnx_path) if s is not None]
    if len(sources) > 1 or (onnx_path is not None and seed is not None):
        raise click.UsageError("give one of --checkpoint, --onnx or --seed")
    if not sources and seed is None:
        raise click.UsageError("give --checkpoint PTH or --onnx REWRITTEN.onnx (or --seed N for a test model)")
    if weak_fp16 and precision != "fp16":
        raise click.UsageError("--weak-fp16 builds an FP16 engine; drop --precision fp32")
    try:
        profile = make_profile([min_lr, opt_lr, max_lr], [min_ref, opt_ref, max_ref],
                               [min_batch or 1, opt_batch, max_batch])
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    plugin_path = plugin if plugin is not None else _default_plugin()
    # Everything a GPU build needs is checked before the (slow) export.
    try:
        require_tensorrt()
        check_hardware_compat(hardware_compat, require_gpu())
        require_plugin_file(plugin_path)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None
    if not output.parent.is_dir():
        raise click.ClickException(f"output folder {output.parent} does not exist; create it first")

    with tempfile.TemporaryDirectory(prefix="ttsr-build-") as workdir:
        graph, source = _graph(checkpoint, onnx_path, seed, precision, weak_fp16, Path(workdir))
        options = BuildOptions(
            onnx_path=graph, output=output, profiles=[profile], plugin_library=plugin_path,
            precision=precision, workspace_mib=workspace, workspace_budget_mib=workspace_budget,
            timing_cache=timing_cache,
            optimization_level=opt_level, hardware_compatibility=hardware_compat, weak_fp16=weak_fp16,
            checkpoint_sha256=source.checkpoint_sha256, seed=source.seed,
            extra={"source": str(checkpoint or onnx_path or f"seed {seed}")})
        new_files = [p for p in (output, sidecar_path(output)) if not p.exists()]
        try:
            click.echo(f"Building a {precision} engine: {profile.describe()} ...")
            sidecar = build_engine(options)
        except known_errors("trt") as exc:
            for leftover in new_files:
                leftover.unlink(missing_ok=True)
            raise click.ClickException(str(exc)) from None
    click.echo(f"Engine: {output} (TensorRT {sidecar.tensorrt_version}, {sidecar.gpu_name}, "
               f"sm {sidecar.compute_capability}, {sidecar.precision}, hardware compatibility "
               f"{sidecar.hardware_compatibility})")
    click.echo(f"Sidecar: {sidecar_path(output)}")
    if sidecar.plugin_memory:
        click.echo(f"Plugin: {sidecar.plugin_memory[0].describe()}")
    else:
        click.echo("Plugin: workspace not computed (the CPU twin library libttsr_st_cpu.so is missing; "
                   "bash scripts/setup.sh builds it)")
    click.echo(f"Profile: {profile.describe()}")
