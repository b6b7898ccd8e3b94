"""TensorRT-RTX builds the rewritten graphs into real strongly typed engines on the CPU, plugin node aside.

TensorRT-RTX aborts when a plugin layer is added, so each rewritten graph is
cut at its TTSRSearchTransfer node (:func:`_split.split_at_plugin`, a test helper)
and both plugin-free parts are built, in a child process
(``_rtx_build_probe.py``), through ``ttsr.backends.trt.builder``'s own steps, for one
compute capability, with our optimisation profile mapped onto the parts'
inputs.  TensorRT-RTX compiles ahead of time, so no GPU is needed; without
one the engines cannot be loaded, so their I/O dtypes come from the builder's
engine layer report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from _onnx_models import onnx_models, random_inputs
from ttsr import contract
from ttsr.backends.ort.runner import OrtBackend
from ttsr.backends.profiles import Profile, Shape
from ttsr.plugin.native import search_transfer_cpu
from _split import SplitError, split_at_plugin

PROBE = Path(__file__).with_name("_rtx_build_probe.py")
# Every compute capability TensorRT-RTX offers builds these parts in the same time; SM80 is
# the oldest GPU generation that ``--hardware-compat ampere_plus`` targets.
COMPUTE_CAPABILITY = "SM80"
# Non-square LR and Ref sizes, so a swapped height and width cannot pass.
PROFILE = Profile(lr_min=(8, 10), lr_opt=(12, 12), lr_max=(16, 20),
                  ref_min=(32, 40), ref_opt=(48, 48), ref_max=(64, 72),
                  batch_min=1, batch_opt=2, batch_max=2)
# Graph -> (dtype of the graph's own inputs and output, dtype of the plugin's tensors).
VARIANTS = {"rewritten": ("float32", "float32"), "fp16": ("float32", "float16"),
            "fp16_io16": ("float16", "float16")}
GRAPH_INPUTS = ("lq", "lq_up", "ref", "ref_downup")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


def plugin_node(model: onnx.ModelProto) -> onnx.NodeProto:
    (node,) = [n for n in model.graph.node if n.op_type == contract.OP_TYPE]
    return node


def dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def value_infos(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    graph = model.graph
    return {v.name: v for v in [*graph.value_info, *graph.input, *graph.output]}


def part_shapes(part: onnx.ModelProto, model: onnx.ModelProto, profile: Profile
                ) -> dict[str, tuple[Shape, Shape, Shape]]:
    """The profile's (min, opt, max) shape of each input of ``part``.

    Graph inputs take :meth:`Profile.shapes`; the plugin's tensors follow from
    the same batch, LR and Ref sizes by the contract's shape rules (the search
    runs on the Ref grid / 4), with the channel counts of ``model``.
    """
    node = plugin_node(model)
    roles = dict(zip(node.input, contract.INPUT_NAMES)) | dict(zip(node.output, contract.OUTPUT_NAMES))
    infos = value_infos(model)
    ck, c3, c2, c1 = (int(dims(infos[node.input[i]])[1]) for i in (0, 2, 3, 4))
    levels = [(profile.batch_min, profile.lr_min, profile.ref_min),
              (profile.batch_opt, profile.lr_opt, profile.ref_opt),
              (profile.batch_max, profile.lr_max, profile.ref_max)]
    plugin_levels = []
    for n, (h, w), (hr, wr) in levels:
        shapes = contract.Shapes(n, ck, h, w, hr // 4, wr // 4, c3, c2, c1)
        plugin_levels.append(dict(zip(contract.INPUT_NAMES, shapes.expected_inputs()))
                             | dict(zip(contract.OUTPUT_NAMES, shapes.outputs())))
    graph_shapes = profile.shapes()
    return {i.name: graph_shapes[i.name] if i.name in graph_shapes
            else tuple(level[roles[i.name]] for level in plugin_levels)
            for i in part.graph.input}


def run_probe(parts: list[dict[str, object]], tmp_path: Path) -> list[dict[str, object]]:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"compute_capability": COMPUTE_CAPABILITY, "workspace_mib": 256,
                                   "parts": parts}))
    child = subprocess.run([sys.executable, str(PROBE), str(request)], capture_output=True,
                           text=True, timeout=600)
    assert child.returncode == 0, f"TensorRT-RTX build process failed:\n{child.stderr[-3000:]}"
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def builds(models, tmp_path_factory):
    """variant -> (part A, part B, their build results), all built by one child process.

    A last build is part B of the FP32 graph with t1 given 3x instead of 4x the
    LR size: the builder must refuse it, or a successful build would prove nothing
    about the profile.
    """
    root = tmp_path_factory.mktemp("rtx_build")
    requests, parts = [], {}
    for variant in VARIANTS:
        model = onnx.load(getattr(models, variant))
        parts[variant] = split_at_plugin(model)
        for tag, part in zip("AB", parts[variant]):
            onnx.save(part, root / f"{variant}.{tag}.onnx")
            requests.append({"onnx": str(root / f"{variant}.{tag}.onnx"),
                             "engine": str(root / f"{variant}.{tag}.engine"),
                             "shapes": part_shapes(part, model, PROFILE)})
    wrong = dict(requests[1]["shapes"])  # the FP32 graph's part B
    t1 = plugin_node(onnx.load(models.rewritten)).output[3]
    wrong[t1] = tuple((n, c, 3 * h // 4, 3 * w // 4) for n, c, h, w in wrong[t1])
    requests.append({**requests[1], "engine": str(root / "wrong_t1.engine"), "shapes": wrong})
    results = run_probe(requests, root)
    built = {variant: (*parts[variant], results[2 * i], results[2 * i + 1])
             for i, variant in enumerate(VARIANTS)}
    return built, results[-1]


def test_split_partitions_the_graph_at_the_plugin_node(models):
    model = onnx.load(models.rewritten)
    node = plugin_node(model)
    part_a, part_b = split_at_plugin(model)
    assert [i.name for i in part_a.graph.input] == ["lq_up", "ref", "ref_downup"]
    assert [o.name for o in part_a.graph.output] == list(node.input)
    assert [i.name for i in part_b.graph.input] == [*node.output, "lq"]
    assert [o.name for o in part_b.graph.output] == ["sr"]
    # every other node in exactly one part
    names_a = {n.name for n in part_a.graph.node}
    names_b = {n.name for n in part_b.graph.node}
    assert not names_a & names_b
    assert names_a | names_b == {n.name for n in model.graph.node} - {node.name}
    # dynamic dims and dtypes as in the full graph
    infos = value_infos(model)
    for part in (part_a, part_b):
        onnx.checker.check_model(part)
        for value in [*part.graph.input, *part.graph.output]:
            assert value.type == infos[value.name].type, value.name
    assert dims(part_b.graph.input[3]) == ["N", 64, "4*H", "4*W"]


def test_split_refuses_a_graph_without_exactly_one_plugin_node(models):
    with pytest.raises(SplitError, match="has 0 TTSRSearchTransfer nodes"):
        split_at_plugin(onnx.load(models.plain))


def test_parts_with_the_cpu_search_compute_the_full_graph(models):
    model = onnx.load(models.rewritten)
    node = plugin_node(model)
    part_a, part_b = split_at_plugin(model)
    inputs = random_inputs((9, 7), (24, 40), batch=2)
    feeds = inputs.as_dict()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session_a = ort.InferenceSession(part_a.SerializeToString(), options)
    features = session_a.run(None, {i.name: feeds[i.name] for i in part_a.graph.input})
    searched = search_transfer_cpu(*features)
    session_b = ort.InferenceSession(part_b.SerializeToString(), options)
    (sr,) = session_b.run(None, dict(zip(node.output, searched)) | {"lq": feeds["lq"]})
    expected = OrtBackend(models.rewritten, threads=1).run(inputs)
    np.testing.assert_allclose(sr, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parts_build_into_strongly_typed_engines(builds, models, variant):
    part_a, part_b, result_a, result_b = builds[0][variant]
    io_dtype, plugin_dtype = VARIANTS[variant]
    for part, result in ((part_a, result_a), (part_b, result_b)):
        assert result["built"] and not result["errors"], result["errors"]
        assert not result["warnings"], result["warnings"]
        assert result["engine_bytes"] > 0
        assert Path(result["engine"]).stat().st_size == result["engine_bytes"]
        tensors = [v.name for v in [*part.graph.input, *part.graph.output]]
        expected = {name: io_dtype if name in (*GRAPH_INPUTS, "sr") else plugin_dtype
                    for name in tensors}
        assert result["network_dtypes"] == expected
        assert {name: result["engine_dtypes"].get(name) for name in tensors} == expected


def test_fp16_engines_store_half_precision_weights(builds):
    for index in (2, 3):  # part A, part B
        fp32 = builds[0]["rewritten"][index]["weights_bytes"]
        for variant in ("fp16", "fp16_io16"):
            assert 0.45 * fp32 < builds[0][variant][index]["weights_bytes"] < 0.55 * fp32


def test_a_profile_against_the_graphs_shape_rules_fails_the_build(builds):
    wrong = builds[1]
    assert not wrong["built"] and wrong["engine_bytes"] == 0
    assert not Path(wrong["engine"]).exists()
    assert any("violate shape constraints" in e for e in wrong["errors"]), wrong["errors"]
