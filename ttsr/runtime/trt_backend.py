"""TensorRT backend: runs a serialized engine through pycuda (imported only here, only when used).

Per call: pinned host buffers -> async H2D copies -> ``execute_async_v3`` ->
async D2H copies, all on one stream, with CUDA events between the stages so
that H2D, compute and D2H are timed separately.  With ``cuda_graph=True`` the
enqueue of each input shape is captured once into a CUDA graph and replayed
(fewer launch overheads; TensorRT needs one ordinary enqueue per shape first).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttsr.data.prepare import ModelInputs
from ttsr.engine.builder import BuildError, require_gpu, require_tensorrt
from ttsr.engine.profiles import Profile, choose_profile
from ttsr.engine.sidecar import EngineSidecar, SidecarError, check_plugin, check_sidecar, read_sidecar
from ttsr.model import file_sha256
from ttsr.model.ttsr import INPUT_NAMES, OUTPUT_NAME

if TYPE_CHECKING:
    import tensorrt as trt


class EngineError(RuntimeError):
    """An engine that cannot be loaded or run here; the message is one line."""


@dataclass
class _Buffers:
    """Host (pinned) and device memory for one set of I/O shapes."""

    profile: int
    host: dict[str, np.ndarray]
    device: dict[str, Any]  # pycuda DeviceAllocation
    graph_exec: int | None = None


class _CudaGraphs:
    """Stream capture and replay through the CUDA driver API (the context pycuda made current)."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise EngineError(f"CUDA graphs need the driver library libcuda.so.1 ({exc})") from None

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise EngineError(f"{what} failed with CUDA driver error {status}; run without --cuda-graph")

    def capture(self, stream_handle: int, enqueue: Any) -> int:
        global_mode = 0  # CU_STREAM_CAPTURE_MODE_GLOBAL
        graph = ctypes.c_void_p()
        self._check(self._lib.cuStreamBeginCapture_v2(ctypes.c_void_p(stream_handle), global_mode),
                    "cuStreamBeginCapture")
        try:
            enqueue()
        finally:
            self._check(self._lib.cuStreamEndCapture(ctypes.c_void_p(stream_handle), ctypes.byref(graph)),
                        "cuStreamEndCapture")
        graph_exec = ctypes.c_void_p()
        self._check(self._lib.cuGraphInstantiateWithFlags(ctypes.byref(graph_exec), graph,
                                                          ctypes.c_ulonglong(0)),
                    "cuGraphInstantiate")
        self._lib.cuGraphDestroy(graph)
        return int(graph_exec.value or 0)

    def launch(self, graph_exec: int, stream_handle: int) -> None:
        self._check(self._lib.cuGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(stream_handle)),
                    "cuGraphLaunch")

    def destroy(self, graph_exec: int) -> None:
        self._lib.cuGraphExecDestroy(ctypes.c_void_p(graph_exec))


def _load_plugin(runtime: "trt.Runtime", path: Path) -> None:
    try:
        runtime.get_plugin_registry().load_library(str(path))
    except Exception as exc:  # the bindings raise plain exceptions for dlopen failures
        raise EngineError(f"plugin library {path} could not be loaded ({exc})") from None


class TrtBackend:
    """``run(inputs) -> sr`` on a TensorRT engine; ``last_stages`` holds the last call's stage times (ms)."""

    name = "trt"

    def __init__(self, engine_path: str | os.PathLike[str], plugin_library: str | os.PathLike[str] | None = None,
                 cuda_graph: bool = False) -> None:
        engine_path = Path(engine_path)
        # Checks that need no TensorRT come first, so a wrong file fails the same way everywhere.
        try:
            blob = engine_path.read_bytes()
        except OSError as exc:
            raise EngineError(f"cannot read engine {engine_path} ({exc.strerror or exc}); "
                              f"build one with build_engine.py") from None
        try:
            self.sidecar: EngineSidecar = read_sidecar(engine_path)
        except SidecarError as exc:
            raise EngineError(str(exc)) from None
        plugin = Path(plugin_library) if plugin_library is not None else Path(self.sidecar.plugin.library)
        plugin_hash = file_sha256(plugin) if plugin.is_file() else None
        problems = check_plugin(self.sidecar, plugin_hash)
        if problems:
            raise EngineError(f"{engine_path}: {problems[0]}")
        try:
            version = require_tensorrt()
            gpu = require_gpu()
        except BuildError as exc:
            raise EngineError(str(exc)) from None
        problems = check_sidecar(self.sidecar, version, gpu.compute_capability, plugin_hash)
        if problems:
            raise EngineError(f"{engine_path}: {problems[0]}")

        import pycuda.autoinit  # noqa: F401  (creates and pushes the CUDA context)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._cuda = cuda
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        _load_plugin(self._runtime, plugin)
        engine = self._runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise EngineError(f"TensorRT could not deserialise {engine_path} (corrupt file or built for "
                              f"another TensorRT/GPU); rebuild it with build_engine.py")
        self._engine: "trt.ICudaEngine" = engine
        self._context = engine.create_execution_context()
        self._stream = cuda.Stream()
        self._events = [cuda.Event() for _ in range(4)]
        self._graphs = _CudaGraphs() if cuda_graph else None
        self._buffers: dict[tuple[int, ...], _Buffers] = {}
        self._profile: int | None = None
        self._dtypes: dict[str, np.dtype] = {name: np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                        for name in (*INPUT_NAMES, OUTPUT_NAME)}
        self.last_stages: dict[str, float] = {}

    @property
    def profiles(self) -> list[Profile]:
        return list(self.sidecar.profiles)

    @property
    def input_dtype(self) -> np.dtype:
        return self._dtypes[INPUT_NAMES[0]]

    def _select(self, inputs: ModelInputs) -> _Buffers:
        arrays = inputs.as_dict()
        key = tuple(d for name in INPUT_NAMES for d in arrays[name].shape)
        buffers = self._buffers.get(key)
        if buffers is None:
            profile = choose_profile(self.sidecar.profiles, inputs.lr_size, inputs.ref_size, inputs.batch)
            self._use_profile(profile)
            self._set_shapes(arrays)
            buffers = self._allocate(profile, arrays)
            self._buffers[key] = buffers
        self._use_profile(buffers.profile)
        self._set_shapes(arrays)
        self._bind(arrays, buffers)
        return buffers

    def _use_profile(self, profile: int) -> None:
        if profile != self._profile:
            self._context.set_optimization_profile_async(profile, self._stream.handle)
            self._profile = profile

    def _set_shapes(self, arrays: dict[str, np.ndarray]) -> None:
        for name in INPUT_NAMES:
            if not self._context.set_input_shape(name, arrays[name].shape):
                raise EngineError(f"engine rejects shape {arrays[name].shape} for input {name}")

    def _allocate(self, profile: int, arrays: dict[str, np.ndarray]) -> _Buffers:
        shapes = {name: tuple(arrays[name].shape) for name in INPUT_NAMES}
        dims = self._context.get_tensor_shape(OUTPUT_NAME)
        shapes[OUTPUT_NAME] = tuple(int(dims[axis]) for axis in range(len(dims)))
        host = {name: self._cuda.pagelocked_empty(shape, self._dtypes[name]) for name, shape in shapes.items()}
        device = {name: self._cuda.mem_alloc(host[name].nbytes) for name in shapes}
        return _Buffers(profile, host, device)

    def _bind(self, arrays: dict[str, np.ndarray], buffers: _Buffers) -> None:
        for name in INPUT_NAMES:
            np.copyto(buffers.host[name], arrays[name], casting="same_kind")
        for name, allocation in buffers.device.items():
            self._context.set_tensor_address(name, int(allocation))

    def _enqueue(self) -> None:
        if not self._context.execute_async_v3(self._stream.handle):
            raise EngineError("TensorRT execute_async_v3 failed (see its log above)")

    def run(self, inputs: ModelInputs) -> np.ndarray:
        buffers = self._select(inputs)
        cuda, stream = self._cuda, self._stream
        start, after_h2d, after_compute, end = self._events
        start.record(stream)
        for name in INPUT_NAMES:
            cuda.memcpy_htod_async(buffers.device[name], buffers.host[name], stream)
        after_h2d.record(stream)
        if self._graphs is None:
            self._enqueue()
        else:
            if buffers.graph_exec is None:
                self._enqueue()  # TensorRT sets up shape-dependent state outside of capture
                buffers.graph_exec = self._graphs.capture(stream.handle, self._enqueue)
            self._graphs.launch(buffers.graph_exec, stream.handle)
        after_compute.record(stream)
        cuda.memcpy_dtoh_async(buffers.host[OUTPUT_NAME], buffers.device[OUTPUT_NAME], stream)
        end.record(stream)
        end.synchronize()
        self.last_stages = {
            "h2d": start.time_till(after_h2d),
            "compute": after_h2d.time_till(after_compute),
            "d2h": after_compute.time_till(end),
        }
        return np.array(buffers.host[OUTPUT_NAME], dtype=np.float32)

    def close(self) -> None:
        if self._graphs is not None:
            for buffers in self._buffers.values():
                if buffers.graph_exec is not None:
                    self._graphs.destroy(buffers.graph_exec)
        self._buffers.clear()
