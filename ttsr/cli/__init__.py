"""Command-line front ends: ``python -m ttsr.cli`` (or ``ttsr``) with one subcommand per pipeline step."""

from __future__ import annotations

import click

from ttsr.cli.build_engine import build_engine_command
from ttsr.cli.compare import compare_command
from ttsr.cli.evaluate import evaluate_command
from ttsr.cli.export import export_command, fp16_estimate_command
from ttsr.cli.infer import infer_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ttsr-trt")
def main() -> None:
    """TTSR reference-based super-resolution: export, TensorRT engine build, inference and accuracy gate.

    \b
    The pipeline, each step a subcommand (run one with --help for examples):
      export         PyTorch checkpoint -> ONNX, rewritten for the TensorRT plugin
      fp16-estimate  on-CPU estimate of the FP16 graph's accuracy
      build-engine   rewritten ONNX (or checkpoint) -> TensorRT engine + JSON sidecar
      infer          LR/Ref pairs -> SR images, latency and PSNR/SSIM vs the PyTorch reference
      evaluate       the PyTorch reference on CUFED5 with mmediting 0.x's protocol (published figures)
      compare        two infer reports: PSNR/SSIM and latency deltas, a gate on regressions
    """


main.add_command(export_command, "export")
main.add_command(fp16_estimate_command, "fp16-estimate")
main.add_command(build_engine_command, "build-engine")
main.add_command(infer_command, "infer")
main.add_command(evaluate_command, "evaluate")
main.add_command(compare_command, "compare")
