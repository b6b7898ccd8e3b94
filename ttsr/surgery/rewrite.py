"""Replace the search-transfer block of an exported TTSR graph by one ``TTSRSearchTransfer`` node.

The block is found from the dynamo exporter's scope metadata
(``pkg.torch.onnx.name_scopes``): every node that the module attribute
``search_transfer`` produced.  Two calls of the module share that scope; their
call sites in the exporter's stack traces tell them apart, and a graph with
more than one block is refused.  The boundary is found by structure:

* inputs: floating-point tensors that come from the graph inputs, are
  produced outside the block and consumed inside it.  Integer shape plumbing
  (``Shape``/``Squeeze``/``Mul`` nodes the exporter hoists out of the block)
  is not data and dies with the block.
* outputs: tensors produced inside and consumed outside (or graph outputs).

Roles follow data flow, never position or channel count (q, k and v3 all
have 256 channels): q is the feature map computed from graph input ``lq_up``,
k the one from ``ref_downup``, and the three from ``ref`` are ordered by
ancestry (v1 = relu1_1 feeds v2 = relu2_1 feeds v3 = relu3_1).  Inside the
block, each output's floating-point data comes from a distinct set of inputs:
s from {q, k} (the relevance), t3/t2/t1 from v3/v2/v1 alone (the hard-attention
index that selects the patches is an integer tensor).
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from ttsr import contract
from ttsr.errors import first_line
from ttsr.onnx_io import elem_types, load_onnx, save_checked_model
from ttsr.model.ttsr import INPUT_NAMES as MODEL_INPUTS

SCOPE_KEY = "pkg.torch.onnx.name_scopes"
CLASS_KEY = "pkg.torch.onnx.class_hierarchy"
TRACE_KEY = "pkg.torch.onnx.stack_trace"
MODULE_NAME = "search_transfer"
FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                         onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE})
# Graph input each of q and k is computed from; v3, v2, v1 come from ``ref``.
_QUERY_SOURCE, _VALUE_SOURCE, _KEY_SOURCE = MODEL_INPUTS[1], MODEL_INPUTS[2], MODEL_INPUTS[3]
# Within the block, which inputs each output's floating-point data flows from.
_OUTPUT_SOURCES = {
    frozenset({"q", "k"}): "s",
    frozenset({"v3"}): "t3",
    frozenset({"v2"}): "t2",
    frozenset({"v1"}): "t1",
}


class RewriteError(ValueError):
    """The graph cannot be rewritten (no block, several blocks, already rewritten, ...)."""


@dataclass(frozen=True)
class RewriteReport:
    """What the rewrite found and changed."""

    src: Path
    dst: Path
    block_scope: str
    block_nodes: int
    nodes_before: int
    nodes_after: int
    removed_ops: dict[str, int]
    inputs: dict[str, str]
    outputs: dict[str, str]

    @property
    def nodes_removed(self) -> int:
        """Block nodes plus the shape plumbing that only fed the block."""
        return self.nodes_before - self.nodes_after + 1

    def summary(self) -> str:
        ops = ", ".join(f"{op} {n}" for op, n in sorted(self.removed_ops.items()))
        return (f"rewrote {self.block_scope!r}: {self.nodes_removed} nodes -> 1 "
                f"{contract.OP_TYPE} ({self.block_nodes} in the block); graph "
                f"{self.nodes_before} -> {self.nodes_after} nodes; removed: {ops}")


def _load(model_or_path: onnx.ModelProto | str | os.PathLike) -> onnx.ModelProto:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    return load_onnx(model_or_path, RewriteError, "export one first (ttsr export)")


def is_rewritten(model_or_path: onnx.ModelProto | str | os.PathLike) -> bool:
    """True if the graph already holds a ``TTSRSearchTransfer`` node."""
    model = _load(model_or_path)
    return any(n.op_type == contract.OP_TYPE for n in model.graph.node)


def _metadata(node: onnx.NodeProto) -> dict[str, str]:
    return {prop.key: prop.value for prop in node.metadata_props}


def _block_scope(node: onnx.NodeProto) -> tuple[str, str] | None:
    """``(scope, call site)`` of the outermost ``search_transfer`` module that made ``node``, if any."""
    metadata = _metadata(node)
    if SCOPE_KEY not in metadata:
        return None
    for index, scope in enumerate(ast.literal_eval(metadata[SCOPE_KEY])):
        if scope.split(".")[-1] == MODULE_NAME:
            return scope, _call_site(metadata, index)
    return None


def _call_site(metadata: dict[str, str], scope_index: int) -> str:
    """Where the module was called: the stack frames outside the module's own source file.

    The exporter gives every call of one module the same scope, so this is what
    tells two calls apart.
    """
    try:
        module_class = ast.literal_eval(metadata[CLASS_KEY])[scope_index]
    except (KeyError, IndexError, ValueError, SyntaxError):
        return ""
    module_file = module_class.rsplit(".", 1)[0].replace(".", "/") + ".py"
    outer = []
    for file, line in re.findall(r'File "([^"]+)", line (\d+)', metadata.get(TRACE_KEY, "")):
        if file.endswith(module_file):
            break
        outer.append(f"{Path(file).name}:{line}")
    return " > ".join(outer)


def _find_block(model: onnx.ModelProto) -> tuple[str, list[onnx.NodeProto]]:
    blocks: dict[tuple[str, str], list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        key = _block_scope(node)
        if key is not None:
            blocks.setdefault(key, []).append(node)
    if not blocks:
        raise RewriteError(
            f"no search-transfer block: no node carries {SCOPE_KEY} metadata under a "
            f"'{MODULE_NAME}' module; rewrite a graph written by ttsr export (torch dynamo exporter)")
    if len(blocks) > 1:
        names = ", ".join(f"{scope!r} called at {site or '?'} ({len(nodes)} nodes)"
                          for (scope, site), nodes in blocks.items())
        raise RewriteError(f"{len(blocks)} search-transfer blocks found ({names}); "
                           f"the rewrite handles graphs with exactly one")
    ((scope, _), nodes), = blocks.items()
    return scope, nodes


def _float_sources(nodes: Iterable[onnx.NodeProto], seeds: dict[str, frozenset[str]],
                   is_float: Callable[[str], bool]) -> dict[str, frozenset[str]]:
    """For each tensor, the seeds its floating-point data flows from (integer edges ignored)."""
    sources = dict(seeds)
    for node in nodes:
        union = frozenset().union(*(sources.get(i, frozenset()) for i in node.input
                                    if i and is_float(i)))
        for out in node.output:
            if out and out not in seeds:
                sources[out] = union
    return sources


def _value_order(model: onnx.ModelProto, values: list[str],
                 is_float: Callable[[str], bool]) -> list[str]:
    """``values`` as (v3, v2, v1): the deepest feature level first."""
    producer = {out: n for n in model.graph.node for out in n.output}

    def ancestors(name: str) -> set[str]:
        seen, stack = set(), [name]
        while stack:
            node = producer.get(stack.pop())
            for i in (node.input if node is not None else ()):
                if i and is_float(i) and i not in seen:
                    seen.add(i)
                    stack.append(i)
        return seen

    depth = {v: len(ancestors(v) & set(values)) for v in values}
    ordered = sorted(values, key=lambda v: depth[v], reverse=True)
    if sorted(depth.values()) != list(range(len(values))):
        raise RewriteError(f"the block's value inputs {values} are not one feature chain "
                           f"(relu1_1 -> relu2_1 -> relu3_1); cannot tell v1/v2/v3 apart")
    return ordered


def _boundary(model: onnx.ModelProto, block: list[onnx.NodeProto]
              ) -> tuple[dict[str, str], dict[str, str]]:
    """Map contract roles to tensor names: inputs (q, k, v3, v2, v1), outputs (s, t3, t2, t1)."""
    graph = model.graph
    types = elem_types(model)
    initializers = {t.name for t in graph.initializer}
    graph_inputs = {i.name for i in graph.input if i.name not in initializers}
    missing = set(MODEL_INPUTS) - graph_inputs
    if missing:
        raise RewriteError(f"graph inputs {sorted(missing)} are missing; the rewrite needs "
                           f"the inputs {MODEL_INPUTS} as ttsr export names them")

    def is_float(name: str) -> bool:
        return types.get(name) in FLOAT_TYPES

    from_inputs = _float_sources(graph.node, {i: frozenset({i}) for i in graph_inputs}, is_float)
    members = {id(n) for n in block}
    produced_inside = {out for n in block for out in n.output if out}
    entering = list(dict.fromkeys(
        i for n in block for i in n.input
        if i and i not in produced_inside and is_float(i) and from_inputs.get(i)))
    by_source: dict[str, list[str]] = {}
    for name in entering:
        key = ",".join(sorted(from_inputs[name]))
        by_source.setdefault(key, []).append(name)
    values = by_source.get(_VALUE_SOURCE, [])
    if (len(entering) != len(contract.INPUT_NAMES) or len(by_source.get(_QUERY_SOURCE, [])) != 1
            or len(by_source.get(_KEY_SOURCE, [])) != 1 or len(values) != 3):
        raise RewriteError(f"the block's data inputs do not match {contract.OP_TYPE}'s "
                           f"(one from {_QUERY_SOURCE}, one from {_KEY_SOURCE}, three from "
                           f"{_VALUE_SOURCE}); found {by_source}")
    v3, v2, v1 = _value_order(model, values, is_float)
    inputs = {"q": by_source[_QUERY_SOURCE][0], "k": by_source[_KEY_SOURCE][0],
              "v3": v3, "v2": v2, "v1": v1}

    graph_outputs = {o.name for o in graph.output}
    consumed_outside = {i for n in graph.node if id(n) not in members for i in n.input}
    leaving = [out for n in block for out in n.output
               if out and (out in consumed_outside or out in graph_outputs)]
    within = _float_sources(block, {name: frozenset({role}) for role, name in inputs.items()},
                            is_float)
    outputs: dict[str, str] = {}
    for name in leaving:
        role = _OUTPUT_SOURCES.get(within.get(name, frozenset()))
        if role is None or role in outputs:
            raise RewriteError(f"block output {name!r} is not one of {contract.OP_TYPE}'s outputs "
                               f"{contract.OUTPUT_NAMES}; its data comes from "
                               f"{sorted(within.get(name, ()))}")
        outputs[role] = name
    if len(outputs) != len(contract.OUTPUT_NAMES):
        raise RewriteError(f"the block has outputs {sorted(outputs)}, expected "
                           f"{contract.OUTPUT_NAMES}")
    return inputs, outputs


def _replace(model: onnx.ModelProto, scope: str, block: list[onnx.NodeProto],
             inputs: dict[str, str], outputs: dict[str, str]) -> onnx.ModelProto:
    graph = gs.import_onnx(model)
    tensors = graph.tensors()
    node_outputs = [tensors[outputs[role]] for role in contract.OUTPUT_NAMES]
    for tensor in node_outputs:
        tensor.inputs.clear()
    attrs = {"plugin_version": contract.PLUGIN_VERSION,
             "plugin_namespace": contract.PLUGIN_NAMESPACE, **contract.ATTRIBUTES}
    graph.nodes.append(gs.Node(
        op=contract.OP_TYPE, domain=contract.DOMAIN, name=f"/{scope}/{contract.OP_TYPE}",
        attrs=attrs, inputs=[tensors[inputs[role]] for role in contract.INPUT_NAMES],
        outputs=node_outputs))
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    block_names = {n.name for n in block}
    survivors = [n.name for n in graph.nodes if n.name in block_names]
    if survivors:
        raise RewriteError(f"block nodes {survivors[:5]} still feed the rest of the graph; "
                           f"the block cannot be replaced as a whole")
    rewritten: onnx.ModelProto = gs.export_onnx(graph)
    # graph-surgeon drops node metadata; keep the exporter's scopes for later tools.
    metadata = {n.name: n.metadata_props for n in model.graph.node}
    for node in rewritten.graph.node:
        if node.name in metadata:
            node.metadata_props.extend(metadata[node.name])
    rewritten.metadata_props.extend(model.metadata_props)
    rewritten.producer_name, rewritten.producer_version = model.producer_name, model.producer_version
    return rewritten


def rewrite_search_transfer(src: str | os.PathLike, dst: str | os.PathLike) -> RewriteReport:
    """Rewrite the ONNX file ``src`` into ``dst`` (written atomically, checked)."""
    src, dst = Path(src), Path(dst)
    model = _load(src)
    if not dst.parent.is_dir():
        raise RewriteError(f"output folder {dst.parent} does not exist; create it first")
    if is_rewritten(model):
        raise RewriteError(f"{src} is already rewritten (it has a {contract.OP_TYPE} node); "
                           f"rewrite the plain export instead")
    scope, block = _find_block(model)
    inputs, outputs = _boundary(model, block)
    rewritten = _replace(model, scope, block, inputs, outputs)
    try:
        save_checked_model(rewritten, dst)
    except onnx.checker.ValidationError as exc:
        raise RewriteError(f"the rewritten graph fails onnx.checker: {first_line(exc)}") from exc
    return RewriteReport(
        src=src, dst=dst, block_scope=scope, block_nodes=len(block),
        nodes_before=len(model.graph.node), nodes_after=len(rewritten.graph.node),
        removed_ops=dict(Counter(n.op_type for n in model.graph.node)
                         - Counter(n.op_type for n in rewritten.graph.node)),
        inputs=inputs, outputs=outputs)
