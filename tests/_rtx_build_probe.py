"""Build plugin-free ONNX graphs into TensorRT-RTX engines on the CPU; print what the builder made as JSON.

Run as a child process (``python tests/_rtx_build_probe.py request.json``):
TensorRT libraries may abort the whole process, which must not take the test
session down with it.  The request names the target compute capability and,
per build, the ONNX file, the engine file to write and the profile shapes
(input name -> [min, opt, max]).  The build goes through
``ttsr.backends.trt.builder``'s own steps (network flags, parser, config, profile)
with TensorRT-RTX in place of TensorRT; TensorRT-RTX compiles ahead of time
for the named compute capability, so no GPU is needed.

Without a GPU the engine cannot be deserialised, so its I/O dtypes are read
from the builder's "Engine Layer Information" log, which lists every layer's
input and output tensors of the built engine with their types.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# "lq (Float[-1,3,-1,-1])" in a layer line of the engine report
_LAYER_TENSOR = re.compile(r"([\w./:-]+) \((\w+)\[[-\d,]*\]\)")
_WEIGHTS = re.compile(r"Total Weights Memory: (\d+) bytes")
_LOG_DTYPES = {"Float": "float32", "Half": "float16"}


def _logger(trt: Any) -> Any:
    class RecordingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.min_severity = trt.ILogger.VERBOSE
            self.records: list[tuple[Any, str]] = []

        def log(self, severity: Any, msg: str) -> None:
            self.records.append((severity, msg))

    return RecordingLogger()


def build(trt: Any, request: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    from ttsr.atomic import write_bytes_atomic
    from ttsr.backends.trt.builder import BuildOptions, add_profile, create_config, network_flags, parse_onnx

    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    onnx_path, engine_path = Path(part["onnx"]), Path(part["engine"])
    parser = parse_onnx(trt, network, logger, onnx_path)
    # Only the config fields of the options matter here; the parts need no plugin library.
    options = BuildOptions(onnx_path=onnx_path, output=engine_path, profiles=[],
                           plugin_library=Path(), workspace_mib=request["workspace_mib"])
    config, _ = create_config(trt, builder, options)
    add_profile(trt, builder, config, part["shapes"])
    config.num_compute_capabilities = 1
    if not config.set_compute_capability(getattr(trt.ComputeCapability, request["compute_capability"]), 0):
        raise RuntimeError(f"TensorRT-RTX refused compute capability {request['compute_capability']}")
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    del parser
    if serialized is not None:
        write_bytes_atomic(engine_path, bytes(serialized))

    records = logger.records
    layers = [line for _, msg in records for line in msg.splitlines() if line.startswith("Layer(")]
    engine_tensors: dict[str, str] = {}
    for line in layers:
        engine_tensors.update((name, _LOG_DTYPES.get(kind, kind))
                              for name, kind in _LAYER_TENSOR.findall(line))
    weights = [int(m.group(1)) for _, msg in records if (m := _WEIGHTS.search(msg))]
    network_io = [network.get_input(i) for i in range(network.num_inputs)] + \
                 [network.get_output(i) for i in range(network.num_outputs)]
    return {
        "built": serialized is not None,
        "engine": str(engine_path),
        "engine_bytes": serialized.nbytes if serialized is not None else 0,
        "seconds": seconds,
        "network_dtypes": {t.name: np.dtype(trt.nptype(t.dtype)).name for t in network_io},
        "engine_dtypes": engine_tensors,
        "layers": layers,
        "weights_bytes": weights[-1] if weights else None,
        "warnings": [msg for severity, msg in records if severity == trt.ILogger.WARNING],
        "errors": [msg for severity, msg in records
                   if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR)],
    }


def main(request_path: str) -> None:
    import tensorrt_rtx_bindings as trt

    request = json.loads(Path(request_path).read_text())
    print(json.dumps([build(trt, request, part) for part in request["parts"]]))


if __name__ == "__main__":
    main(sys.argv[1])
