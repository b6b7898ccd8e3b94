"""The FP16 pass: dtypes, explicit casts, I/O choice, refusals, and accuracy on the demo pair."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto

from _onnx_models import onnx_models, random_inputs, torch_output
from ttsr import contract
from ttsr.backends.ort.runner import OrtBackend
from ttsr.cli.export import fp16_estimate_command
from ttsr.model import INPUT_NAMES, OUTPUT_NAME
from ttsr.onnx_io import record_source
from ttsr.provenance import Source
from ttsr.surgery import FP16Error, convert_fp16

FP16, FP32 = TensorProto.FLOAT16, TensorProto.FLOAT
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "pairs"


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


def _io_types(model: onnx.ModelProto) -> dict[str, int]:
    return {v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}


def test_weights_and_activations_are_float16_with_casts_at_float32_io(models):
    model = onnx.load(models.fp16)
    graph = model.graph
    assert _io_types(model) == {name: FP32 for name in (*INPUT_NAMES, OUTPUT_NAME)}
    consumers = {i for n in graph.node for i in n.input}
    casts = [n for n in graph.node if n.op_type == "Cast"]
    cast_in = {n.input[0] for n in casts if n.attribute[0].i == FP16}
    cast_out = {n.output[0] for n in casts if n.attribute[0].i == FP32}
    assert cast_in == set(INPUT_NAMES) and cast_out == {OUTPUT_NAME}
    assert all(consumers & {name} and all(n.op_type == "Cast" for n in graph.node if name in n.input)
               for name in INPUT_NAMES)
    resize_fp32 = {n.input[i] for n in graph.node if n.op_type == "Resize" for i in (1, 2) if n.input[i]}
    init_types = {t.name: t.data_type for t in graph.initializer}
    assert {name for name, t in init_types.items() if t == FP32} == resize_fp32
    assert set(init_types.values()) == {FP16, FP32}
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    activations = [v.type.tensor_type.elem_type for v in inferred.value_info
                   if v.type.tensor_type.elem_type in (FP16, FP32)]
    assert Counter(activations) == Counter({FP16: len(activations)})
    (plugin,) = [n for n in graph.node if n.op_type == contract.OP_TYPE]
    typed = {v.name: v.type.tensor_type.elem_type for v in inferred.value_info}
    assert {typed[name] for name in [*plugin.input, *plugin.output]} == {FP16}
    onnx.checker.check_model(str(models.fp16), full_check=True)


def test_float16_io_has_no_boundary_casts(models):
    model = onnx.load(models.fp16_io16)
    assert _io_types(model) == {name: FP16 for name in (*INPUT_NAMES, OUTPUT_NAME)}
    assert not [n for n in model.graph.node if n.op_type == "Cast"]
    assert OrtBackend(models.fp16_io16).input_dtype == np.float16


def test_both_io_choices_compute_the_same_fp16_result(models):
    inputs = random_inputs((8, 6), (20, 28), 2)
    reference = torch_output(models.model, inputs)
    sr32 = OrtBackend(models.fp16).run(inputs)
    sr16 = OrtBackend(models.fp16_io16).run(inputs)
    assert np.array_equal(sr32, sr16)
    assert 0 < np.abs(sr32 - reference).max() < 1e-2


def test_refusals(models, tmp_path):
    cases = [(models.plain, {}, "Col2Im"), (models.fp16, {}, "already holds float16"),
             (models.rewritten, {"io_dtype": "bfloat16"}, "io_dtype"),
             (tmp_path / "missing.onnx", {}, "no such ONNX file")]
    for src, kwargs, fragment in cases:
        with pytest.raises(FP16Error, match=fragment) as info:
            convert_fp16(src, tmp_path / "out.onnx", **kwargs)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "out.onnx").exists()


def test_fp16_estimate_on_the_demo_pair_is_at_least_40_db(models):
    result = CliRunner().invoke(fp16_estimate_command, [
        "--onnx", str(models.fp16), "--checkpoint", str(models.checkpoint), "--threads", "2",
        "--min-psnr", "40"])
    print(result.output)
    assert result.exit_code == 0, result.output
    match = re.search(r"PSNR ([\d.]+|inf) dB, SSIM ([\d.]+)", result.output)
    assert match and float(match[1]) >= 40 and float(match[2]) >= 0.99
    assert "demo.png" in result.output


def test_fp16_estimate_gate_fails_when_the_graph_is_not_of_the_reference_weights(models, tmp_path):
    """The graph holds the weights of seed 0 and records no source (so nothing refuses it early);
    the reference is seed 1."""
    unrecorded = tmp_path / "unrecorded.onnx"
    record_source(shutil.copy(models.fp16, unrecorded), Source())
    result = CliRunner().invoke(fp16_estimate_command, [
        "--onnx", str(unrecorded), "--seed", "1", "--min-psnr", "40",
        "--lr", str(ASSETS / "lr" / "cat.png"), "--ref", str(ASSETS / "ref" / "cat.png")])
    assert result.exit_code == 1, result.output
    assert "FAIL: PSNR" in result.output and "below --min-psnr 40" in result.output
