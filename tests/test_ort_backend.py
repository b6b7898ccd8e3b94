"""ONNX Runtime backend: rewritten graph with the CPU twin vs PyTorch, FP16 rounding, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from _onnx_models import PARITY_SHAPES, onnx_models, random_inputs, torch_output
from ttsr import contract
from ttsr.backends.ort.runner import OrtBackend, OrtBackendError
from ttsr.model import INPUT_NAMES, OUTPUT_NAME
from ttsr.plugin import native


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


@pytest.mark.parametrize("lr_size, ref_size, batch", PARITY_SHAPES)
def test_rewritten_graph_matches_pytorch(models, lr_size, ref_size, batch):
    backend = OrtBackend(models.rewritten, threads=2)
    assert backend.has_plugin and backend.input_dtype == np.float32
    inputs = random_inputs(lr_size, ref_size, batch)
    sr = backend.run(inputs)
    assert sr.dtype == np.float32 and sr.shape == (batch, 3, 4 * lr_size[0], 4 * lr_size[1])
    assert np.abs(sr - torch_output(models.model, inputs)).max() <= 1e-5


def test_the_plugin_node_runs_on_the_cpu_twin(models, monkeypatch):
    calls = []
    real = native.search_transfer_cpu

    def spy(*arrays, ref_chunk=0, threads=0):
        calls.append(([a.shape for a in arrays], arrays[0].dtype, ref_chunk, threads))
        return real(*arrays, ref_chunk=ref_chunk, threads=threads)

    import ttsr.backends.ort.runner as ort_backend
    monkeypatch.setattr(ort_backend, "search_transfer_cpu", spy)
    inputs = random_inputs((6, 5), (16, 24), 1)
    OrtBackend(models.rewritten).run(inputs)
    OrtBackend(models.fp16, threads=1).run(inputs)
    q_shape = (1, 256, 6, 5)
    assert [(shapes[0], dtype) for shapes, dtype, _, _ in calls] == [(q_shape, np.float32),
                                                                      (q_shape, np.float16)]
    assert all(chunk == contract.ATTRIBUTES["ref_chunk"] for _, _, chunk, _ in calls)
    # The twin gets the session's intra-op threads (0: its own default, every core).
    assert [threads for *_, threads in calls] == [0, 1]


def _tiny_fp16_graph() -> onnx.ModelProto:
    """sr = (lq + 1000) - 1000 in float16, with TTSR's four inputs (three unused)."""
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT16, ["N", 3, None, None])
              for name in INPUT_NAMES]
    offset = numpy_helper.from_array(np.full((1, 3, 1, 1), 1000.0, np.float16), "offset")
    nodes = [helper.make_node("Add", ["lq", "offset"], ["shifted"]),
             helper.make_node("Sub", ["shifted", "offset"], [OUTPUT_NAME])]
    output = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT16, None)
    graph = helper.make_graph(nodes, "tiny", inputs, [output], [offset])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_fp16_graphs_round_every_op_to_float16(tmp_path):
    """ONNX Runtime alone would compute (lq + 1000) - 1000 in float32 and give back lq."""
    path = tmp_path / "tiny16.onnx"
    onnx.save(_tiny_fp16_graph(), path)
    backend = OrtBackend(path)
    assert backend.input_dtype == np.float16
    inputs = dataclasses.replace(random_inputs((4, 4), (8, 8), 1),
                                 lq=np.linspace(-1, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4))
    sr = backend.run(inputs)
    lq16, offset = inputs.lq.astype(np.float16), np.float16(1000.0)
    per_op = (lq16 + offset) - offset  # numpy rounds each float16 op to float16
    assert np.array_equal(sr, per_op.astype(np.float32))
    assert np.abs(sr - inputs.lq).max() >= 0.2  # float16 spacing at 1000 is 0.5


def test_intra_op_threads_block_instead_of_spinning(tmp_path):
    path = tmp_path / "tiny16.onnx"
    onnx.save(_tiny_fp16_graph(), path)
    options = OrtBackend(path).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    # One planned block for all intermediates raised the peak memory by a third at LR 80.
    assert not options.enable_mem_pattern and options.enable_cpu_mem_arena


def test_the_session_runs_no_cubic_resize(models):
    from ttsr.backends.ort.runner import _session_model
    from ttsr.onnx_io import load_onnx

    original = onnx.load(models.rewritten)
    cubic = [n for n in original.graph.node if n.op_type == "Resize"]
    assert len(cubic) >= 2  # the generator's bicubic upsamplings
    session_graph, _ = _session_model(load_onnx(models.rewritten, OrtBackendError, ""))
    assert not [n for n in session_graph.graph.node if n.op_type == "Resize"]
    shuffles = sum(n.op_type == "DepthToSpace" for n in original.graph.node)  # the generator's own
    assert sum(n.op_type == "DepthToSpace" for n in session_graph.graph.node) == shuffles + len(cubic)


def test_bad_graphs_are_refused_with_one_line(models, tmp_path):
    with pytest.raises(OrtBackendError, match="no such ONNX file"):
        OrtBackend(tmp_path / "missing.onnx")
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00not a model")
    with pytest.raises(OrtBackendError, match="not a readable ONNX model") as info:
        OrtBackend(tmp_path / "corrupt.onnx")
    assert "\n" not in str(info.value)
    model = onnx.load(models.rewritten)
    (node,) = [n for n in model.graph.node if n.op_type == contract.OP_TYPE]
    for attr in node.attribute:
        if attr.name == "patch_size":
            attr.i = 5
    bad = tmp_path / "bad.onnx"
    onnx.save(model, bad)
    with pytest.raises(OrtBackendError, match="patch_size=5") as info:
        OrtBackend(bad)
    assert "\n" not in str(info.value)
