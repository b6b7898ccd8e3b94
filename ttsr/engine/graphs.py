"""The graph an engine is built from: export, rewrite and FP16 pass, as far as a given input needs.

The build and infer commands accept a checkpoint (exported here), a plain
export (rewritten here) or the rewritten graph; these steps take any of them
to the rewritten graph of the requested precision.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ttsr import contract
from ttsr.engine.onnx_info import inspect_onnx, record_checkpoint

if TYPE_CHECKING:
    from ttsr.model.ttsr import TTSR


def export_rewritten(model: "TTSR", workdir: str | os.PathLike[str],
                     checkpoint_sha256: str | None = None) -> Path:
    """Export ``model`` and rewrite its search-transfer block; returns the FP32 rewritten graph."""
    from ttsr.export import export_onnx
    from ttsr.surgery import rewrite_search_transfer

    workdir = Path(workdir)
    plain = export_onnx(model, workdir / "ttsr.onnx")
    rewritten = workdir / "ttsr.rewritten.onnx"
    rewrite_search_transfer(plain, rewritten)
    if checkpoint_sha256 is not None:
        record_checkpoint(rewritten, checkpoint_sha256)
    return rewritten


def ensure_rewritten(onnx_path: str | os.PathLike[str], workdir: str | os.PathLike[str]) -> Path:
    """``onnx_path`` itself when it holds the plugin node, else its rewrite in ``workdir``."""
    onnx_path = Path(onnx_path)
    if inspect_onnx(onnx_path).rewritten:
        return onnx_path
    from ttsr.surgery import rewrite_search_transfer

    rewritten = Path(workdir) / f"{onnx_path.stem}.rewritten.onnx"
    rewrite_search_transfer(onnx_path, rewritten)
    return rewritten


def with_workspace_budget(onnx_path: str | os.PathLike[str], budget_mib: int,
                          workdir: str | os.PathLike[str]) -> Path:
    """``onnx_path`` for budget 0 (the plugin's default), else a copy in ``workdir`` whose plugin nodes
    carry the plugin field ``contract.WORKSPACE_BUDGET_FIELD``, which the ONNX parser hands to the plugin."""
    onnx_path = Path(onnx_path)
    if budget_mib == 0:
        return onnx_path
    import onnx

    model = onnx.load(onnx_path)
    for node in model.graph.node:
        if node.op_type == contract.OP_TYPE and node.domain == contract.DOMAIN:
            kept = [a for a in node.attribute if a.name != contract.WORKSPACE_BUDGET_FIELD]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.append(onnx.helper.make_attribute(contract.WORKSPACE_BUDGET_FIELD, budget_mib))
    budgeted = Path(workdir) / f"{onnx_path.stem}.budget.onnx"
    onnx.save(model, budgeted)
    return budgeted


def ensure_precision(onnx_path: str | os.PathLike[str], precision: str,
                     workdir: str | os.PathLike[str]) -> Path:
    """The graph in ``precision`` ("fp16" or "fp32"): ``onnx_path`` when it already is, else its FP16 pass
    (which keeps the graph's metadata, the recorded checkpoint among it).

    An FP16 graph cannot be turned back into FP32 without losing what rounding
    took away, so asking for fp32 from an FP16 graph is an error.
    """
    onnx_path = Path(onnx_path)
    if inspect_onnx(onnx_path).precision == precision:
        return onnx_path
    if precision == "fp32":
        raise ValueError(f"{onnx_path} is an FP16 graph; an fp32 engine needs the FP32 graph "
                         f"(give --checkpoint or the FP32 rewritten ONNX)")
    from ttsr.surgery.fp16 import convert_fp16

    fp16 = Path(workdir) / f"{onnx_path.stem}.fp16.onnx"
    convert_fp16(onnx_path, fp16, io_dtype="float32")
    return fp16
