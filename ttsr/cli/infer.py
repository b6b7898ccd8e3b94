"""``infer``: super-resolve LR/Ref pairs on a backend, time it, and score it against the PyTorch reference."""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from ttsr import tool_version
from ttsr.atomic import make_folders, write_json_atomic
from ttsr.backends import names as backend_names
from ttsr.backends.profiles import ProfileError, format_size
from ttsr.cli.common import load_model

if TYPE_CHECKING:
    from ttsr.backends import Backend
    from ttsr.data import ModelInputs, Pair
    from ttsr.provenance import Source

EPILOG = """\b
Examples:
  # CPU: make the rewritten graph once, run it in ONNX Runtime, score it against the reference and HR
  python -m ttsr.cli export out/ttsr.rewritten.onnx --rewrite --checkpoint ttsr-rec.pth
  python infer.py --checkpoint ttsr-rec.pth --lr-dir assets/pairs/lr --ref-dir assets/pairs/ref \\
      --hr-dir assets/pairs/hr --onnx out/ttsr.rewritten.onnx --out-dir out/sr --json out/report.json
  # GPU: a TensorRT engine, batches of 4, CUDA graph replay, 20 timed passes
  python infer.py --pairs pairs.txt --engine ttsr.engine --checkpoint ttsr-rec.pth \\
      --batch 4 --warmup 5 --iterations 20 --cuda-graph
  # GPU without TensorRT: PyTorch with the search-transfer on the plugin's CUDA kernels, gated
  python infer.py --lr-dir lr --ref-dir ref --checkpoint ttsr-rec.pth --backend torch \\
      --torch-device cuda --search-transfer kernels --check --min-psnr 40
  # CI gate: exit 1 if any output is below 40 dB / 0.99 SSIM against PyTorch
  python infer.py --lr-dir lr --ref-dir ref --engine ttsr.engine --checkpoint ttsr-rec.pth \\
      --check --min-psnr 40 --min-ssim 0.99

\b
Inputs: --lr-dir and --ref-dir (images matched by file name) or --pairs, a text
file of 'lr ref [hr]' lines.  The Ref is cropped to multiples of 4.  The
reference is the PyTorch model of --checkpoint; without one, a seeded random
model (--seed) stands in, which is only good for testing the pipeline.
Backends: trt (TensorRT engine, GPU), ort (ONNX Runtime on the CPU, the
rewritten graph with the plugin's CPU twin), torch (the reference itself, or
with --search-transfer kernels its search-transfer on the plugin's CUDA kernels:
libttsr_st_cuda.so from build/ or $TTSR_PLUGIN_DIR).
Without --onnx, the ort backend exports and rewrites the reference model first.

\b
Report: latency per call (ms: mean, median, p90, p99, min, max) and throughput
(images/s) over the timed passes, with H2D / compute / D2H separated on trt;
PSNR/SSIM of every SR image against the PyTorch reference's output (and the
HR image, and the reference against HR), then their mean.  With --check the
exit status is 1 when any image falls below --min-psnr / --min-ssim.
"""

PROGRESS_MIN_IMAGES = 5


@dataclass
class Job:
    """One prepared pair."""

    name: str
    inputs: ModelInputs
    hr: np.ndarray | None
    paths: dict[str, str]


def _collect_pairs(lr_dir: Path | None, ref_dir: Path | None, hr_dir: Path | None,
                   pair_list: Path | None) -> list[Pair]:
    from ttsr.data import PairError, find_pairs, read_pair_list

    if pair_list is not None and (lr_dir or ref_dir or hr_dir):
        raise click.UsageError("give either --pairs or --lr-dir/--ref-dir[/--hr-dir], not both")
    try:
        if pair_list is not None:
            return read_pair_list(pair_list)
        if lr_dir is None or ref_dir is None:
            raise click.UsageError("give --lr-dir and --ref-dir (images matched by file name) or --pairs LIST")
        return find_pairs(lr_dir, ref_dir, hr_dir)
    except PairError as exc:
        raise click.ClickException(str(exc)) from None


def _prepare(pairs: list[Pair]) -> list[Job]:
    """Load and prepare every pair before anything runs, so bad inputs fail before any output exists."""
    from ttsr.data import ImageError, load_image, prepare_pair

    jobs = []
    for pair in pairs:
        try:
            lr, ref = load_image(pair.lr), load_image(pair.ref)
            inputs = prepare_pair(lr, ref)
            hr = load_image(pair.hr) if pair.hr is not None else None
        except ImageError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            raise click.ClickException(f"pair {pair.name}: {exc}") from None
        if hr is not None and hr.shape[:2] != (4 * lr.shape[0], 4 * lr.shape[1]):
            raise click.ClickException(
                f"HR {pair.hr} is {hr.shape[0]}x{hr.shape[1]} but the SR output of LR {pair.lr} will be "
                f"{4 * lr.shape[0]}x{4 * lr.shape[1]}; give the HR image the LR was reduced from")
        paths = {"lr": str(pair.lr), "ref": str(pair.ref)}
        if pair.hr is not None:
            paths["hr"] = str(pair.hr)
        jobs.append(Job(pair.name, inputs, hr, paths))
    return jobs


def _check_device(name: str) -> None:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise click.BadParameter(f"{name!r} is not a torch device (cpu, cuda, cuda:1 ...)",
                                 param_hint="--torch-device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available to PyTorch here; use cpu", param_hint="--torch-device")
    if device.type not in ("cpu", "cuda"):
        raise click.BadParameter(f"{name!r}: only cpu and cuda devices are supported",
                                 param_hint="--torch-device")


def _warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


# The command line's name of each backend option (``ttsr.backends.BACKENDS``).
FLAGS = {"engine": "--engine", "plugin": "--plugin", "cuda_graph": "--cuda-graph", "onnx": "--onnx",
         "threads": "--threads", "device": "--torch-device", "search_transfer": "--search-transfer"}


def _flags(options: Iterable[str]) -> str:
    return ", ".join(FLAGS[option] for option in options if option in FLAGS)


def _choose_backend(asked: str | None, given: dict[str, Any]) -> tuple[str, str]:
    """The backend and how it was chosen: "asked", "implied" (by --engine or --onnx) or "default"
    (see ``ttsr.backends.choose_backend``).  Options the backend does not take are usage errors, so
    that nothing on the command line is silently ignored."""
    from ttsr.backends import BackendError, choose_backend, foreign_options, spec

    try:
        kind, how = choose_backend(asked, given)
    except BackendError:
        raise click.UsageError(f"{_flags(sorted(given))} name different backends; choose one with "
                               f"--backend") from None
    foreign = foreign_options(kind, given)
    if foreign:
        chosen = {"asked": f"--backend {kind}", "implied": f"the {kind} backend (chosen by {_choice(kind)})",
                  "default": f"the default {kind} backend (no --backend given)"}[how]
        raise click.UsageError(f"{FLAGS[foreign[0]]} does not apply to {chosen}; it takes "
                               f"{_flags(spec(kind).options) or 'none of the backend options'}")
    return kind, how


def _choice(kind: str) -> str:
    from ttsr.backends import spec

    return _flags(spec(kind).required)


def _open_backend(kind: str, given: dict[str, Any], *, model: Any, torch_device: str, source: Source,
                  workdir: Path) -> Backend:
    """The backend to time, opened through the registry (close it, or enter it in an ExitStack).

    ``given``: the backend options of the command line that were given (engine, onnx, threads, ...);
    the model and the torch device go to the backends that take them.  A graph or engine made from
    other weights than ``source`` is refused.
    """
    from ttsr.backends import BackendError, open_backend, spec
    from ttsr.provenance import SourceMismatch, check_source

    takes = spec(kind).options
    options = dict(given)
    options.update((name, value) for name, value in (("model", model), ("device", torch_device)) if name in takes)
    if "onnx" in takes and options.get("onnx") is None:
        from ttsr.pipeline import make_graph

        click.echo("No --onnx: exporting the reference model and rewriting its search-transfer "
                   f"block for the {kind} backend ...")
        options["onnx"] = make_graph(model, "rewritten", workdir, weights=source)
    missing = [name for name in spec(kind).required if options.get(name) is None]
    if missing:
        raise click.UsageError(f"--backend {kind} needs {FLAGS[missing[0]]}")
    try:
        runner = open_backend(kind, **options)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from None
    if runner.artefact is not None:
        try:
            warning = check_source(runner.source, source, runner.artefact)
        except SourceMismatch as exc:
            runner.close()
            raise click.ClickException(str(exc)) from None
        if warning is not None:
            _warn(warning)
    return runner


def _reference_outputs(model: Any, jobs: list[Job], batches: list[Any], backend_outputs: list[np.ndarray],
                       kind: str, device: str, search_transfer: str | None) -> list[np.ndarray]:
    if kind == "torch" and search_transfer != "kernels":  # the backend ran the reference itself
        return backend_outputs
    from ttsr.backends.torch import TorchBackend
    from ttsr.runtime.timing import run_batches

    outputs, _ = run_batches(TorchBackend(model, device=device), [job.inputs for job in jobs], batches,
                             warmup=0)
    return outputs


def _score(jobs: list[Job], outputs: list[np.ndarray], references: list[np.ndarray], convention: str,
           crop_border: int) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    from ttsr.data import to_image
    from ttsr.metrics import score

    rows, images = [], []
    for job, sr, ref_sr in zip(jobs, outputs, references):
        image, ref_image = to_image(sr), to_image(ref_sr)
        try:
            row: dict[str, Any] = {
                "name": job.name, **job.paths,
                "lr_size": list(job.inputs.lr_size), "ref_size": list(job.inputs.ref_size),
                "sr_size": list(image.shape[:2]),
                "vs_reference": dict(zip(("psnr", "ssim"), score(image, ref_image, convention, crop_border))),
            }
            if job.hr is not None:
                row["vs_hr"] = dict(zip(("psnr", "ssim"), score(image, job.hr, convention, crop_border)))
                row["reference_vs_hr"] = dict(zip(("psnr", "ssim"),
                                                  score(ref_image, job.hr, convention, crop_border)))
        except ValueError as exc:
            raise click.ClickException(f"pair {job.name}: {exc}") from None
        rows.append(row)
        images.append(image)
    return rows, images


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    result = {}
    for key in ("vs_reference", "vs_hr", "reference_vs_hr"):
        scored = [row[key] for row in rows if key in row]
        if scored:
            result[key] = {"psnr": _mean([s["psnr"] for s in scored]),
                           "ssim": _mean([s["ssim"] for s in scored])}
    return result


def _pair_text(scores: dict[str, float] | None) -> str:
    if scores is None:
        return f"{'-':>18}"
    psnr = "inf" if math.isinf(scores["psnr"]) else f"{scores['psnr']:.2f}"
    return f"{psnr:>9} {scores['ssim']:>8.4f}"


def accuracy_table(rows: list[dict[str, Any]], aggregate: dict[str, dict[str, float]]) -> str:
    has_hr = any("vs_hr" in row for row in rows)
    width = max([len("image"), len("mean")] + [len(row["name"]) for row in rows])
    columns = ["vs reference"] + (["vs HR", "reference vs HR"] if has_hr else [])
    header = f"{'image':<{width}} {'SR size':>9}  " + "  ".join(f"{c:^18}" for c in columns)
    units = f"{'':<{width}} {'':>9}  " + "  ".join(f"{'PSNR dB':>9} {'SSIM':>8}" for _ in columns)
    keys = ["vs_reference"] + (["vs_hr", "reference_vs_hr"] if has_hr else [])
    lines = [header, units, "-" * len(units)]
    for row in rows:
        size = format_size((row["sr_size"][0], row["sr_size"][1]))
        lines.append(f"{row['name']:<{width}} {size:>9}  " + "  ".join(_pair_text(row.get(k)) for k in keys))
    lines.append("-" * len(units))
    lines.append(f"{'mean':<{width}} {'':>9}  " + "  ".join(_pair_text(aggregate.get(k)) for k in keys))
    return "\n".join(lines)


def _gate(rows: list[dict[str, Any]], min_psnr: float, min_ssim: float | None) -> list[dict[str, Any]]:
    return [row for row in rows
            if row["vs_reference"]["psnr"] < min_psnr
            or (min_ssim is not None and row["vs_reference"]["ssim"] < min_ssim)]


def _gate_table(failing: list[dict[str, Any]], min_psnr: float, min_ssim: float | None) -> str:
    width = max([len("image")] + [len(row["name"]) for row in failing])
    lines = [f"{'image':<{width}} {'PSNR dB':>9} {'SSIM':>8}  reason", "-" * (width + 40)]
    for row in failing:
        psnr, ssim = row["vs_reference"]["psnr"], row["vs_reference"]["ssim"]
        reasons = []
        if psnr < min_psnr:
            reasons.append(f"PSNR < {min_psnr:g}")
        if min_ssim is not None and ssim < min_ssim:
            reasons.append(f"SSIM < {min_ssim:g}")
        lines.append(f"{row['name']:<{width}} {psnr:>9.2f} {ssim:>8.4f}  {', '.join(reasons)}")
    return "\n".join(lines)


class _Outputs:
    """Files and folders this run creates; removed again if the run fails before it ends."""

    def __init__(self) -> None:
        self.created: list[Path] = []

    def folder(self, path: Path) -> None:
        self.created.extend(make_folders(path))

    def image(self, path: Path, image: np.ndarray) -> None:
        from ttsr.data import save_image

        existed = path.exists()
        save_image(path, image)
        if not existed:
            self.created.append(path)

    def json(self, path: Path, data: dict[str, Any]) -> None:
        existed = path.exists()
        write_json_atomic(path, data)
        if not existed:
            self.created.append(path)

    def remove(self) -> None:
        for path in reversed(self.created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _write_outputs(out_dir: Path | None, json_path: Path | None, jobs: list[Job], images: list[np.ndarray],
                   report: dict[str, Any]) -> None:
    from ttsr.data import ImageError

    outputs = _Outputs()
    try:
        if out_dir is not None:
            outputs.folder(out_dir)
            for job, image, row in zip(jobs, images, report["images"]):
                path = out_dir / f"{job.name}.png"
                outputs.image(path, image)
                row["output"] = str(path)
        if json_path is not None:
            outputs.folder(json_path.parent)
            outputs.json(json_path, report)
    except (OSError, ImageError) as exc:
        outputs.remove()
        raise click.ClickException(f"cannot write outputs: {exc}") from None
    except BaseException:
        outputs.remove()
        raise


@click.command("infer", epilog=EPILOG, context_settings={"max_content_width": 100})
@click.option("--lr-dir", type=click.Path(path_type=Path), help="Folder of LR images.")
@click.option("--ref-dir", type=click.Path(path_type=Path), help="Folder of Ref images, same file names as the LR.")
@click.option("--hr-dir", type=click.Path(path_type=Path),
              help="Folder of HR ground truth (4x the LR), same file names; adds scores vs HR.")
@click.option("--pairs", "pair_list", type=click.Path(path_type=Path),
              help="Text file of 'lr ref [hr]' lines, instead of the folders.")
@click.option("--backend", type=click.Choice(backend_names()),
              help="trt (TensorRT engine), ort (CPU, rewritten graph) or torch (the reference). "
                   "Default: trt when --engine is given (without a GPU the run fails: no silent fallback), "
                   "ort when --onnx or neither is given. Options of another backend are errors.")
@click.option("--engine", type=click.Path(path_type=Path), help="TensorRT engine from build_engine.py (trt).")
@click.option("--onnx", "onnx_path", type=click.Path(path_type=Path),
              help="Rewritten ONNX graph for the ort backend (default: export the reference model).")
@click.option("--plugin", type=click.Path(path_type=Path),
              help="TensorRT plugin library (trt; default: the one recorded in the engine sidecar).")
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="mmediting/mmagic TTSR checkpoint (.pth): the PyTorch reference.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random stand-in model used when no --checkpoint is given.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pairs per call; pairs of equal LR and Ref size are batched (trt: within the engine profile).")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed calls per input shape before timing.")
@click.option("--iterations", type=click.IntRange(min=1), default=1, show_default=True,
              help="Timed passes over all pairs.")
@click.option("--cuda-graph", is_flag=True,
              help="trt: capture the enqueue into a CUDA graph and replay it while the input shape stays "
                   "the same (a new shape captures again).")
@click.option("--threads", type=click.IntRange(min=1), help="ort: intra-op threads (default: ONNX Runtime's).")
@click.option("--torch-device", default="cpu", show_default=True,
              help="Device of the PyTorch model (the reference, and the torch backend): cpu, cuda, cuda:1 ...")
@click.option("--search-transfer", type=click.Choice(["torch", "kernels"]),
              help="torch backend: run the search-transfer block in PyTorch (default) or on the plugin's CUDA "
                   "kernels (kernels, with --torch-device cuda: the whole model on the GPU without TensorRT); "
                   "the reference stays the PyTorch model.")
@click.option("--out-dir", type=click.Path(path_type=Path), help="Write the SR images here as <name>.png.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the full report as JSON here.")
@click.option("--metrics-convention", type=click.Choice(["rgb", "y", "mmediting-0.x"]), default="rgb",
              show_default=True,
              help="rgb: PSNR/SSIM over RGB; y: on the Y channel; mmediting-0.x: RGB PSNR with the "
                   "blue-only SSIM behind the published figures.")
@click.option("--crop-border", type=click.IntRange(min=0), default=4, show_default=True,
              help="Pixels cropped from each border before scoring (mmediting: the scale, 4).")
@click.option("--check", is_flag=True,
              help="Regression gate: exit 1 with a table of the images below --min-psnr/--min-ssim "
                   "against the PyTorch reference.")
@click.option("--min-psnr", type=float, help="Gate: lowest PSNR (dB) against the reference.")
@click.option("--min-ssim", type=float, help="Gate: lowest SSIM against the reference.")
def infer_command(lr_dir: Path | None, ref_dir: Path | None, hr_dir: Path | None, pair_list: Path | None,
                  backend: str | None, engine: Path | None, onnx_path: Path | None, plugin: Path | None,
                  checkpoint: Path | None, seed: int, batch: int, warmup: int, iterations: int,
                  cuda_graph: bool, threads: int | None, torch_device: str, search_transfer: str | None,
                  out_dir: Path | None, json_path: Path | None,
                  metrics_convention: str, crop_border: int, check: bool, min_psnr: float | None,
                  min_ssim: float | None) -> None:
    """Super-resolve LR/Ref pairs, report latency and PSNR/SSIM against the PyTorch reference (and HR)."""
    from ttsr.backends import failure_message
    from ttsr.provenance import Source
    from ttsr.runtime.batching import plan_batches
    from ttsr.runtime.timing import run_batches

    if check and min_psnr is None:
        raise click.UsageError("--check needs --min-psnr DB (and optionally --min-ssim S)")
    if not check and (min_psnr is not None or min_ssim is not None):
        raise click.UsageError("--min-psnr/--min-ssim only apply with --check")
    options = {"engine": engine, "plugin": plugin, "cuda_graph": cuda_graph or None, "onnx": onnx_path,
               "threads": threads, "search_transfer": search_transfer}
    given = {name: value for name, value in options.items() if value is not None}
    kind, how = _choose_backend(backend, given)
    _check_device(torch_device)
    pairs = _collect_pairs(lr_dir, ref_dir, hr_dir, pair_list)
    jobs = _prepare(pairs)
    model, model_note = load_model(checkpoint, seed)
    click.echo(model_note)
    note = {"asked": "", "implied": f" (chosen by {_choice(kind)})",
            "default": " (the default: no --backend, --engine or --onnx given)"}[how]
    where = " (search-transfer on the plugin's CUDA kernels)" if search_transfer == "kernels" else ""
    click.echo(f"Backend: {kind}{note}{where}; {len(jobs)} pair(s); batch {batch}; warm-up {warmup}; "
               f"{iterations} timed pass(es).")

    with tempfile.TemporaryDirectory(prefix="ttsr-infer-") as workdir, ExitStack() as cleanup:
        runner = cleanup.enter_context(_open_backend(
            kind, given, model=model, torch_device=torch_device, source=Source.of(checkpoint, seed),
            workdir=Path(workdir)))
        sizes = [(job.inputs.lr_size, job.inputs.ref_size) for job in jobs]
        try:
            batches = plan_batches(sizes, batch, runner.profiles, pad_to_full=(kind == "trt"))
        except ProfileError as exc:
            raise click.ClickException(str(exc)) from None
        from tqdm import tqdm

        with tqdm(total=iterations * len(jobs), unit="img", desc=f"infer ({kind})", file=sys.stderr,
                  disable=len(jobs) < PROGRESS_MIN_IMAGES, leave=False) as bar:
            try:
                outputs, latency = run_batches(runner, [job.inputs for job in jobs], batches, warmup,
                                               iterations, progress=bar.update)
            except Exception as exc:  # the backend's known errors, and TensorRT's, pycuda's, ORT's or torch's own
                raise click.ClickException(failure_message(kind, exc)) from None
        references = _reference_outputs(model, jobs, batches, outputs, kind, torch_device, search_transfer)

    rows, images = _score(jobs, outputs, references, metrics_convention, crop_border)
    aggregate = _aggregate(rows)
    gate_psnr = min_psnr if check else None  # --check without --min-psnr was refused above
    failing = _gate(rows, gate_psnr, min_ssim) if gate_psnr is not None else []
    report: dict[str, Any] = {
        "tool_version": tool_version(), "backend": kind, "backend_choice": how, "model": model_note,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "seed": None if checkpoint else seed, "engine": str(engine) if engine else None,
        "onnx": str(onnx_path) if onnx_path else None, "batch": batch, "warmup": warmup,
        "iterations": iterations, "cuda_graph": cuda_graph, "torch_device": torch_device,
        "search_transfer": search_transfer or ("torch" if kind == "torch" else None),
        "metrics": {"convention": metrics_convention, "crop_border": crop_border},
        "latency": latency.to_dict(), "images": rows, "aggregate": aggregate,
        "gate": ({"min_psnr": min_psnr, "min_ssim": min_ssim, "passed": not failing,
                  "failing": [row["name"] for row in failing]} if check else None),
    }
    _write_outputs(out_dir, json_path, jobs, images, report)

    click.echo(f"\n=== Latency ({kind}, batch {batch}, {warmup} warm-up call(s) per shape, "
               f"{iterations} timed pass(es)) ===")
    click.echo(latency.table())
    click.echo(f"\n=== Accuracy ({metrics_convention}, crop border {crop_border}; "
               f"reference = PyTorch {'checkpoint' if checkpoint else f'seeded model {seed}'}) ===")
    click.echo(accuracy_table(rows, aggregate))
    if out_dir is not None:
        click.echo(f"\nSR images: {out_dir}/")
    if json_path is not None:
        click.echo(f"JSON report: {json_path}")
    if gate_psnr is not None:
        limits = f"PSNR >= {gate_psnr:g} dB" + (f", SSIM >= {min_ssim:g}" if min_ssim is not None else "")
        if failing:
            click.echo(f"\n[FAILED] {len(failing)} of {len(rows)} image(s) below the gate ({limits} "
                       f"vs the PyTorch reference):")
            click.echo(_gate_table(failing, gate_psnr, min_ssim))
            click.get_current_context().exit(1)
        click.echo(f"\n[PASSED] all {len(rows)} image(s) meet the gate ({limits} vs the PyTorch reference).")
