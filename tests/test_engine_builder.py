"""The builder's checks that run without TensorRT, on small hand-made ONNX graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ttsr import contract
from ttsr.backends.profiles import Profile, ProfileError
from ttsr.backends.trt.builder import BuildError, BuildOptions, check_options, plugin_memory, require_tensorrt
from ttsr.contract import Shapes
from ttsr.onnx_io import OnnxInfoError, inspect_onnx, record_source
from ttsr.plugin.native import chunk_size, workspace_size
from ttsr.provenance import Source

INPUTS = ("lq", "lq_up", "ref", "ref_downup")


def graph(path, *, rewritten=True, weights=TensorProto.FLOAT, lq_dims=("N", 3, "H", "W")):
    """Four TTSR-named inputs, one plugin-like node (or not) and one weight of the given dtype."""
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                            list(lq_dims) if name == "lq" else ["N", 3, None, None])
              for name in INPUTS]
    output = helper.make_tensor_value_info("sr", TensorProto.FLOAT, None)
    weight = helper.make_tensor("w", weights, [1], [1.0])
    op = contract.OP_TYPE if rewritten else "Col2Im"
    nodes = [helper.make_node(op, list(INPUTS) + ["w"], ["sr"],
                              domain=contract.DOMAIN if rewritten else "")]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, [output], [weight]))
    onnx.save(model, path)
    return path


def options(onnx_path, **overrides):
    values = dict(onnx_path=onnx_path, output=onnx_path.with_suffix(".engine"),
                  profiles=[Profile((8, 8), (16, 16), (32, 32), (32, 32), (64, 64), (128, 128))],
                  plugin_library=onnx_path.with_suffix(".so"), precision="fp32")
    values.update(overrides)
    return BuildOptions(**values)


def test_inspect_reads_inputs_precision_and_recorded_checkpoint(tmp_path):
    path = graph(tmp_path / "g.onnx", weights=TensorProto.FLOAT16, lq_dims=(1, 3, 16, "W"))
    info = inspect_onnx(path)
    assert info.inputs["lq"] == [1, 3, 16, None]
    assert info.precision == "fp16" and info.rewritten and info.checkpoint_sha256 is None
    record_source(path, Source(checkpoint_sha256="ab" * 32))
    record_source(path, Source(checkpoint_sha256="cd" * 32))
    assert inspect_onnx(path).checkpoint_sha256 == "cd" * 32
    assert [p.key for p in onnx.load(path).metadata_props].count("ttsr.source_checkpoint_sha256") == 1


def test_unreadable_onnx(tmp_path):
    with pytest.raises(OnnxInfoError, match="no such ONNX file"):
        inspect_onnx(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x01garbage")
    with pytest.raises(OnnxInfoError, match="not a readable ONNX model"):
        inspect_onnx(tmp_path / "bad.onnx")


def test_check_options_accepts_a_matching_graph(tmp_path):
    check_options(options(graph(tmp_path / "g.onnx")))


def test_plain_export_is_refused(tmp_path):
    with pytest.raises(BuildError, match="has no TTSRSearchTransfer node"):
        check_options(options(graph(tmp_path / "g.onnx", rewritten=False)))


def test_precision_must_match_the_graph(tmp_path):
    fp32 = graph(tmp_path / "g32.onnx")
    with pytest.raises(BuildError, match="FP32 graph but a strongly typed fp16 build needs the FP16 graph"):
        check_options(options(fp32, precision="fp16"))
    check_options(options(fp32, precision="fp16", weak_fp16=True))  # weak typing starts from FP32
    fp16 = graph(tmp_path / "g16.onnx", weights=TensorProto.FLOAT16)
    check_options(options(fp16, precision="fp16"))
    with pytest.raises(BuildError, match="FP16 graph"):
        check_options(options(fp16, precision="fp32"))


def test_shapes_outside_the_graph_are_refused(tmp_path):
    static = graph(tmp_path / "g.onnx", lq_dims=(1, 3, 16, 16))
    with pytest.raises(ProfileError, match="graph input lq has static dim 2 = 16"):
        check_options(options(static))


@pytest.mark.parametrize("overrides, message", [
    (dict(precision="int8"), "precision 'int8'"),
    (dict(hardware_compatibility="turing_plus"), "hardware compatibility 'turing_plus'"),
    (dict(optimization_level=7), "optimisation level 7"),
    (dict(profiles=[]), "no optimisation profile"),
])
def test_bad_options(tmp_path, overrides, message):
    with pytest.raises(BuildError, match=message):
        check_options(options(graph(tmp_path / "g.onnx"), **overrides))


def test_missing_tensorrt_names_the_install_command():
    try:
        import tensorrt
    except ImportError:
        tensorrt = None
    if tensorrt is not None and hasattr(tensorrt, "Builder"):
        pytest.skip("TensorRT is installed here")
    with pytest.raises(BuildError, match=r"pip install tensorrt-cu13 pycuda` \(TensorRT for the CUDA major") as info:
        require_tensorrt()
    assert "\n" not in str(info.value)


def test_plugin_workspace_and_chunk_are_those_of_the_profiles_largest_shape():
    profile = Profile((35, 33), (40, 40), (40, 40), (480, 480), (480, 480), (480, 480), 1, 1, 2)
    largest = Shapes(2, 256, 40, 40, 120, 120, 256, 128, 64)
    memory = plugin_memory(profile, "fp32")
    assert memory.workspace_bytes == workspace_size(largest)
    assert memory.ref_chunk == chunk_size(largest) and memory.ref_positions == 120 * 120
    fp16 = plugin_memory(profile, "fp16")
    assert (fp16.workspace_bytes, fp16.ref_chunk) == (workspace_size(largest, np.float16),
                                                      chunk_size(largest, np.float16))


def test_profile_beyond_the_plugins_sizes():
    profile = Profile((12000, 12000), (12000, 12000), (12000, 12000), (64, 64), (64, 64), (64, 64))
    with pytest.raises(BuildError, match="LR 12000x12000..12000x12000.*not supported.*use a smaller profile"):
        plugin_memory(profile, "fp32")
