"""One export of the seeded TTSR per test session, shared by the export, surgery, ORT and parser tests.

The dynamo export of the full model takes 10-20 s, so it runs once: each test
module's session fixture calls :func:`onnx_models`, which caches its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsr.data import ModelInputs
from ttsr.export import export_onnx
from ttsr.model import TTSR, build_model
from ttsr.surgery import RewriteReport, convert_fp16, rewrite_search_transfer

# (LR HxW, Ref HxW, batch): square, non-square with Ref != LR, batch 2 with a wide Ref.
PARITY_SHAPES = [((8, 8), (32, 32), 1), ((10, 14), (44, 36), 1), ((9, 7), (24, 40), 2)]


@dataclass(frozen=True)
class OnnxModels:
    model: TTSR
    plain: Path
    rewritten: Path
    fp16: Path  # float32 I/O
    fp16_io16: Path
    report: RewriteReport


_CACHE: list[OnnxModels] = []


def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> OnnxModels:
    if not _CACHE:
        root = tmp_path_factory.mktemp("onnx")
        model = build_model(seed=0)
        plain = export_onnx(model, root / "ttsr.onnx")
        report = rewrite_search_transfer(plain, root / "ttsr.rewritten.onnx")
        fp16 = convert_fp16(report.dst, root / "ttsr.fp16.onnx")
        fp16_io16 = convert_fp16(report.dst, root / "ttsr.fp16-io16.onnx", io_dtype="float16")
        _CACHE.append(OnnxModels(model, plain, report.dst, fp16, fp16_io16, report))
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

