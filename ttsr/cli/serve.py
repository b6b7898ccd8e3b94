"""``serve``, ``export-triton`` and ``bench-serve``: TTSR on Triton Inference Server."""

from __future__ import annotations

import platform
import shutil
import signal
import tempfile
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ttsr.atomic import write_json_atomic
from ttsr.backends import names as backend_names
from ttsr.cli.common import load_model, size_option
from ttsr.errors import first_line
from ttsr.backends.profiles import ProfileError, Size, format_size
from ttsr.serve.spec import CPU_MAX_BATCH, CPU_MAX_LR, CPU_MAX_REF

SERVE_EPILOG = """\b
Examples:
  # CPU: ONNX Runtime with the plugin's CPU twin (exports the seeded model when no --onnx is given)
  ttsr serve --backend ort --onnx out/ttsr.rewritten.onnx --http-port 8000
  # GPU: a TensorRT engine, two instances, batches of up to the engine's max batch within 2 ms
  ttsr serve --backend trt --engine ttsr.engine --instances 2 --max-queue-delay-us 2000
  # then: health, metrics, a client
  curl -f 127.0.0.1:8000/v2/health/ready && curl -s 127.0.0.1:8002/metrics | grep nv_inference_exec_count
  python examples/triton_client.py --url 127.0.0.1:8000 --lr lr.png --ref ref.png --out sr.png

\b
The server is Triton Inference Server (the tritonserver nvidia-pytriton ships) with one Python-backend
model: clients send LR (uint8, N x H x W x 3) and REF (uint8, N x Hr x Wr x 3) and get SR (uint8,
N x 4H x 4W x 3), prepared and converted as infer.py does.  Triton's dynamic batcher joins same-size
requests that arrive within --max-queue-delay-us.  Requests beyond the size limits (the engine's profiles,
or --max-lr/--max-ref) get an error response.  Health: /v2/health/ready on the HTTP port; Prometheus
metrics on the metrics port.  SIGINT (Ctrl-C) or SIGTERM: in-flight requests finish, then it exits.
"""

EXPORT_EPILOG = """\b
Examples:
  # GPU fleet: the engine under Triton's TensorRT backend, pre/post-processing in Python, one ensemble
  ttsr export-triton triton-repo --engine ttsr.engine --instances 2 --max-queue-delay-us 2000
  LD_PRELOAD=$PWD/triton-repo/plugins/libttsr_trt_plugin.so tritonserver --model-repository=$PWD/triton-repo
  # CPU: the rewritten graph in ONNX Runtime inside a Python-backend model
  ttsr export-triton triton-cpu --onnx out/ttsr.rewritten.onnx --max-lr 64 --max-ref 256

\b
The engine's JSON sidecar gives the max batch size and the dims of config.pbtxt (a dim fixed by every
profile is written as its size, others as -1); the plugin library recorded in the sidecar (or --plugin,
checked against the sidecar's sha256) is copied into plugins/.  README.md in the repository says how the
server loads it.  REPO must not exist; it appears complete or not at all.
"""

BENCH_EPILOG = """\b
Examples:
  ttsr bench-serve --url 127.0.0.1:8000 --requests 32 --json bench.json
  ttsr bench-serve --url 127.0.0.1:8001 --protocol grpc --lr lr.png --ref ref.png --concurrency 1,8

\b
At each concurrency, that many client threads send --requests requests in all, one at a time each
(one LR/Ref pair per request), and the table gives requests/s, p50/p90/p99 latency and errors.
"""


FILE = click.Path(path_type=Path, exists=True, dir_okay=False)


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise click.BadParameter(f"port {value} is not in 1..65535")
    return value


def _check_options(backend: str, engine: Path | None, plugin: Path | None, onnx: Path | None,
                   cpu_limits: dict[str, object]) -> None:
    """Usage errors for options that do not go with ``backend``, before anything is started."""
    if backend == "trt":
        if engine is None:
            raise click.UsageError("--backend trt needs --engine (build one with build_engine.py)")
        for name, value in cpu_limits.items():
            if value is not None:
                raise click.UsageError(f"{name} does not apply to --backend trt: the engine's profiles set the limits")
    elif engine is not None or plugin is not None:
        raise click.UsageError(f"--engine/--plugin apply to --backend trt, not {backend}")
    if onnx is not None and backend != "ort":
        raise click.UsageError(f"--onnx applies to --backend ort, not {backend}")


def _model_spec(backend: str, engine: Path | None, plugin: Path | None, onnx: Path | None,
                checkpoint: Path | None, seed: int, threads: int | None, torch_device: str, max_lr: Size | None,
                max_ref: Size | None, max_batch: int | None, workdir: Path) -> Any:
    from ttsr.serve.spec import ServedBackend, ServeSpec, cpu_profile

    python = platform.python_version()
    if backend == "trt":
        from ttsr.backends.trt.sidecar import SidecarError, read_sidecar

        assert engine is not None  # _check_options
        try:
            profiles = read_sidecar(engine).profiles
        except SidecarError as exc:
            raise click.ClickException(str(exc)) from None
        return ServeSpec(ServedBackend("trt", engine=str(engine.resolve()),
                                       plugin=str(plugin.resolve()) if plugin else None),
                         profiles, "; the engine's profiles allow no more", python)
    try:
        profile = cpu_profile(max_lr, max_ref, max_batch)
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    hint = " or restart ttsr serve with larger --max-lr/--max-ref"
    if backend == "ort":
        onnx = _rewritten_graph(onnx, checkpoint, seed, workdir)
        return ServeSpec(ServedBackend("ort", onnx=str(onnx.resolve()), threads=threads), [profile], hint, python)
    return ServeSpec(ServedBackend("torch", checkpoint=str(checkpoint.resolve()) if checkpoint else None, seed=seed,
                                   threads=threads, torch_device=torch_device), [profile], hint, python)


def _rewritten_graph(onnx: Path | None, checkpoint: Path | None, seed: int, workdir: Path) -> Path:
    """``onnx`` when it is a rewritten graph; without one, the model of --checkpoint/--seed exported here."""
    from ttsr.onnx_io import OnnxInfoError, inspect_onnx

    if onnx is None:
        from ttsr.pipeline import GRAPH_ERRORS, make_graph

        model, note = load_model(checkpoint, seed)
        click.echo(f"{note}\nNo --onnx: exporting it and rewriting its search-transfer block ...")
        try:
            return make_graph(model, "rewritten", workdir)
        except GRAPH_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
    try:
        rewritten = inspect_onnx(onnx).rewritten
    except OnnxInfoError as exc:
        raise click.ClickException(str(exc)) from None
    if not rewritten:
        raise click.ClickException(f"{onnx} has no TTSRSearchTransfer node; give the rewritten graph "
                                   f"(ttsr export --rewrite)")
    return onnx


@click.command("serve", epilog=SERVE_EPILOG, context_settings={"max_content_width": 100})
@click.option("--backend", type=click.Choice(backend_names()),
              help="trt (TensorRT engine, GPU), ort (CPU, rewritten graph) or torch (the reference). "
                   "Default: trt with --engine, ort otherwise.")
@click.option("--engine", type=FILE,
              help="TensorRT engine from build_engine.py, with its .json sidecar (trt).")
@click.option("--plugin", type=FILE,
              help="TensorRT plugin library (trt; default: the one in the engine sidecar).")
@click.option("--onnx", "onnx_path", type=FILE,
              help="Rewritten ONNX graph (ort; default: export the model of --checkpoint/--seed).")
@click.option("--checkpoint", type=FILE,
              help="mmediting/mmagic TTSR checkpoint (torch, and ort without --onnx).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeded random model without --checkpoint.")
@click.option("--model-name", default="ttsr", show_default=True, help="Name clients address the model by.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address the HTTP, gRPC and metrics endpoints listen on (0.0.0.0: every interface).")
@click.option("--http-port", type=int, default=8000, show_default=True, callback=lambda c, p, v: _port(v))
@click.option("--grpc-port", type=int, default=8001, show_default=True, callback=lambda c, p, v: _port(v))
@click.option("--metrics-port", type=int, default=8002, show_default=True, callback=lambda c, p, v: _port(v))
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model instances (each a process with its own backend) that run batches in parallel.")
@click.option("--max-batch", type=click.IntRange(min=1),
              help=f"ort/torch: most pairs per execution (default {CPU_MAX_BATCH}; trt: the engine's profiles).")
@click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=2000, show_default=True,
              help="How long the dynamic batcher holds a request to join it with others of the same size.")
@click.option("--max-lr", callback=size_option,
              help=f"ort/torch: largest LR image, HxW or N (default {format_size(CPU_MAX_LR)}).")
@click.option("--max-ref", callback=size_option,
              help=f"ort/torch: largest Ref after cropping to multiples of 4, HxW or N "
                   f"(default {format_size(CPU_MAX_REF)}).")
@click.option("--threads", type=click.IntRange(min=1), help="ort/torch: threads per instance.")
@click.option("--torch-device", default="cpu", show_default=True, help="torch: cpu, cuda, cuda:1 ...")
@click.option("--log-level", type=click.Choice(["error", "warning", "info", "verbose"]), default="info",
              show_default=True, help="Triton's log level.")
@click.option("--ready-timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the model to load.")
def serve_command(backend: str | None, engine: Path | None, plugin: Path | None, onnx_path: Path | None,
                  checkpoint: Path | None, seed: int, model_name: str, address: str, http_port: int,
                  grpc_port: int, metrics_port: int, instances: int, max_batch: int | None,
                  max_queue_delay_us: int, max_lr: Size | None, max_ref: Size | None, threads: int | None,
                  torch_device: str, log_level: str, ready_timeout: float) -> None:
    """Serve TTSR on Triton Inference Server (HTTP, gRPC, metrics) until SIGINT or SIGTERM."""
    from ttsr.backends import BackendError, choose_backend, unavailable_reason
    from ttsr.serve.repository import Scheduling, write_python_model
    from ttsr.serve.server import ServeError, ServerOptions, TritonServer, find_triton, make_backend_dir

    if len({http_port, grpc_port, metrics_port}) < 3:
        raise click.UsageError("--http-port, --grpc-port and --metrics-port must differ")
    try:
        given = [name for name, value in (("engine", engine), ("onnx", onnx_path)) if value is not None]
        kind, _ = choose_backend(backend, given)
    except BackendError as exc:
        raise click.UsageError(str(exc)) from None
    _check_options(kind, engine, plugin, onnx_path,
                   {"--max-lr": max_lr, "--max-ref": max_ref, "--max-batch": max_batch})
    reason = unavailable_reason(kind)
    if reason is not None:
        raise click.ClickException(f"the {kind} backend cannot run here: {reason}")
    try:
        install = find_triton()
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="ttsr-serve-") as temp:
        workdir = Path(temp)
        spec = _model_spec(kind, engine, plugin, onnx_path, checkpoint, seed, threads, torch_device, max_lr,
                           max_ref, max_batch, workdir)
        on_gpu = kind == "trt" or torch_device.startswith("cuda")
        repository = workdir / "repository"
        write_python_model(repository, model_name, spec, Scheduling(instances, max_queue_delay_us),
                           kind="KIND_GPU" if on_gpu else "KIND_CPU")
        options = ServerOptions(repository=repository, address=address, http_port=http_port, grpc_port=grpc_port,
                                metrics_port=metrics_port, log_level=log_level, gpu_metrics=on_gpu)
        try:
            server = TritonServer(install, options, make_backend_dir(install, workdir),
                                  echo=lambda line: click.echo(line, err=True))
        except ServeError as exc:
            raise click.ClickException(str(exc)) from None
        stopping: list[int] = []

        def forward(signum: int, frame: FrameType | None) -> None:
            stopping.append(signum)
            server.process.send_signal(signal.SIGTERM)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                server.wait_ready(ready_timeout)
            except ServeError as exc:
                if not stopping:  # else the signal stopped the start-up
                    raise click.ClickException(str(exc)) from None
            if not stopping:
                click.echo(f"Serving model '{model_name}' ({kind} backend, max batch {spec.max_batch}, "
                           f"{instances} instance(s)): HTTP {options.http_url}, gRPC {address}:{grpc_port}, "
                           f"metrics {options.metrics_url}; health {options.http_url}/v2/health/ready. "
                           f"Ctrl-C or SIGTERM stops it.")
            server.process.wait()
        finally:
            status = server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if not stopping:
        raise click.ClickException(f"tritonserver exited with status {status}: " + " | ".join(server.errors()))
    if status == -signal.SIGTERM:
        # The signal came before tritonserver had set up its own handling, so the forwarded SIGTERM ended it.
        click.echo(f"Server stopped ({signal.Signals(stopping[0]).name}) while starting.")
        return
    click.echo(f"Server stopped ({signal.Signals(stopping[0]).name}); exit status {status}.")
    if status != 0:
        raise click.exceptions.Exit(status)


@click.command("export-triton", epilog=EXPORT_EPILOG, context_settings={"max_content_width": 100})
@click.argument("repo", type=click.Path(path_type=Path))
@click.option("--engine", type=FILE,
              help="TensorRT engine from build_engine.py, with its .json sidecar.")
@click.option("--plugin", type=FILE,
              help="Plugin library to ship (default: the sidecar's); must be the one the engine was built with.")
@click.option("--onnx", "onnx_path", type=FILE,
              help="Instead of --engine: the rewritten graph, for a CPU repository (ONNX Runtime in Python).")
@click.option("--model-name", default="ttsr", show_default=True, help="Name clients address the model by.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Instances per model (per GPU for the plan).")
@click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=2000, show_default=True,
              help="Dynamic batcher's wait for same-size requests.")
@click.option("--max-lr", callback=size_option, help=f"--onnx: largest LR image (default {format_size(CPU_MAX_LR)}).")
@click.option("--max-ref", callback=size_option, help=f"--onnx: largest Ref (default {format_size(CPU_MAX_REF)}).")
@click.option("--max-batch", type=click.IntRange(min=1),
              help=f"--onnx: most pairs per execution (default {CPU_MAX_BATCH}).")
@click.option("--threads", type=click.IntRange(min=1), help="--onnx: ONNX Runtime threads per instance.")
def export_triton_command(repo: Path, engine: Path | None, plugin: Path | None, onnx_path: Path | None,
                          model_name: str, instances: int, max_queue_delay_us: int, max_lr: Size | None,
                          max_ref: Size | None, max_batch: int | None, threads: int | None) -> None:
    """Write a Triton model repository for a TensorRT engine (GPU fleet) or the rewritten ONNX graph (CPU)."""
    from ttsr.serve.repository import Scheduling

    if (engine is None) == (onnx_path is None):
        raise click.UsageError("give --engine (TensorRT plan repository) or --onnx (CPU repository)")
    if repo.exists():
        raise click.UsageError(f"{repo} exists; give a new folder (the repository is written whole)")
    if not repo.parent.is_dir():
        raise click.UsageError(f"folder {repo.parent} does not exist; create it first")
    scheduling = Scheduling(instances, max_queue_delay_us)
    staging = repo.parent / f".{repo.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        if engine is not None:
            for name, value in (("--max-lr", max_lr), ("--max-ref", max_ref), ("--max-batch", max_batch),
                                ("--threads", threads)):
                if value is not None:
                    raise click.UsageError(f"{name} applies to --onnx; the engine's sidecar sets the limits")
            summary = _export_plan(staging, model_name, engine, plugin, scheduling)
        else:
            if plugin is not None:
                raise click.UsageError("--plugin applies to --engine")
            assert onnx_path is not None
            summary = _export_onnx(staging, model_name, onnx_path, scheduling, max_lr, max_ref, max_batch, threads)
        staging.rename(repo)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"Model repository {repo}/: {summary}. See {repo}/README.md to serve it.")


def _export_plan(staging: Path, name: str, engine: Path, plugin: Path | None, scheduling: Any) -> str:
    from ttsr.backends.trt.sidecar import SidecarError, check_engine_hash, check_plugin, read_sidecar
    from ttsr.atomic import file_sha256
    from ttsr.serve.repository import RepositoryError, write_fleet_repository

    try:
        sidecar = read_sidecar(engine)
    except SidecarError as exc:
        raise click.ClickException(str(exc)) from None
    problems = check_engine_hash(sidecar, file_sha256(engine))
    library = plugin or Path(sidecar.plugin.library)
    problems += check_plugin(sidecar, file_sha256(library) if library.is_file() else None)
    if problems:
        raise click.ClickException(problems[0])
    try:
        write_fleet_repository(staging, name, engine, library, sidecar, scheduling)
    except RepositoryError as exc:
        raise click.ClickException(str(exc)) from None
    return (f"ensemble '{name}' = {name}_preprocess (Python) -> {name}_trt (TensorRT plan, "
            f"{len(sidecar.profiles)} profile(s)) -> {name}_postprocess (Python); plugins/{library.name}")


def _export_onnx(staging: Path, name: str, onnx: Path, scheduling: Any, max_lr: Size | None,
                 max_ref: Size | None, max_batch: int | None, threads: int | None) -> str:
    from ttsr.serve.repository import onnx_readme, write_python_model
    from ttsr.serve.spec import ServedBackend, ServeSpec, cpu_profile

    _rewritten_graph(onnx, None, 0, staging)
    try:
        profile = cpu_profile(max_lr, max_ref, max_batch)
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    spec = ServeSpec(ServedBackend("ort", onnx="1/ttsr.onnx", threads=threads), [profile],
                     "; the repository's --max-lr/--max-ref allow no more")
    folder = write_python_model(staging, name, spec, scheduling)
    shutil.copyfile(onnx, folder / "1" / "ttsr.onnx")
    (staging / "README.md").write_text(onnx_readme(name))
    return f"'{name}' (Python backend: ONNX Runtime with the CPU twin, max batch {spec.max_batch})"


def _load_pair(lr: Path | None, ref: Path | None, lr_size: Size, ref_size: Size, seed: int) -> tuple[Any, Any]:
    import numpy as np

    from ttsr.data import ImageError, load_image

    if (lr is None) != (ref is None):
        raise click.UsageError("give both --lr and --ref, or neither (random images of --lr-size/--ref-size)")
    if lr is not None and ref is not None:
        try:
            return load_image(lr), load_image(ref)
        except ImageError as exc:
            raise click.ClickException(str(exc)) from None
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (*lr_size, 3), dtype=np.uint8), rng.integers(0, 256, (*ref_size, 3), dtype=np.uint8))


def _concurrency(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        levels = [int(item) for item in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. 1,4,16") from None
    if not levels or min(levels) < 1:
        raise click.BadParameter(f"{value!r}: every concurrency must be >= 1")
    return levels


@click.command("bench-serve", epilog=BENCH_EPILOG, context_settings={"max_content_width": 100})
@click.option("--url", default="127.0.0.1:8000", show_default=True,
              help="host:port of the server's HTTP (or, with --protocol grpc, gRPC) endpoint.")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http", show_default=True)
@click.option("--model-name", default="ttsr", show_default=True)
@click.option("--concurrency", default="1,4,16", show_default=True, callback=_concurrency,
              help="Comma-separated numbers of concurrent clients, one run each.")
@click.option("--requests", type=click.IntRange(min=1), default=32, show_default=True,
              help="Requests per concurrency level.")
@click.option("--lr", type=click.Path(path_type=Path), help="LR image to send (default: random, --lr-size).")
@click.option("--ref", type=click.Path(path_type=Path), help="Ref image to send (default: random, --ref-size).")
@click.option("--lr-size", default="40x40", show_default=True, callback=size_option)
@click.option("--ref-size", default="160x160", show_default=True, callback=size_option)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random images.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=120, show_default=True,
              help="Seconds a request may take before it counts as an error.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the results as JSON here.")
def bench_serve_command(url: str, protocol: str, model_name: str, concurrency: list[int], requests: int,
                        lr: Path | None, ref: Path | None, lr_size: Size, ref_size: Size, seed: int,
                        timeout_s: float, json_path: Path | None) -> None:
    """Bounded load on a TTSR Triton server: requests/s, p50/p90/p99 latency and errors per concurrency."""
    from ttsr.serve.bench import client_module, make_client, run_level, table

    if json_path is not None and not json_path.parent.is_dir():
        raise click.UsageError(f"folder {json_path.parent} of --json does not exist")
    lr_image, ref_image = _load_pair(lr, ref, lr_size, ref_size, seed)
    try:
        module = client_module(protocol)
    except ImportError:
        raise click.ClickException("tritonclient is not installed; .venv/bin/pip install -e '.[serve]'") from None
    client = make_client(module, url, timeout_s)
    try:
        if not client.is_model_ready(model_name):
            raise click.ClickException(f"model '{model_name}' is not ready on {url}; start it with ttsr serve")
    except click.ClickException:
        raise
    except Exception as exc:  # the client's connection errors
        raise click.ClickException(f"no Triton server at {url} ({protocol}): {first_line(exc)}") from None
    finally:
        client.close()
    click.echo(f"Model '{model_name}' at {url} ({protocol}); LR {lr_image.shape[0]}x{lr_image.shape[1]}, "
               f"Ref {ref_image.shape[0]}x{ref_image.shape[1]}; {requests} request(s) per level.")
    results = [run_level(url, protocol, model_name, lr_image, ref_image, level, requests, timeout_s)
               for level in concurrency]
    click.echo(table(results))
    for result in results:
        if result.first_error:
            click.echo(f"concurrency {result.concurrency}: first error: {result.first_error}", err=True)
    if json_path is not None:
        write_json_atomic(json_path, {
            "url": url, "protocol": protocol, "model": model_name, "lr_size": list(lr_image.shape[:2]),
            "ref_size": list(ref_image.shape[:2]), "levels": [r.to_dict() for r in results]})
        click.echo(f"JSON: {json_path}")
    if any(r.errors for r in results):
        raise click.exceptions.Exit(1)
