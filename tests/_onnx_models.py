"""One export of the seeded TTSR per test session, shared by the export, surgery, ORT and parser tests.

The dynamo export of the full model takes 10-20 s, so it runs once, through
the library's graph chain (:func:`ttsr.pipeline.make_graph`) from a checkpoint
file: each test module's session fixture calls :func:`onnx_models`, which
caches its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsr.atomic import file_sha256
from ttsr.data import ModelInputs
from ttsr.model import TTSR, build_model, load_checkpoint, save_mmediting_checkpoint
from ttsr.pipeline import make_graph
from ttsr.provenance import Source
from ttsr.surgery import RewriteReport, convert_fp16, rewrite_search_transfer

# (LR HxW, Ref HxW, batch): square, non-square with Ref != LR, batch 2 with a wide Ref.
PARITY_SHAPES = [((8, 8), (32, 32), 1), ((10, 14), (44, 36), 1), ((9, 7), (24, 40), 2)]


@dataclass(frozen=True)
class OnnxModels:
    model: TTSR  # loaded from ``checkpoint``
    checkpoint: Path
    plain: Path
    rewritten: Path
    fp16: Path  # float32 I/O
    fp16_io16: Path
    report: RewriteReport


_CACHE: list[OnnxModels] = []


def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> OnnxModels:
    """The seeded TTSR saved as an mmediting checkpoint, exported, rewritten and made FP16 from it."""
    if not _CACHE:
        root = tmp_path_factory.mktemp("onnx")
        checkpoint = save_mmediting_checkpoint(build_model(seed=0), root / "ttsr.pth")
        model = load_checkpoint(checkpoint)
        fp16 = make_graph(model, "fp16", root, weights=Source(checkpoint_sha256=file_sha256(checkpoint)),
                          paths={"plain": root / "ttsr.plain.onnx", "rewritten": root / "ttsr.fp32.onnx",
                                 "fp16": root / "ttsr.onnx"})
        # The rewrite again, for its report (it takes well under a second).
        report = rewrite_search_transfer(root / "ttsr.plain.onnx", root / "ttsr.rewritten.onnx")
        fp16_io16 = convert_fp16(report.dst, root / "ttsr.fp16-io16.onnx", io_dtype="float16")
        _CACHE.append(OnnxModels(model, checkpoint, root / "ttsr.plain.onnx", report.dst, fp16,
                                 fp16_io16, report))
    return _CACHE[0]


def random_inputs(lr_size: tuple[int, int], ref_size: tuple[int, int], batch: int,
                  seed: int = 1) -> ModelInputs:
    """Inputs with the value ranges of real ones; every image of the batch is different."""
    rng = np.random.default_rng(seed)
    (h, w), (hr4, wr4) = lr_size, ref_size

    def image(height: int, width: int, low: float) -> np.ndarray:
        return rng.uniform(low, 1.0, (batch, 3, height, width)).astype(np.float32)

    return ModelInputs(lq=image(h, w, -1.0), lq_up=image(4 * h, 4 * w, 0.0),
                       ref=image(hr4, wr4, 0.0), ref_downup=image(hr4, wr4, 0.0))


def torch_output(model: TTSR, inputs: ModelInputs) -> np.ndarray:
    with torch.inference_mode():
        return model(*inputs.as_torch()).numpy()

