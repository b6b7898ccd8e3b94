"""Cut a rewritten TTSR graph at its ``TTSRSearchTransfer`` node into two plugin-free parts.

Part A runs from the graph inputs to the node's inputs (q, k, v3, v2, v1),
part B from the node's outputs (s, t3, t2, t1), plus whichever graph inputs it
also reads, to the graph outputs.  Either part builds with any TensorRT, with
no plugin library, which checks every layer of the network except the search
itself (and lets a TensorRT without plugin support build them at all).
Dynamic dims are kept: the parts' inputs and outputs carry the rewritten
graph's value_info.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx
from onnx.utils import Extractor

from ttsr import contract


class SplitError(ValueError):
    """The graph cannot be split at the plugin node; the message is one line."""


def _graph_inputs_reached(model: onnx.ModelProto, outputs: Iterable[str], stop: set[str]) -> list[str]:
    """Graph inputs that ``outputs`` depend on without passing through ``stop``, in graph order."""
    producer = {name: node for node in model.graph.node for name in node.output}
    seen: set[str] = set()
    pending = list(outputs)
    while pending:
        name = pending.pop()
        if name in seen or name in stop:
            continue
        seen.add(name)
        if name in producer:
            pending.extend(i for i in producer[name].input if i)
    return [i.name for i in model.graph.input if i.name in seen]


def split_at_plugin(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(part A, part B) of a graph with exactly one ``TTSRSearchTransfer`` node."""
    plugins = [node for node in model.graph.node if node.op_type == contract.OP_TYPE]
    if len(plugins) != 1:
        raise SplitError(f"the graph has {len(plugins)} {contract.OP_TYPE} nodes, expected one; "
                         f"split the rewritten graph (ttsr.surgery.rewrite_search_transfer)")
    node = plugins[0]
    known = {v.name for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    untyped = [name for name in [*node.input, *node.output] if name not in known]
    if untyped:
        raise SplitError(f"the {contract.OP_TYPE} tensors {', '.join(untyped)} have no value_info; "
                         f"run onnx.shape_inference.infer_shapes on the graph first")
    graph_outputs = [o.name for o in model.graph.output]
    plugin_outputs = set(node.output)
    extractor = Extractor(model)
    part_a = extractor.extract_model(_graph_inputs_reached(model, node.input, set()), list(node.input))
    part_b_inputs = [*node.output, *_graph_inputs_reached(model, graph_outputs, plugin_outputs)]
    return part_a, extractor.extract_model(part_b_inputs, graph_outputs)
