"""The graph-surgeon rewrite: one contract node, roles found by structure, refusals."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _onnx_models import onnx_models, random_inputs
from ttsr import contract
from ttsr.export import example_inputs, export_onnx
from ttsr.model import SearchTransfer
from ttsr.surgery import RewriteError, is_rewritten, rewrite_search_transfer


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


def _plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == contract.OP_TYPE]


def test_block_becomes_one_contract_node(models):
    plain, rewritten = onnx.load(models.plain), onnx.load(models.rewritten)
    (node,) = _plugin_nodes(rewritten)
    assert node.domain == contract.DOMAIN
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs.pop("plugin_version") == contract.PLUGIN_VERSION.encode()
    assert attrs.pop("plugin_namespace") == contract.PLUGIN_NAMESPACE.encode()
    assert attrs == pytest.approx(contract.ATTRIBUTES)
    assert (contract.DOMAIN, 1) in {(o.domain, o.version) for o in rewritten.opset_import}
    ops = Counter(n.op_type for n in rewritten.graph.node)
    assert "Col2Im" not in ops and "MatMul" not in ops and "ArgMax" not in ops
    report = models.report
    plain_ops = Counter(n.op_type for n in plain.graph.node)
    assert report.removed_ops["Col2Im"] == plain_ops["Col2Im"] == 3
    assert report.nodes_before == len(plain.graph.node)
    assert report.nodes_after == len(rewritten.graph.node)
    assert report.nodes_removed == sum(report.removed_ops.values()) >= report.block_nodes > 0
    assert list(node.input) == [report.inputs[r] for r in contract.INPUT_NAMES]
    assert list(node.output) == [report.outputs[r] for r in contract.OUTPUT_NAMES]
    onnx.checker.check_model(str(models.rewritten), full_check=True)


def test_plugin_outputs_keep_symbolic_shapes(models):
    graph = onnx.load(models.rewritten).graph
    (node,) = _plugin_nodes(onnx.load(models.rewritten))
    infos = {v.name: v for v in graph.value_info}
    dims = [[d.dim_param or d.dim_value for d in infos[o].type.tensor_type.shape.dim]
            for o in node.output]
    n, _, h, w = dims[0]
    assert dims[0][1] == 1 and all(isinstance(d, str) for d in (n, h, w))
    assert dims[1][2:] == [h, w]
    assert dims[2][2:] == [f"2*{h}", f"2*{w}"]
    assert dims[3][2:] == [f"4*{h}", f"4*{w}"]


def test_boundary_tensors_are_the_blocks_inputs_and_outputs(models):
    """Expose the tensors the rewrite picked as outputs of the plain graph and compare with PyTorch."""
    report = models.report
    model = onnx.load(models.plain)
    picked = {**report.inputs, **report.outputs}
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in picked.values())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = random_inputs((6, 9), (28, 20), 2)
    results = dict(zip(picked, session.run(list(picked.values()), inputs.as_dict())))

    captured = {}

    def hook(module, args, output):
        captured.update(zip(contract.INPUT_NAMES, args))
        captured.update(zip(contract.OUTPUT_NAMES, output))

    handle = models.model.search_transfer.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            models.model(*inputs.as_torch())
    finally:
        handle.remove()
    for role in (*contract.INPUT_NAMES, *contract.OUTPUT_NAMES):
        assert results[role].shape == tuple(captured[role].shape), role
        assert np.abs(results[role] - captured[role].numpy()).max() <= 1e-5, role


def test_refuses_an_already_rewritten_graph(models, tmp_path):
    assert is_rewritten(models.rewritten) and not is_rewritten(models.plain)
    with pytest.raises(RewriteError, match="already rewritten") as info:
        rewrite_search_transfer(models.rewritten, tmp_path / "again.onnx")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_graph_without_scope_metadata(models, tmp_path):
    model = onnx.load(models.plain)
    for node in model.graph.node:
        del node.metadata_props[:]
    stripped = tmp_path / "stripped.onnx"
    onnx.save(model, stripped)
    with pytest.raises(RewriteError, match="no search-transfer block") as info:
        rewrite_search_transfer(stripped, tmp_path / "out.onnx")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.onnx").exists()


def test_refuses_missing_and_corrupt_files_and_keeps_an_existing_output(models, tmp_path):
    existing = tmp_path / "out.onnx"
    existing.write_bytes(b"previous")
    with pytest.raises(RewriteError, match="no such ONNX file"):
        rewrite_search_transfer(tmp_path / "missing.onnx", existing)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00not a model")
    with pytest.raises(RewriteError, match="not a readable ONNX model"):
        rewrite_search_transfer(corrupt, existing)
    with pytest.raises(RewriteError, match="already rewritten"):
        rewrite_search_transfer(models.rewritten, existing)
    assert existing.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.onnx", "out.onnx"]


class TwoBlocks(nn.Module):
    """Calls one search-transfer module twice: two blocks in the exported graph."""

    def __init__(self) -> None:
        super().__init__()
        self.search_transfer = SearchTransfer()

    def forward(self, lq, lq_up, ref, ref_downup):
        q, k = F.avg_pool2d(lq_up, 4), F.avg_pool2d(ref_downup, 4)
        v3, v2 = F.avg_pool2d(ref, 4), F.avg_pool2d(ref, 2)
        first = self.search_transfer(q, k, v3, v2, ref)[3]
        second = self.search_transfer(q, v3, k, v2, ref)[3]
        return first + second + lq_up


def test_refuses_a_graph_with_two_blocks(tmp_path):
    path = export_onnx(TwoBlocks().eval(), tmp_path / "two.onnx", example=example_inputs((6, 6), (24, 20)))
    with pytest.raises(RewriteError, match="2 search-transfer blocks") as info:
        rewrite_search_transfer(path, tmp_path / "out.onnx")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.onnx").exists()
