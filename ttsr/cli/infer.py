"""``infer``: super-resolve LR/Ref pairs on a backend, time it, and score it against the PyTorch reference."""

from __future__ import annotations

import functools
import sys
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
import numpy as np

from tqdm import tqdm

from ttsr import tool_version
from ttsr.backends import names as backend_names
from ttsr.backends.profiles import ProfileError
from ttsr.cli.common import load_model
from ttsr.report.accuracy import ImageResult, check_lr_size
from ttsr.report.gate import Limits
from ttsr.report.outputs import OutputError, Outputs, is_stdout

if TYPE_CHECKING:
    from ttsr.backends import Backend
    from ttsr.data import ModelInputs, Pair
    from ttsr.provenance import Source

EPILOG = """\b
Examples:
  # CPU: make the rewritten graph once, run it in ONNX Runtime, score it against the reference and HR,
  # and write a browsable report (open out/report/index.html)
  python -m ttsr.cli export out/ttsr.rewritten.onnx --rewrite --checkpoint ttsr-rec.pth
  python infer.py --checkpoint ttsr-rec.pth --lr-dir assets/pairs/lr --ref-dir assets/pairs/ref \\
      --hr-dir assets/pairs/hr --onnx out/ttsr.rewritten.onnx --out-dir out/sr --report out/report
  # GPU: a TensorRT engine, batches of 4, CUDA graph replay, 20 timed passes, JSON to stdout
  python infer.py --pairs pairs.txt --engine ttsr.engine --checkpoint ttsr-rec.pth \\
      --batch 4 --warmup 5 --iterations 20 --cuda-graph --json - > report.json
  # GPU without TensorRT: PyTorch with the search-transfer on the plugin's CUDA kernels, gated
  python infer.py --lr-dir lr --ref-dir ref --checkpoint ttsr-rec.pth --backend torch \\
      --torch-device cuda --search-transfer kernels --check --min-psnr 40
  # CI gate: exit 1 if any output is below 40 dB / 0.99 SSIM against PyTorch, or a shape's
  # p99 latency is above 25 ms (p99 needs >= 100 timed calls per shape)
  python infer.py --lr-dir lr --ref-dir ref --engine ttsr.engine --checkpoint ttsr-rec.pth \\
      --iterations 100 --check --min-psnr 40 --min-ssim 0.99 --max-p99-ms 25
  # then against the last release's report: ttsr compare release.json report.json --max-psnr-drop 0.5

\b
Inputs: --lr-dir and --ref-dir (images matched by file name) or --pairs, a text
file of 'lr ref [hr]' lines.  The Ref is cropped to multiples of 4.  The LR must
be large enough for its SR output to be scored (5x5 with --crop-border 4).  The
reference is the PyTorch model of --checkpoint; without one, a seeded random
model (--seed) stands in, which is only good for testing the pipeline.
Backends: trt (TensorRT engine, GPU), ort (ONNX Runtime on the CPU, the
rewritten graph with the plugin's CPU twin), torch (the reference itself, or
with --search-transfer kernels its search-transfer on the plugin's CUDA kernels:
libttsr_st_cuda.so from build/ or $TTSR_PLUGIN_DIR).
Without --onnx, the ort backend exports and rewrites the reference model first.
Every output path is checked (and its folder made) before any model runs.

\b
Report: latency per shape (batch size, LR size / Ref size) with trtexec's names:
Host Latency per call (wall time), and on trt H2D Latency, GPU Compute Time and
D2H Latency; mean, median, min, max and nearest-rank p90/p95/p99, each percentile
only with enough calls (n >= 100/(100-p): p99 needs 100); throughput in qps and
images/s.  PSNR/SSIM of every SR image against the PyTorch reference's output (and
the HR image, and the reference against HR), then their mean.  The JSON adds
Polygraphy-style error statistics per output (max/mean/median absolute and relative
error, share of pixels over 0.5..8/255), every call's time, and the machine (CPU,
GPU, library versions, threads, time).  With --check the exit status is 1 when any
check of the gate table fails.
"""


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


def _prepare(pairs: list[Pair], crop_border: int) -> list[Job]:
    """Load and prepare every pair before anything runs, so bad inputs fail before any output exists."""
    from ttsr.data import ImageError, load_image, prepare_pair

    jobs = []
    for pair in pairs:
        try:
            lr, ref = load_image(pair.lr), load_image(pair.ref)
            check_lr_size(lr.shape[:2], crop_border)
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
                   f"block for the {kind} backend ...", err=True)  # stdout may carry the JSON (--json -)
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
                       kind: str, device: str, search_transfer: str | None,
                       progress: Callable[[int], None]) -> list[np.ndarray]:
    if kind == "torch" and search_transfer != "kernels":  # the backend ran the reference itself
        return backend_outputs
    from ttsr.backends.torch import TorchBackend
    from ttsr.runtime.timing import run_batches

    outputs, _ = run_batches(TorchBackend(model, device=device), [job.inputs for job in jobs], batches,
                             warmup=0, progress=progress)
    return outputs


def _limits(check: bool, min_psnr: float | None, min_ssim: float | None, max_p99_ms: float | None,
            max_mean_ms: float | None) -> Limits | None:
    limits = Limits(min_psnr, min_ssim, max_p99_ms, max_mean_ms)
    if check and not limits.any():
        raise click.UsageError("--check needs --min-psnr DB, --min-ssim S, --max-p99-ms MS or --max-mean-ms MS")
    if not check and limits.any():
        raise click.UsageError("--min-psnr/--min-ssim/--max-p99-ms/--max-mean-ms only apply with --check")
    return limits if check else None


def _prepare_outputs(outputs: Outputs, out_dir: Path | None, json_path: Path | None,
                     report_dir: Path | None) -> None:
    """Make and probe every output path before any model runs, so a bad one costs no run."""
    try:
        if out_dir is not None:
            outputs.folder(out_dir, "--out-dir")
        if json_path is not None and not is_stdout(json_path):
            outputs.file_target(json_path, "--json")
        if report_dir is not None:
            outputs.folder(report_dir, "--report")
    except OutputError as exc:
        outputs.remove()
        raise click.ClickException(str(exc)) from None


def _check_p99_samples(limits: Limits | None, timed: dict[Any, int], iterations: int) -> None:
    """A p99 gate on too few calls would compare the slowest call; refuse it before the run."""
    if limits is None or limits.max_p99_ms is None:
        return
    from ttsr.runtime.stats import min_samples

    needed = min_samples(99)
    short = {shape.label: calls for shape, calls in timed.items() if calls < needed}
    if short:
        label, calls = next(iter(short.items()))
        per_pass = calls // iterations
        raise click.UsageError(
            f"--max-p99-ms needs >= {needed} timed calls per shape, shape {label} gets {calls} "
            f"({per_pass} per pass x --iterations {iterations}); use --iterations {-(-needed // per_pass)}")


def _results(jobs: list[Job], outputs: list[np.ndarray], references: list[np.ndarray]) -> list[ImageResult]:
    from ttsr.data import to_image

    return [ImageResult(job.name, job.paths, job.inputs.lr_size, job.inputs.ref_size, sr, reference,
                        to_image(job.inputs.lq_up * 2.0 - 1.0), job.hr)
            for job, sr, reference in zip(jobs, outputs, references)]


def _used_gpu(runner: Any, kind: str, torch_device: str) -> dict[str, str] | None:
    """The GPU the run used: the engine's (trt: as its sidecar names it; the backend checked its compute
    capability against this GPU), PyTorch's (--torch-device cuda), else none."""
    if kind == "trt":
        return {"name": runner.sidecar.gpu_name, "compute_capability": runner.sidecar.compute_capability}
    if torch_device.startswith("cuda"):
        import torch

        major, minor = torch.cuda.get_device_capability(torch_device)
        return {"name": torch.cuda.get_device_name(torch_device), "compute_capability": f"{major}.{minor}"}
    return None


@click.command("infer", epilog=EPILOG,
               context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]})
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
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write the full report as JSON here; '-' writes it to stdout (the tables go to stderr).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path),
              help="Write a browsable report folder here: index.html, a PNG panel per image (bicubic LR, "
                   "ours, reference, HR, difference heat maps), latency.png and report.json.")
@click.option("--metrics-convention", type=click.Choice(["rgb", "y", "mmediting-0.x"]), default="rgb",
              show_default=True,
              help="rgb: PSNR/SSIM over RGB; y: on the Y channel; mmediting-0.x: RGB PSNR with the "
                   "blue-only SSIM behind the published figures.")
@click.option("--crop-border", type=click.IntRange(min=0), default=4, show_default=True,
              help="Pixels cropped from each border before scoring (mmediting: the scale, 4).")
@click.option("--check", is_flag=True,
              help="Release gate: exit 1 when an image is below --min-psnr/--min-ssim against the PyTorch "
                   "reference or a shape's latency is above --max-p99-ms/--max-mean-ms; one table of all checks.")
@click.option("--min-psnr", type=click.FloatRange(min=0, min_open=True),
              help="Gate: lowest PSNR (dB, > 0) against the reference.")
@click.option("--min-ssim", type=click.FloatRange(0, 1), help="Gate: lowest SSIM (0..1) against the reference.")
@click.option("--max-p99-ms", type=click.FloatRange(min=0, min_open=True),
              help="Gate: highest p99 Host Latency (ms) of each shape; needs >= 100 timed calls per shape.")
@click.option("--max-mean-ms", type=click.FloatRange(min=0, min_open=True),
              help="Gate: highest mean Host Latency (ms) of each shape.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def infer_command(lr_dir: Path | None, ref_dir: Path | None, hr_dir: Path | None, pair_list: Path | None,
                  backend: str | None, engine: Path | None, onnx_path: Path | None, plugin: Path | None,
                  checkpoint: Path | None, seed: int, batch: int, warmup: int, iterations: int,
                  cuda_graph: bool, threads: int | None, torch_device: str, search_transfer: str | None,
                  out_dir: Path | None, json_path: Path | None, report_dir: Path | None,
                  metrics_convention: str, crop_border: int, check: bool, min_psnr: float | None,
                  min_ssim: float | None, max_p99_ms: float | None, max_mean_ms: float | None,
                  progress: bool | None) -> None:
    """Super-resolve LR/Ref pairs, report latency and PSNR/SSIM against the PyTorch reference (and HR)."""
    import torch

    from ttsr.backends import failure_message
    from ttsr.provenance import Source
    from ttsr.report.machine import machine_details
    from ttsr.report.run import RunReport, Settings
    from ttsr.runtime.batching import plan_batches
    from ttsr.runtime.timing import count_calls, run_batches

    say = functools.partial(click.echo, err=is_stdout(json_path))  # keep stdout for the JSON of --json -
    limits = _limits(check, min_psnr, min_ssim, max_p99_ms, max_mean_ms)
    options = {"engine": engine, "plugin": plugin, "cuda_graph": cuda_graph or None, "onnx": onnx_path,
               "threads": threads, "search_transfer": search_transfer}
    given = {name: value for name, value in options.items() if value is not None}
    kind, how = _choose_backend(backend, given)
    _check_device(torch_device)
    pairs = _collect_pairs(lr_dir, ref_dir, hr_dir, pair_list)
    jobs = _prepare(pairs, crop_border)
    files = Outputs()
    _prepare_outputs(files, out_dir, json_path, report_dir)
    try:
        model, model_note = load_model(checkpoint, seed)
        say(model_note)
        note = {"asked": "", "implied": f" (chosen by {_choice(kind)})",
                "default": " (the default: no --backend, --engine or --onnx given)"}[how]
        where = " (search-transfer on the plugin's CUDA kernels)" if search_transfer == "kernels" else ""
        say(f"Backend: {kind}{note}{where}; {len(jobs)} pair(s); batch {batch}; warm-up {warmup}; "
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
            warm_calls, timed_calls = count_calls(batches, warmup, iterations)
            _check_p99_samples(limits, timed_calls, iterations)
            separate_reference = kind != "torch" or search_transfer == "kernels"
            total = warm_calls + sum(timed_calls.values()) + (len(batches) if separate_reference else 0)
            with tqdm(total=total, unit="call", desc=f"infer ({kind})", file=sys.stderr,
                      disable=None if progress is None else not progress, leave=False) as bar:
                try:
                    outputs, latency = run_batches(runner, [job.inputs for job in jobs], batches, warmup,
                                                   iterations, progress=bar.update)
                except Exception as exc:  # the backend's known errors, and TensorRT's, pycuda's, ORT's or torch's own
                    raise click.ClickException(failure_message(kind, exc)) from None
                if separate_reference:
                    bar.set_description("reference (torch)")
                references = _reference_outputs(model, jobs, batches, outputs, kind, torch_device,
                                                search_transfer, bar.update)

        settings = Settings(
            backend=kind, backend_choice=how, model=model_note, checkpoint=str(checkpoint) if checkpoint else None,
            seed=None if checkpoint else seed, engine=str(engine) if engine else None,
            onnx=str(onnx_path) if onnx_path else None, batch=batch, warmup=warmup, iterations=iterations,
            cuda_graph=cuda_graph, torch_device=torch_device,
            search_transfer=search_transfer or ("torch" if kind == "torch" else None),
            convention=metrics_convention,
            crop_border=crop_border)
        machine = machine_details(_used_gpu(runner, kind, torch_device),
                                  {"torch": torch.get_num_threads(), "onnxruntime_intra_op": threads})
        try:
            run = RunReport.make(settings, _results(jobs, outputs, references), latency, limits, machine,
                                 tool_version())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        run.write(files, out_dir, json_path, report_dir)
    except OSError as exc:
        files.remove()
        raise click.ClickException(f"cannot write outputs: {exc}") from None
    except BaseException:
        files.remove()
        raise

    say(run.text(out_dir, json_path, report_dir))
    if run.failing:
        click.get_current_context().exit(1)
