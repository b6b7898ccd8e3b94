"""Bicubic Resize as Pad + depthwise Conv + DepthToSpace (the ORT backend's session copy) vs PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from ttsr.surgery.bicubic import bicubic_as_conv


def resize_model(channels: int, scales: tuple[float, ...], **attributes: object) -> onnx.ModelProto:
    attrs = {"mode": "cubic", "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75,
             **attributes}
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", **attrs)
    graph = helper.make_graph(
        [node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(scales, np.float32), "scales")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (7, 9), (16, 16)])
def test_replacement_matches_pytorch_bicubic(scale: int, size: tuple[int, int]) -> None:
    x = np.random.default_rng(scale).standard_normal((2, 5, *size)).astype(np.float32)
    model = resize_model(5, (1, 1, scale, scale))
    assert bicubic_as_conv(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Pad", "Conv", "DepthToSpace"]
    assert "scales" not in {t.name for t in model.graph.initializer}
    want = F.interpolate(torch.from_numpy(x), scale_factor=scale, mode="bicubic", align_corners=False).numpy()
    got = run(model, x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 2e-6


@pytest.mark.parametrize("scales, attributes", [
    ((1, 1, 1.5, 1.5), {}),                               # not an integer factor
    ((1, 1, 2, 3), {}),                                   # not the same factor on both axes
    ((1, 1, 2, 2), {"mode": "linear"}),
    ((1, 1, 2, 2), {"coordinate_transformation_mode": "align_corners"}),
    ((1, 1, 2, 2), {"exclude_outside": 1}),
])
def test_other_resizes_are_left_alone(scales: tuple[float, ...], attributes: dict) -> None:
    model = resize_model(3, scales, **attributes)
    before = model.SerializeToString()
    assert bicubic_as_conv(model) == 0
    assert model.SerializeToString() == before


def test_unknown_channel_count_is_left_alone() -> None:
    model = resize_model(3, (1, 1, 2, 2))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "C"
    assert bicubic_as_conv(model) == 0
