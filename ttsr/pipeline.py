"""The one graph chain every command uses: PyTorch model -> ONNX export -> search-transfer rewrite ->
FP16 pass, run as far as the asked graph needs, from a model or from a graph part of the way along.

Stages, in order: ``plain`` (the export), ``rewritten`` (one TTSRSearchTransfer node, FP32),
``fp16`` (the rewritten graph in FP16).  The weights' source (checkpoint hash or seed) recorded in the
export travels with the rewrite and the FP16 pass (both keep the graph's metadata).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ttsr.export import ExportError
from ttsr.onnx_io import OnnxInfoError, inspect_onnx, record_source
from ttsr.provenance import Source
from ttsr.surgery import FP16Error, RewriteError

if TYPE_CHECKING:
    from torch import Tensor

    from ttsr.model.ttsr import TTSR

STAGES = ("plain", "rewritten", "fp16")


class PipelineError(ValueError):
    """A graph that cannot become the asked one (an FP16 graph asked for in FP32); one line."""


# Everything the chain raises with a one-line message naming the fix.
GRAPH_ERRORS: tuple[type[Exception], ...] = (ExportError, RewriteError, FP16Error, OnnxInfoError, PipelineError)


@dataclass(frozen=True)
class Step:
    """One step the chain ran: ``export``, ``rewrite`` or ``fp16``, what it wrote, how long it took."""

    name: str
    path: Path
    seconds: float
    summary: str = ""


def graph_stage(path: str | os.PathLike[str]) -> str:
    """Which of :data:`STAGES` the graph in ``path`` is at."""
    info = inspect_onnx(path)
    if info.precision == "fp16":
        return "fp16"
    return "rewritten" if info.rewritten else "plain"


def make_graph(source: "TTSR | str | os.PathLike[str]", target: str, workdir: str | os.PathLike[str], *,
               paths: Mapping[str, Path] | None = None, io_dtype: str = "float32", opset: int | None = None,
               example: "Sequence[Tensor] | None" = None, weights: Source | None = None,
               on_step: Callable[[Step], None] | None = None) -> Path:
    """The ``target`` graph (one of :data:`STAGES`) made from ``source``, a TTSR model or an ONNX file.

    A file already at ``target`` (or a rewritten one asked for as ``plain``) is returned as it is;
    the steps still needed write to ``paths[stage]`` when given, else into ``workdir``.  From a model:
    ``opset`` and ``example`` go to the exporter, ``weights`` (the model's source) is recorded in the export.
    ``io_dtype`` is the FP16 graph's input/output dtype.  ``on_step`` hears of every finished step.
    Raises one of :data:`GRAPH_ERRORS`.
    """
    if target not in STAGES:
        raise PipelineError(f"graph stage {target!r} is not one of {', '.join(STAGES)}")
    paths = dict(paths or {})
    workdir = Path(workdir)

    def done(name: str, path: Path, start: float, summary: str = "") -> None:
        if on_step is not None:
            on_step(Step(name, path, time.perf_counter() - start, summary))

    if isinstance(source, (str, os.PathLike)):
        current = Path(source)
        stem, stage = current.stem, graph_stage(current)
    else:
        from ttsr.export import export_onnx
        from ttsr.export.onnx_export import MIN_OPSET

        current, stem, stage = paths.get("plain", workdir / "ttsr.onnx"), "ttsr", "plain"
        start = time.perf_counter()
        export_onnx(source, current, opset=opset or MIN_OPSET, example=example)
        if weights is not None and weights.known:
            record_source(current, weights)
        done("export", current, start)
    if STAGES.index(stage) >= STAGES.index(target):
        if stage == "fp16" and target != "fp16":
            raise PipelineError(f"{current} is an FP16 graph, the FP32 graph is needed here (give "
                                f"--checkpoint or the FP32 rewritten ONNX)")
        return current
    if stage == "plain":
        from ttsr.surgery import rewrite_search_transfer

        rewritten = paths.get("rewritten", workdir / f"{stem}.rewritten.onnx")
        start = time.perf_counter()
        report = rewrite_search_transfer(current, rewritten)
        done("rewrite", rewritten, start, report.summary())
        current = rewritten
    if target == "fp16":
        from ttsr.surgery import convert_fp16

        fp16 = paths.get("fp16", workdir / f"{stem}.fp16.onnx")
        start = time.perf_counter()
        convert_fp16(current, fp16, io_dtype=io_dtype)
        done("fp16", fp16, start)
        current = fp16
    return current
