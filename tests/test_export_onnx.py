"""ONNX export: interface of the graph, dynamic sizes, parity with PyTorch, pitfalls and errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _onnx_models import PARITY_SHAPES, onnx_models, random_inputs, torch_output
from ttsr.backends.ort.runner import OrtBackend
from ttsr.export import ExportError, example_inputs, export_onnx
from ttsr.model import INPUT_NAMES, OUTPUT_NAME


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


def _dims(value_info: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


class TinyTTSR(nn.Module):
    """TTSR's four inputs and output grid, with an output that depends on each input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, lq, lq_up, ref, ref_downup):
        lr_grid = F.avg_pool2d(lq_up, 4) + lq
        ref_stat = ref.mean(dim=(2, 3), keepdim=True) * 2 - ref_downup.mean(dim=(2, 3), keepdim=True)
        return F.interpolate(self.conv(lr_grid + ref_stat), scale_factor=4.0, mode="nearest")


def test_graph_has_named_inputs_and_symbolic_derived_sizes(models):
    model = onnx.load(models.plain)
    graph = model.graph
    assert [i.name for i in graph.input] == list(INPUT_NAMES)
    assert [o.name for o in graph.output] == [OUTPUT_NAME]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
    dims = {v.name: _dims(v) for v in [*graph.input, *graph.output]}
    n, _, h, w = dims["lq"]
    assert all(isinstance(d, str) and d for d in (n, h, w))
    assert dims["lq_up"] == [n, 3, f"4*{h}", f"4*{w}"]
    assert dims[OUTPUT_NAME] == [n, 3, f"4*{h}", f"4*{w}"]
    ref_n, _, ref_h, ref_w = dims["ref"]
    assert ref_n == n and ref_h.startswith("4*") and ref_w.startswith("4*")
    assert {ref_h, ref_w}.isdisjoint({h, w, f"4*{h}", f"4*{w}"})
    assert dims["ref_downup"] == dims["ref"]
    onnx.checker.check_model(str(models.plain), full_check=True)


@pytest.mark.parametrize("lr_size, ref_size, batch", PARITY_SHAPES)
def test_plain_export_matches_pytorch_in_onnx_runtime(models, lr_size, ref_size, batch):
    inputs = random_inputs(lr_size, ref_size, batch)
    sr = OrtBackend(models.plain, threads=2).run(inputs)
    expected = torch_output(models.model, inputs)
    assert sr.shape == (batch, 3, 4 * lr_size[0], 4 * lr_size[1])
    assert np.abs(sr - expected).max() <= 1e-5


def test_aliased_example_inputs_still_give_four_independent_graph_inputs(tmp_path):
    model = TinyTTSR().eval()
    lq, lq_up, ref, _ = example_inputs()
    # The same tensor object as ref and ref_downup: unguarded, the exporter
    # would feed one graph input to both uses.
    path = export_onnx(model, tmp_path / "tiny.onnx", example=(lq, lq_up, ref, ref))
    graph = onnx.load(path).graph
    used = {name for node in graph.node for name in node.input}
    assert [i.name for i in graph.input] == list(INPUT_NAMES)
    assert set(INPUT_NAMES) <= used
    inputs = random_inputs((6, 10), (20, 28), 3)
    with torch.inference_mode():
        expected = model(*inputs.as_torch()).numpy()
    assert np.abs(OrtBackend(path).run(inputs) - expected).max() <= 1e-5


def test_export_errors_are_one_line_and_leave_no_file(tmp_path):
    model = TinyTTSR().eval()
    lq, lq_up, ref, ref_downup = example_inputs()
    cases = [
        (dict(opset=17), "opset 17"),
        (dict(example=(lq, lq_up[:, :, :-4], ref, ref_downup)), "lq_up"),
        (dict(example=(lq, lq_up, ref[:, :, :-2], ref_downup[:, :, :-2])), "multiples of 4"),
        (dict(example=example_inputs(batch=1)), ">= 2"),
        (dict(example=(lq, lq_up, ref)), "4 tensors"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(ExportError, match=fragment) as info:
            export_onnx(model, tmp_path / "out.onnx", **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(ExportError, match="does not exist"):
        export_onnx(model, tmp_path / "missing" / "out.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_export_leaves_no_partial_file(tmp_path):
    class Broken(TinyTTSR):
        def forward(self, lq, lq_up, ref, ref_downup):
            return torch.linalg.inv(lq)  # not square: fails while tracing

    with pytest.raises(ExportError, match="torch.onnx.export failed"):
        export_onnx(Broken().eval(), tmp_path / "out.onnx")
    assert list(tmp_path.iterdir()) == []
