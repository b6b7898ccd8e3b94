"""CPU benchmark of the whole pipeline: PyTorch eager (``torch`` backend) vs the rewritten graph in
ONNX Runtime with the CPU twin (``ort`` backend), on the seeded model.

Per LR size (Ref = 4x LR, random images): median time per image over ``--runs`` runs after one
warm-up, each backend in one long-lived process for all sizes, their runs interleaved (the machine
may be shared: both see the same load), and each process's peak resident memory per size (VmHWM,
reset before each size through /proc/self/clear_refs).  Then, for one image, where the
time goes: ONNX Runtime's profiler per op type and per node, the twin's stages on the same
image's features, and PyTorch's profiler per op.  ``--variants`` also times ORT session settings
against the chosen ones (``ttsr.backends.ort.runner.session_options``), interleaved in one process.
Writes a JSON report and a PNG plot of time and memory against size.

    .venv/bin/python scripts/bench_cpu_pipeline.py [--sizes 40,80,120] [--runs 3] [--threads 2] \\
        [--json bench-cpu.json] [--png bench-cpu.png] [--profile-size 40] [--variants]
"""

from __future__ import annotations

import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import click

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ttsr.atomic import atomic_output, write_json_atomic  # noqa: E402
from ttsr.bench.sizes import parse_sizes as parse_size_list  # noqa: E402
from ttsr.bench.tables import markdown_table  # noqa: E402
BACKENDS = ("torch", "ort")
SEED = 0
# PyTorch's OpenMP threads spin while they wait, as ORT's do by default (which the ort backend
# turns off): on a shared machine a spinning thread holds a core that the working one needs, and
# PyTorch's time per image at LR 8 swung between 0.5 and 6.7 s.  Passive waiting: 0.12 to 0.26 s.
_CHILD_ENV = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current resident size


def _inputs(side: int, seed: int) -> Any:
    import numpy as np

    from ttsr.data.prepare import prepare_pair

    rng = np.random.default_rng(seed)
    lr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    ref = rng.integers(0, 256, (4 * side, 4 * side, 3), dtype=np.uint8)
    return prepare_pair(lr, ref)


def _runner(backend: str, onnx_path: Path, threads: int) -> Callable[[Any], object]:
    import torch

    torch.set_num_threads(threads)
    if backend == "torch":
        from ttsr.model import build_model
        from ttsr.backends.torch import TorchBackend

        return TorchBackend(build_model(seed=SEED)).run
    from ttsr.backends.ort.runner import OrtBackend

    return OrtBackend(onnx_path, threads=threads).run


def serve_backend(backend: str, onnx_path: Path, threads: int) -> None:
    """In the child: one backend, driven line by line from stdin so that the parent can interleave
    the two backends' runs (the same machine load for both).  ``size N``: make the inputs, run
    once (warm-up), reset the peak; ``run``: the time of one run (ms); ``peak``: the peak RSS (MB)
    since the last ``size``."""
    run = _runner(backend, onnx_path, threads)
    inputs = None
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "size":
            inputs = _inputs(int(args[0]), seed=int(args[0]))
            _reset_peak()
            run(inputs)
            print(_status_kib("VmRSS") / 1024, flush=True)
        elif command == "run":
            start = time.perf_counter()
            run(inputs)
            print((time.perf_counter() - start) * 1e3, flush=True)
        elif command == "peak":
            print(_status_kib("VmHWM") / 1024, flush=True)


class _Worker:
    def __init__(self, backend: str, onnx_path: Path, common: list[str]) -> None:
        self.backend = backend
        self.process = subprocess.Popen([sys.executable, __file__, "--child", backend, str(onnx_path), *common],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                                        env=_CHILD_ENV)
        self.ask("")  # waits for "ready"

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer:
            raise click.ClickException(f"the {self.backend} backend's process stopped (command {command!r})")
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def measure_backends(onnx_path: Path, common: list[str], sides: list[int], runs: int) -> dict[str, list[dict]]:
    """Per size: a warm-up run each, then ``runs`` rounds in which each backend runs once (the
    order alternating), each backend in its own long-lived process; medians and peak RSS."""
    workers = [_Worker(backend, onnx_path, common) for backend in BACKENDS]
    results: dict[str, list[dict]] = {backend: [] for backend in BACKENDS}
    try:
        for side in sides:
            before = {w.backend: float(w.ask(f"size {side}")) for w in workers}
            times: dict[str, list[float]] = {w.backend: [] for w in workers}
            for round_index in range(runs):
                for worker in workers[::1 if round_index % 2 == 0 else -1]:
                    times[worker.backend].append(float(worker.ask("run")))
            for worker in workers:
                results[worker.backend].append({
                    "lr": side, "ref": 4 * side, "ms": times[worker.backend],
                    "median_ms": statistics.median(times[worker.backend]),
                    "peak_rss_mb": float(worker.ask("peak")), "rss_after_warm_up_mb": before[worker.backend]})
    finally:
        for worker in workers:
            worker.close()
    return results


def _ort_node_times(session: Any, feed: dict) -> tuple[dict[str, float], dict[str, float], float]:
    """Kernel time per op type and per node (ms) of one profiled run, and its wall time."""
    session.run(None, feed)
    start = time.perf_counter()
    session.run(None, feed)
    wall = (time.perf_counter() - start) * 1e3
    events = json.loads(Path(session.end_profiling()).read_text())
    last_run = max(e["ts"] for e in events if e.get("name") == "model_run")
    by_op: collections.Counter = collections.Counter()
    by_node: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= last_run:
            by_op[event["args"]["op_name"]] += event["dur"] / 1e3
            by_node[event["name"][: -len("_kernel_time")]] += event["dur"] / 1e3
    return dict(by_op.most_common()), dict(by_node.most_common(10)), wall


def profile_image(onnx_path: Path, side: int, threads: int) -> dict:
    """In the child: where one image's time goes, in ORT (per op, per node), in the twin (per
    stage, on the same image's features) and in PyTorch (per op)."""
    import onnxruntime as ort
    import torch
    from onnxruntime_extensions import get_library_path

    from ttsr.model import build_model
    from ttsr.plugin.native import search_transfer_cpu
    from ttsr.backends.ort.runner import _session_model, session_options
    from ttsr.onnx_io import load_onnx

    torch.set_num_threads(threads)
    inputs = _inputs(side, seed=side)
    model, _ = _session_model(load_onnx(onnx_path, RuntimeError, "export it first"), threads)
    options = session_options(threads)
    options.register_custom_ops_library(get_library_path())
    with tempfile.TemporaryDirectory() as folder:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        by_op, by_node, wall = _ort_node_times(session, inputs.as_dict())

    torch_model = build_model(seed=SEED)
    tensors = inputs.as_torch()
    with torch.inference_mode():
        lq, lq_up, ref, ref_downup = tensors
        features = [torch_model.extractor(lq_up)[0], torch_model.extractor(ref_downup)[0],
                    *torch_model.extractor(ref)]
        arrays = [f.numpy() for f in features]
        search_transfer_cpu(*arrays, threads=threads)
        stages: dict[str, float] = {}
        search_transfer_cpu(*arrays, threads=threads, stage_seconds=stages)
        torch_model(*tensors)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            torch_model(*tensors)
    torch_ops = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    top_torch = dict(sorted(torch_ops.items(), key=lambda item: -item[1])[:10])
    return {"lr": side, "ref": 4 * side, "ort_wall_ms": wall, "ort_by_op_ms": by_op, "ort_top_nodes_ms": by_node,
            "twin_stages_ms": {k: v * 1e3 for k, v in stages.items()},
            "torch_top_ops_self_ms": top_torch, "torch_total_self_ms": sum(torch_ops.values())}


def _variant_changes(threads: int) -> dict[str, Callable[[Any], None]]:
    """Each ORT session setting changed alone from the chosen ones (``session_options``)."""
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel
    return {
        "chosen": lambda o: None,
        "graph optimisation basic": lambda o: setattr(o, "graph_optimization_level", level.ORT_ENABLE_BASIC),
        "graph optimisation extended (no NCHWc layout)":
            lambda o: setattr(o, "graph_optimization_level", level.ORT_ENABLE_EXTENDED),
        "memory arena off": lambda o: setattr(o, "enable_cpu_mem_arena", False),
        "memory pattern on": lambda o: setattr(o, "enable_mem_pattern", True),
        "spinning threads": lambda o: o.add_session_config_entry("session.intra_op.allow_spinning", "1"),
        f"intra-op threads {max(1, threads // 2)}": lambda o: setattr(o, "intra_op_num_threads", max(1, threads // 2)),
    }


def _variant_session(onnx_path: Path, threads: int, change: Callable[[Any], None]) -> Any:
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    from ttsr.backends.ort.runner import _session_model, session_options
    from ttsr.onnx_io import load_onnx

    model, _ = _session_model(load_onnx(onnx_path, RuntimeError, "export it first"), threads)
    options = session_options(threads)
    options.register_custom_ops_library(get_library_path())
    change(options)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_variant_times(onnx_path: Path, side: int, threads: int, runs: int) -> dict[str, float]:
    """In the child: median time of each setting, the sessions run round-robin (same load for all)."""
    inputs = _inputs(side, seed=side).as_dict()
    sessions = {name: _variant_session(onnx_path, threads, change)
                for name, change in _variant_changes(threads).items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        session.run(None, inputs)
    for _ in range(runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, inputs)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def ort_variant_peak(onnx_path: Path, side: int, threads: int, name: str) -> float:
    """In the child: the process's peak RSS (MB) over two runs of one setting's session."""
    session = _variant_session(onnx_path, threads, _variant_changes(threads)[name])
    inputs = _inputs(side, seed=side).as_dict()
    _reset_peak()
    for _ in range(2):
        session.run(None, inputs)
    return _status_kib("VmHWM") / 1024


def ort_variants(onnx_path: Path, common: list[str], threads: int) -> list[dict]:
    """Time (interleaved, one process) and peak memory (one process each) of every setting."""
    times = _child("variant-times", str(onnx_path), *common)
    rows = []
    for name, ms in times.items():
        peak = _child("variant-peak", str(onnx_path), name, *common)
        rows.append({"setting": name, "median_ms": ms, "vs_chosen": ms / times["chosen"], "peak_rss_mb": peak})
    return rows


def _child(task: str, *args: str) -> Any:
    command = [sys.executable, __file__, "--child", task, *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=_CHILD_ENV)
    if done.returncode != 0:
        raise click.ClickException(f"{task} failed:\n{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_seeded(folder: Path) -> Path:
    from ttsr.model import build_model
    from ttsr.pipeline import make_graph
    from ttsr.provenance import Source

    return make_graph(build_model(seed=SEED), "rewritten", folder, weights=Source(seed=SEED))


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """Two small panels (time, peak memory against LR side), drawn with Pillow."""
    from PIL import Image, ImageDraw

    width, height, margin = 360, 240, 44
    colours = {"torch": (214, 39, 40), "ort": (31, 119, 180)}
    image = Image.new("RGB", (2 * width, height), "white")
    draw = ImageDraw.Draw(image)
    sides = sorted({row["lr"] for rows in results.values() for row in rows})
    for panel, (key, label) in enumerate((("median_ms", "ms per image"), ("peak_rss_mb", "peak RSS MB"))):
        x0 = panel * width
        top = max(row[key] for rows in results.values() for row in rows) * 1.1
        draw.rectangle([x0 + margin, 10, x0 + width - 10, height - margin], outline="black")
        draw.text((x0 + margin, height - margin + 22), f"{label} vs LR side (Ref = 4x)", fill="black")
        draw.text((x0 + 2, 10), f"{top:.0f}", fill="black")
        draw.text((x0 + 2, height - margin - 10), "0", fill="black")

        def point(side: int, value: float, x0: int = x0, top: float = top) -> tuple[float, float]:
            span = (sides[-1] - sides[0]) or 1
            x = x0 + margin + 10 + (side - sides[0]) / span * (width - margin - 40)
            return x, height - margin - value / top * (height - margin - 20)

        for side in sides:
            draw.text((point(side, 0)[0] - 8, height - margin + 4), str(side), fill="black")
        for row_index, (backend, rows) in enumerate(results.items()):
            points = [point(row["lr"], row[key]) for row in rows]
            draw.line(points, fill=colours[backend], width=2)
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colours[backend])
            draw.text((x0 + margin + 8, 14 + 12 * row_index), backend, fill=colours[backend])
    with atomic_output(path) as temp:
        image.save(temp, format="PNG")


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = parse_size_list(text)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if any(side < 4 for side in sizes):
        raise click.UsageError(f"--sizes {text!r}: every LR side must be >= 4")
    return sorted(sizes)


@click.command(epilog="Example: bench_cpu_pipeline.py --sizes 40,80 --runs 3 --threads 2 --variants")
@click.option("--sizes", default="40,80,120", show_default=True, help="LR sides; Ref sides are 4x.")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(min=1),
              help="Timed runs per size after one warm-up; the median is reported.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(min=1),
              help="torch.set_num_threads and ORT's intra-op threads (the twin follows ORT's).")
@click.option("--profile-size", default=40, show_default=True, type=click.IntRange(min=4),
              help="LR side of the one image profiled.")
@click.option("--variants", is_flag=True, help="Also time ORT session settings against the chosen ones.")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Rewritten graph of the seeded model (default: exported into a temporary folder).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench-cpu-pipeline.json"), show_default=True)
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench-cpu-pipeline.png"), show_default=True)
@click.option("--child", hidden=True)
@click.argument("child_args", nargs=-1, type=click.UNPROCESSED)
def main(sizes: str, runs: int, threads: int, profile_size: int, variants: bool, onnx_path: Path | None,
         json_path: Path, png_path: Path, child: str | None, child_args: tuple[str, ...]) -> None:
    """Per-image time and peak memory of the torch and ort backends, and where the time goes."""
    sides = parse_sizes(sizes)
    if child is not None:
        path = Path(child_args[0])
        tasks = {"profile": lambda: profile_image(path, profile_size, threads),
                 "variant-times": lambda: ort_variant_times(path, profile_size, threads, runs),
                 "variant-peak": lambda: ort_variant_peak(path, profile_size, threads, child_args[1])}
        if child in BACKENDS:
            serve_backend(child, path, threads)
            return
        click.echo(json.dumps(tasks[child]()))
        return
    for target in (json_path, png_path):
        if not target.parent.is_dir():
            raise click.UsageError(f"{target}: folder {target.parent} does not exist; create it first")
    with tempfile.TemporaryDirectory() as folder:
        if onnx_path is None:
            click.echo("exporting the seeded model (rewritten graph) ...")
            onnx_path = export_seeded(Path(folder))
        elif not onnx_path.is_file():
            raise click.UsageError(f"--onnx {onnx_path}: no such file; omit it to export the seeded model")
        common = ["--sizes", sizes, "--runs", str(runs), "--threads", str(threads),
                  "--profile-size", str(profile_size)]
        results = measure_backends(onnx_path, common, sides, runs)
        profile = _child("profile", str(onnx_path), *common)
        settings = ort_variants(onnx_path, common, threads) if variants else []
    load = os.getloadavg()
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": load},
              "threads": threads, "runs": runs, "results": results, "profile": profile, "ort_settings": settings}
    click.echo(f"\n{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
               f"{threads} threads; median of {runs} interleaved runs after a warm-up; seeded model, random images")
    rows = []
    for torch_row, ort_row in zip(results["torch"], results["ort"]):
        rows.append([f"{torch_row['lr']} / {torch_row['ref']}", f"{torch_row['median_ms']:.0f}",
                     f"{ort_row['median_ms']:.0f}", f"{torch_row['median_ms'] / ort_row['median_ms']:.2f}x",
                     f"{torch_row['peak_rss_mb']:.0f}", f"{ort_row['peak_rss_mb']:.0f}"])
    click.echo(markdown_table(["LR / Ref", "torch ms", "ort ms", "ort speed-up", "torch peak RSS MB", "ort peak RSS MB"],
                      rows))
    click.echo(f"\nOne image, LR {profile['lr']} / Ref {profile['ref']}: ORT run {profile['ort_wall_ms']:.0f} ms")
    total = sum(profile["ort_by_op_ms"].values())
    click.echo(markdown_table(["ORT op type", "ms", "share"],
                      [[op, f"{ms:.1f}", f"{ms / total:.0%}"] for op, ms in list(profile["ort_by_op_ms"].items())[:8]]))
    click.echo(markdown_table(["twin stage (same image)", "ms"],
                      [[stage, f"{ms:.1f}"] for stage, ms in profile["twin_stages_ms"].items()]))
    torch_total = profile["torch_total_self_ms"]
    click.echo(markdown_table(["PyTorch op (self time)", "ms", "share"],
                      [[op, f"{ms:.1f}", f"{ms / torch_total:.0%}"]
                       for op, ms in list(profile["torch_top_ops_self_ms"].items())[:8]]))
    if settings:
        click.echo(markdown_table([f"ORT setting (LR {profile_size}), one change each", "median ms", "time vs chosen",
                           "peak RSS MB"],
                          [[s["setting"], f"{s['median_ms']:.0f}", f"{s['vs_chosen']:.2f}", f"{s['peak_rss_mb']:.0f}"]
                           for s in settings]))
    write_json_atomic(json_path, report)
    plot(results, png_path)
    click.echo(f"\nwrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
