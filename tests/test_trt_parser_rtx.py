"""TensorRT-RTX's ONNX parser on the CPU: exactly the expected nodes are rejected.

The plain export must fail at its Col2Im nodes and nowhere else; the rewritten
FP32 and FP16 graphs only at the plugin lookup of the TTSRSearchTransfer node
(no plugin library is registered here).  Any other unsupported node fails
these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from _onnx_models import onnx_models
from ttsr import contract

PROBE = Path(__file__).with_name("_rtx_probe.py")


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


def parser_errors(path: Path) -> list[dict[str, object]]:
    child = subprocess.run([sys.executable, str(PROBE), str(path)], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == 0, f"TensorRT-RTX parser process failed:\n{child.stderr[-2000:]}"
    return json.loads(child.stdout.strip().splitlines()[-1])


def _nodes(path: Path, op_type: str) -> set[str]:
    return {n.name for n in onnx.load(path).graph.node if n.op_type == op_type}


def test_plain_export_fails_exactly_at_its_col2im_nodes(models):
    errors = parser_errors(models.plain)
    col2im = _nodes(models.plain, "Col2Im")
    assert len(col2im) == 3
    assert {e["name"] for e in errors} == col2im
    assert {(e["op"], e["code"], e["func"]) for e in errors} == {
        ("Col2Im", "UNSUPPORTED_NODE", "checkCol2Im")}


@pytest.mark.parametrize("variant", ["rewritten", "fp16", "fp16_io16"])
def test_rewritten_graphs_fail_only_at_the_plugin_lookup(models, variant):
    path = getattr(models, variant)
    errors = parser_errors(path)
    (plugin,) = _nodes(path, contract.OP_TYPE)
    assert [(e["name"], e["op"]) for e in errors] == [(plugin, contract.OP_TYPE)]
    assert "Plugin not found" in errors[0]["desc"]


def test_an_unsupported_node_after_the_plugin_is_reported(models, tmp_path):
    """The parser checks every node, not only those before the first failure."""
    model = onnx.load(models.rewritten)
    plugin_at = next(i for i, n in enumerate(model.graph.node) if n.op_type == contract.OP_TYPE)
    late = next(n for n in model.graph.node[plugin_at + 1:] if n.op_type == "Relu")
    late.op_type = "Det"  # square-matrix determinant: no TensorRT importer
    path = tmp_path / "with_det.onnx"
    onnx.save(model, path)
    errors = parser_errors(path)
    plugin = model.graph.node[plugin_at].name
    assert {(e["name"], e["op"]) for e in errors} == {(late.name, "Det"), (plugin, contract.OP_TYPE)}
