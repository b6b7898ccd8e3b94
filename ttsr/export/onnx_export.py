"""PyTorch TTSR -> ONNX with torch's dynamo exporter.

Batch, LR size and Ref size are dynamic and independent; the sizes derived
from them (``lq_up`` = 4H x 4W, ``sr`` = 4H x 4W, Ref = 4Hr x 4Wr) are
expressed as such in the graph instead of being baked in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import Tensor, nn

from ttsr.errors import first_line
from ttsr.model.ttsr import INPUT_NAMES, OUTPUT_NAME
from ttsr.onnx_io import save_checked_model

MIN_OPSET = 18
# Example sizes: batch 2 and no side equal to 1, so that the exporter keeps
# every dimension symbolic (it specialises sizes 0 and 1), and LR != Ref so
# that no two independent sizes are unified by accident.
DEFAULT_EXAMPLE_LR = (8, 12)
DEFAULT_EXAMPLE_REF = (36, 28)
DEFAULT_EXAMPLE_BATCH = 2
# The example's inputs and relevance matrix may take this much memory (the default takes 0.13 MiB).
EXAMPLE_BUDGET_BYTES = 1 << 30


class ExportError(RuntimeError):
    """The model or its example inputs cannot be exported as asked."""


def example_bytes(lr_size: tuple[int, int], ref_size: tuple[int, int], batch: int) -> int:
    """Float32 bytes of the example inputs and of the search's relevance matrix (LR positions x Ref/4
    positions), the largest tensor of the model at that size."""
    (h, w), (hr4, wr4) = lr_size, ref_size
    inputs = batch * 3 * (17 * h * w + 2 * hr4 * wr4)  # lq, lq_up (16x the area), ref, ref_downup
    relevance = batch * h * w * (hr4 // 4) * (wr4 // 4)
    return 4 * (inputs + relevance)


def check_example_size(lr_size: tuple[int, int], ref_size: tuple[int, int], batch: int) -> None:
    """ExportError, before anything is allocated, for an example too large to trace here.

    The graph takes any size: the example only shapes the trace, so nothing is lost by a small one.
    """
    need = example_bytes(lr_size, ref_size, batch)
    if need > EXAMPLE_BUDGET_BYTES:
        (h, w), (hr4, wr4) = lr_size, ref_size
        raise ExportError(
            f"the example LR {h}x{w} with Ref {hr4}x{wr4}, batch {batch}, needs {need / 2**30:.3g} GiB to trace, "
            f"over {EXAMPLE_BUDGET_BYTES >> 30} GiB; the exported graph takes any size, the example only "
            f"shapes the trace: use a small one (default LR {DEFAULT_EXAMPLE_LR[0]}x{DEFAULT_EXAMPLE_LR[1]}, "
            f"Ref {DEFAULT_EXAMPLE_REF[0]}x{DEFAULT_EXAMPLE_REF[1]}, batch {DEFAULT_EXAMPLE_BATCH})")


def example_inputs(lr_size: tuple[int, int] = DEFAULT_EXAMPLE_LR,
                   ref_size: tuple[int, int] = DEFAULT_EXAMPLE_REF,
                   batch: int = DEFAULT_EXAMPLE_BATCH, seed: int = 0) -> tuple[Tensor, ...]:
    """Random, distinct example inputs (``lq``, ``lq_up``, ``ref``, ``ref_downup``); ExportError for an
    example too large to trace (:func:`check_example_size`)."""
    check_example_size(lr_size, ref_size, batch)
    (h, w), (hr4, wr4) = lr_size, ref_size
    gen = torch.Generator().manual_seed(seed)
    lq = torch.rand(batch, 3, h, w, generator=gen) * 2 - 1
    lq_up = torch.rand(batch, 3, 4 * h, 4 * w, generator=gen)
    ref = torch.rand(batch, 3, hr4, wr4, generator=gen)
    ref_downup = torch.rand(batch, 3, hr4, wr4, generator=gen)
    return lq, lq_up, ref, ref_downup


def _checked_example(example: Sequence[Tensor]) -> tuple[Tensor, ...]:
    if len(example) != len(INPUT_NAMES):
        raise ExportError(f"example must hold {len(INPUT_NAMES)} tensors {INPUT_NAMES}, "
                          f"got {len(example)}")
    lq, lq_up, ref, ref_downup = example
    n, _, h, w = lq.shape
    hr4, wr4 = ref.shape[2:]
    wanted = {"lq_up": (n, 3, 4 * h, 4 * w), "ref_downup": tuple(ref.shape)}
    for name, tensor in (("lq_up", lq_up), ("ref_downup", ref_downup)):
        if tuple(tensor.shape) != wanted[name]:
            raise ExportError(f"example {name} has shape {tuple(tensor.shape)}, "
                              f"expected {wanted[name]}")
    if hr4 % 4 or wr4 % 4:
        raise ExportError(f"example ref is {hr4}x{wr4}; its sides must be multiples of 4")
    if min(n, h, w, hr4 // 4, wr4 // 4) < 2:
        raise ExportError("example batch, LR sides and Ref sides / 4 must all be >= 2 "
                          "(the exporter bakes sizes of 1 into the graph)")
    # The exporter merges graph inputs that share one tensor object (or
    # storage): the graph would then feed, say, ``ref`` to all three texture
    # extractor calls.  Clones make every input its own tensor.
    return tuple(t.detach().clone().contiguous() for t in example)


def _dynamic_shapes() -> dict[str, dict[int, Any]]:
    batch = torch.export.Dim("N", min=1)
    h, w = torch.export.Dim("H", min=1), torch.export.Dim("W", min=1)
    hr, wr = torch.export.Dim("Hr", min=1), torch.export.Dim("Wr", min=1)
    lr = {0: batch, 2: h, 3: w}
    lr_up = {0: batch, 2: 4 * h, 3: 4 * w}
    ref = {0: batch, 2: 4 * hr, 3: 4 * wr}
    return dict(zip(INPUT_NAMES, (lr, lr_up, ref, ref)))


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = MIN_OPSET,
                example: Sequence[Tensor] | None = None) -> Path:
    """Export ``model`` (a TTSR) to ``path`` and return the path.

    ``example``: inputs to trace with (default: :func:`example_inputs`).  The
    file is checked with ``onnx.checker`` and only then moved into place.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} has no Col2Im (F.fold); use opset >= {MIN_OPSET}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"output folder {path.parent} does not exist; create it first")
    args = _checked_example(example if example is not None else example_inputs())
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings(), _quiet_exporter_log():
        # The exporter warns about its own internals (deprecated decompositions,
        # axis renaming) and about torchvision ops it cannot register.
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                model, args, dynamo=True, opset_version=opset, input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME], dynamic_shapes=_dynamic_shapes(),
                external_data=False, verbose=False)
        except Exception as exc:  # the exporter raises many unrelated types
            raise ExportError(f"torch.onnx.export failed: {first_line(exc)}") from exc
    if program is None:  # only the TorchScript exporter (dynamo=False) returns nothing
        raise ExportError(f"torch.onnx.export returned no ONNX program (torch {torch.__version__}); "
                          f"install the torch version pyproject.toml pins")
    try:
        save_checked_model(program.model_proto, path)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {first_line(exc)}") from exc
    return path


@contextlib.contextmanager
def _quiet_exporter_log() -> Iterator[None]:
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
