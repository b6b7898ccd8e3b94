"""``export`` (PyTorch -> ONNX, rewrite, FP16) and ``fp16-estimate`` (FP16 accuracy on the CPU)."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from ttsr.atomic import make_folders
from ttsr.cli.common import load_model, size_option

if TYPE_CHECKING:
    from ttsr.data.prepare import ModelInputs
    from ttsr.model.ttsr import TTSR
    from ttsr.provenance import Source

_REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_LR = _REPO_ROOT / "assets" / "pairs" / "lr" / "demo.png"
DEMO_REF = _REPO_ROOT / "assets" / "pairs" / "ref" / "demo.png"

EXPORT_EPILOG = """\b
Examples:
  # the graph TensorRT builds from: rewritten, FP16, float32 I/O
  ttsr export out/ttsr.fp16.onnx --checkpoint ttsr-rec.pth --rewrite --fp16
  # the plain export (runs in ONNX Runtime, not in TensorRT: Col2Im)
  ttsr export out/ttsr.onnx --checkpoint ttsr-rec.pth
  # no checkpoint: seeded random weights, for testing the pipeline
  ttsr export out/ttsr.rewritten.onnx --seed 0 --rewrite --keep-intermediates

\b
The graph takes any batch, LR size and Ref size (Ref sides multiples of 4);
--lr-size/--ref-size/--batch only set the example traced by the exporter.
"""

FP16_EPILOG = """\b
Examples:
  ttsr fp16-estimate --checkpoint ttsr-rec.pth
  ttsr fp16-estimate --onnx out/ttsr.fp16.onnx --checkpoint ttsr-rec.pth --min-psnr 40

\b
How: the FP16 graph runs in ONNX Runtime on the CPU.  ONNX Runtime has no
float16 CPU kernels for Conv/Resize/..., so each op computes in float32 on
float16 values and its result is rounded to float16 (as FP16 GPU kernels with
FP32 accumulation do); TTSRSearchTransfer runs on the plugin's CPU twin in
float16.  The SR image is compared, as uint8, with the PyTorch FP32 reference of
the same weights (whole image, no border crop).
"""


def _model(checkpoint: Path | None, seed: int | None) -> tuple[TTSR, str]:
    if checkpoint is not None and seed is not None:
        raise click.UsageError("give --checkpoint or --seed, not both")
    return load_model(checkpoint, 0 if seed is None else seed)


def _make_folder(folder: Path) -> list[Path]:
    try:
        return make_folders(folder)
    except OSError as exc:
        raise click.UsageError(f"cannot create output folder {folder} ({exc.strerror or exc}); "
                               f"choose another OUTPUT path") from None


@click.command("export", epilog=EXPORT_EPILOG)
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="mmediting/mmagic TTSR checkpoint (.pth).")
@click.option("--seed", type=int, help="Without --checkpoint: random weights from this seed [default: 0].")
@click.option("--rewrite", is_flag=True,
              help="Replace the search-transfer block by one TTSRSearchTransfer node (for TensorRT).")
@click.option("--fp16", is_flag=True, help="Write the FP16 variant of the rewritten graph (implies --rewrite).")
@click.option("--io-dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="With --fp16: dtype of the graph inputs and output (float32 adds Casts at the boundary).")
@click.option("--lr-size", default="8x12", show_default=True, callback=size_option,
              help="LR size HxW of the example traced by the exporter (the graph takes any size).")
@click.option("--ref-size", default="36x28", show_default=True, callback=size_option,
              help="Ref size HxW of the example (multiples of 4).")
@click.option("--batch", type=click.IntRange(min=2), default=2, show_default=True,
              help="Batch of the example (the graph takes any batch).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--keep-intermediates", is_flag=True,
              help="Also keep the plain export (<stem>.plain.onnx) and, with --fp16, the FP32 "
                   "rewritten graph (<stem>.fp32.onnx) next to OUTPUT.")
def export_command(output: Path, checkpoint: Path | None, seed: int | None, rewrite: bool, fp16: bool,
                   io_dtype: str, lr_size: tuple[int, int], ref_size: tuple[int, int], batch: int,
                   opset: int, keep_intermediates: bool) -> None:
    """Export TTSR to ONNX (dynamic batch, LR and Ref sizes), optionally rewritten and FP16."""
    from ttsr.export import ExportError, check_example_size, example_inputs
    from ttsr.pipeline import GRAPH_ERRORS, Step, make_graph
    from ttsr.provenance import Source

    if io_dtype != "float32" and not fp16:
        raise click.UsageError("--io-dtype float16 needs --fp16")
    try:
        check_example_size(lr_size, ref_size, batch)
    except ExportError as exc:
        raise click.UsageError(f"--lr-size/--ref-size/--batch: {exc}") from None
    rewrite = rewrite or fp16
    model, described = _model(checkpoint, seed)
    click.echo(described)
    created = _make_folder(output.parent)
    messages: dict[str, Callable[[Step], str]] = {
        "export": lambda step: (f"Exported {step.path} in {step.seconds:.1f} s "
                                f"(opset {opset}; dynamic batch, LR and Ref sizes)"),
        "rewrite": lambda step: f"Rewrote into {step.path} in {step.seconds:.2f} s: {step.summary}",
        "fp16": lambda step: f"FP16 graph {step.path} ({io_dtype} I/O) in {step.seconds:.2f} s",
    }
    with tempfile.TemporaryDirectory(prefix="ttsr-export-") as workdir:
        side = output.parent if keep_intermediates else Path(workdir)
        paths = {"plain": output if not rewrite else side / f"{output.stem}.plain.onnx",
                 "rewritten": output if not fp16 else side / f"{output.stem}.fp32.onnx",
                 "fp16": output}
        existing = {path for path in paths.values() if path.exists()}
        try:
            make_graph(model, "fp16" if fp16 else "rewritten" if rewrite else "plain", workdir, paths=paths,
                       io_dtype=io_dtype, opset=opset, example=example_inputs(lr_size, ref_size, batch),
                       weights=Source.of(checkpoint, 0 if seed is None else seed),
                       on_step=lambda step: click.echo(messages[step.name](step)))
        except GRAPH_ERRORS as exc:
            for path in set(paths.values()) - existing:
                path.unlink(missing_ok=True)  # a step that failed after an earlier one wrote its graph
            for folder in reversed(created):
                folder.rmdir()
            raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {output}")


@dataclass(frozen=True)
class Fp16Accuracy:
    """FP16 output against the FP32 reference: uint8 image PSNR/SSIM and float max abs difference."""

    psnr: float
    ssim: float
    max_abs: float


def fp16_accuracy(model: TTSR, fp16_onnx: str | Path, inputs: ModelInputs,
                  threads: int | None = None) -> Fp16Accuracy:
    """Run the FP16 graph in ONNX Runtime (see ``ttsr.backends.ort``) and score it against ``model``."""
    import torch

    from ttsr.backends.ort import OrtBackend
    from ttsr.data import to_image
    from ttsr.metrics import psnr, ssim

    with torch.inference_mode():
        reference = model(*inputs.as_torch()).numpy()
    estimate = OrtBackend(fp16_onnx, threads=threads).run(inputs)
    ref_image, est_image = to_image(reference), to_image(estimate)
    return Fp16Accuracy(psnr(est_image, ref_image, crop_border=0),
                        ssim(est_image, ref_image, crop_border=0),
                        float(np.abs(estimate - reference).max()))


def _check_graph_source(onnx_path: Path, source: Source) -> None:
    """Refuse a graph of other weights than the reference's (the estimate would compare two models)."""
    from ttsr.onnx_io import OnnxInfoError, inspect_onnx
    from ttsr.provenance import SourceMismatch, check_source

    try:
        warning = check_source(inspect_onnx(onnx_path).source, source, f"ONNX graph {onnx_path}")
    except (OnnxInfoError, SourceMismatch) as exc:
        raise click.ClickException(str(exc)) from None
    if warning is not None:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@click.command("fp16-estimate", epilog=FP16_EPILOG)
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="mmediting/mmagic TTSR checkpoint (.pth): the FP32 reference and the weights.")
@click.option("--seed", type=int, help="Without --checkpoint: random weights from this seed [default: 0].")
@click.option("--onnx", "onnx_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Graph of the same weights: FP16, rewritten FP32 or plain (converted here). "
                   "Default: export the model now.")
@click.option("--lr", "lr_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="LR image [default: the bundled demo pair].")
@click.option("--ref", "ref_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ref image [default: the bundled demo pair].")
@click.option("--threads", type=click.IntRange(min=1), help="ONNX Runtime threads.")
@click.option("--min-psnr", type=float, help="Exit with status 1 if the PSNR is below this (dB).")
def fp16_estimate_command(checkpoint: Path | None, seed: int | None, onnx_path: Path | None,
                          lr_path: Path | None, ref_path: Path | None, threads: int | None,
                          min_psnr: float | None) -> None:
    """Estimate on the CPU how close the FP16 graph's output is to FP32 (PSNR/SSIM)."""
    from ttsr.data import ImageError, load_image, prepare_pair
    from ttsr.pipeline import GRAPH_ERRORS, make_graph
    from ttsr.provenance import Source

    if (lr_path is None) != (ref_path is None):
        raise click.UsageError("give both --lr and --ref, or neither for the bundled demo pair")
    if lr_path is None or ref_path is None:
        lr_path, ref_path = DEMO_LR, DEMO_REF
        if not lr_path.is_file():
            raise click.UsageError(f"bundled demo pair not found ({lr_path}); give --lr and --ref")
    try:
        inputs = prepare_pair(load_image(lr_path), load_image(ref_path))
    except (ImageError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    model, described = _model(checkpoint, seed)
    click.echo(described)
    click.echo(f"Pair: LR {lr_path} ({inputs.lr_size[0]}x{inputs.lr_size[1]}), "
               f"Ref {ref_path} ({inputs.ref_size[0]}x{inputs.ref_size[1]} after cropping to multiples of 4)")
    if onnx_path is not None:
        _check_graph_source(onnx_path, Source.of(checkpoint, 0 if seed is None else seed))
    with tempfile.TemporaryDirectory(prefix="ttsr-fp16-") as workdir:
        try:
            graph = make_graph(onnx_path if onnx_path is not None else model, "fp16", workdir)
            result = fp16_accuracy(model, graph, inputs, threads)
        except GRAPH_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
    click.echo("FP16 graph in ONNX Runtime (float16 tensors, float32 arithmetic per op; "
               "TTSRSearchTransfer on the CPU twin in float16)")
    click.echo(f"FP16 vs FP32 reference: PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.5f} "
               f"(uint8 image, no border crop); max |diff| {result.max_abs:.2e} (output in [-1, 1])")
    if min_psnr is not None and not (result.psnr >= min_psnr or math.isinf(result.psnr)):
        click.echo(f"FAIL: PSNR {result.psnr:.2f} dB is below --min-psnr {min_psnr:g}", err=True)
        raise SystemExit(1)
