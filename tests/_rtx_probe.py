"""Parse one ONNX file with TensorRT-RTX's ONNX parser and print its errors as JSON.

Run as a child process (``python tests/_rtx_probe.py model.onnx``): the
TensorRT libraries may abort the whole process on plugin layers, which must
not take the test session down with it.  TensorRT-RTX parses on a machine
without a GPU; no plugin library is loaded, so a plugin node is reported as
"Plugin not found".
"""

from __future__ import annotations

import json
import sys


def parser_errors(path: str) -> list[dict[str, object]]:
    import tensorrt_rtx_bindings as trt

    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    parser.parse_from_file(path)
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        errors.append({"node": error.node(), "name": error.node_name(), "op": error.node_operator(),
                       "code": str(error.code()).rsplit(".", 1)[-1], "func": error.func(),
                       "desc": error.desc()})
    return errors


if __name__ == "__main__":
    print(json.dumps(parser_errors(sys.argv[1])))
