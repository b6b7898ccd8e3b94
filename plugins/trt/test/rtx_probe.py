"""Loads libttsr_trt_plugin.so into a real TensorRT (TensorRT-RTX, which runs on a CPU) and
prints what its plugin registry and ONNX parser make of it, as one JSON line.

Usage: python rtx_probe.py path/to/libttsr_trt_plugin.so
Run it in a child process: TensorRT-RTX aborts the process when the parser adds a plugin
layer on a machine without a GPU, so only the steps before that are probed here.
"""

from __future__ import annotations

import json
import sys


def _node_model(patch_size: int) -> bytes:
    from onnx import TensorProto, helper

    from ttsr import contract

    channels = {"q": 256, "k": 256, "v3": 256, "v2": 128, "v1": 64}
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", c, f"H_{name}", f"W_{name}"])
              for name, c in channels.items()]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in contract.OUTPUT_NAMES]
    attributes = dict(contract.ATTRIBUTES, patch_size=patch_size, plugin_version=contract.PLUGIN_VERSION,
                      plugin_namespace=contract.PLUGIN_NAMESPACE)
    node = helper.make_node(contract.OP_TYPE, list(channels), list(contract.OUTPUT_NAMES), name="st",
                            domain=contract.DOMAIN, **attributes)
    graph = helper.make_graph([node], "search_transfer", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid(contract.DOMAIN, 1)])
    return model.SerializeToString()


def probe(library: str) -> dict[str, object]:
    import numpy as np
    import tensorrt_rtx_bindings as trt

    from ttsr import contract

    registry = trt.get_plugin_registry()
    if registry.load_library(library) is None:
        return {"loaded": False}
    creator = registry.get_creator(contract.OP_TYPE, contract.PLUGIN_VERSION, contract.PLUGIN_NAMESPACE)
    fields = trt.PluginFieldCollection([
        trt.PluginField("patch_size", np.array([3], np.int32), trt.PluginFieldType.INT32),
        trt.PluginField("fold_divisor", np.array([9.0], np.float32), trt.PluginFieldType.FLOAT32),
        trt.PluginField("ref_chunk", np.array([16], np.int32), trt.PluginFieldType.INT32)])
    plugin = creator.create_plugin("st", fields, trt.TensorRTPhase.BUILD)
    core = plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
    build = plugin.get_capability_interface(trt.PluginCapabilityType.BUILD)

    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    parsed = parser.parse(_node_model(patch_size=5))
    return {
        "loaded": True,
        "creators": sorted(c.name for c in registry.all_creators if c.name == contract.OP_TYPE),
        "fields": [f.name for f in creator.field_names],
        "plugin": [core.plugin_name, core.plugin_version, core.plugin_namespace],
        "num_outputs": build.num_outputs,
        "invalid_parsed": parsed,
        "invalid_errors": [parser.get_error(i).desc() for i in range(parser.num_errors)],
    }


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    print(json.dumps(probe(sys.argv[1])), flush=True)
