"""TensorRT backend: runs a serialized engine through pycuda (imported only here, only when used).

Per call: pinned host buffers -> async H2D copies -> ``execute_async_v3`` ->
async D2H copies, all on one stream, with CUDA events between the stages so
that H2D, compute and D2H are timed separately.  Buffers are allocated once
per profile at its largest shapes.  With ``cuda_graph=True`` the enqueue is
captured into a CUDA graph and replayed while the input shape stays the same
(fewer launch overheads).  A captured graph bakes in the shapes, addresses and
state of the one execution context, so a new shape destroys it and captures
again (after one ordinary enqueue, which TensorRT needs for a new shape).

Use it as a context manager, or call ``close()``, to free its GPU memory.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttsr.atomic import file_sha256
from ttsr.backends.base import Backend
from ttsr.backends.profiles import Profile, choose_profile
from ttsr.backends.trt.checks import INSTALL_HINT, BuildError, require_gpu, require_tensorrt
from ttsr.backends.trt.plugin import load_plugin_library
from ttsr.backends.trt.sidecar import (EngineSidecar, SidecarError, check_engine_hash, check_plugin, check_sidecar,
                                       read_sidecar)
from ttsr.data.prepare import ModelInputs
from ttsr.model.ttsr import INPUT_NAMES, OUTPUT_NAME

if TYPE_CHECKING:
    import tensorrt as trt


class EngineError(RuntimeError):
    """An engine that cannot be loaded or run here; the message is one line."""


@dataclass
class _Buffers:
    """Host (pinned) and device memory for one profile, sized for its largest shapes.

    Each run uses the leading part of every buffer (``host`` arrays are reshaped views),
    so the device addresses, and with them the bindings, stay fixed per profile.
    """

    host: dict[str, np.ndarray]  # flat pinned arrays
    device: dict[str, Any]  # pycuda DeviceAllocation

    def view(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self.host[name][:int(np.prod(shape))].reshape(shape)

    def free(self) -> None:
        for allocation in self.device.values():
            allocation.free()
        for array in self.host.values():
            pinned: Any = array.base  # pycuda's pinned arrays hold their HostAllocation as .base
            pinned.free()
        self.device.clear()
        self.host.clear()


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
        """Capture ``enqueue()`` on the stream into an instantiated graph; nothing leaks on failure."""
        global_mode = 0  # CU_STREAM_CAPTURE_MODE_GLOBAL
        stream = ctypes.c_void_p(stream_handle)
        graph = ctypes.c_void_p()
        self._check(self._lib.cuStreamBeginCapture_v2(stream, global_mode), "cuStreamBeginCapture")
        try:
            enqueue()
        except BaseException:
            # End the capture whatever it says (an invalidated capture fails here), so that the
            # enqueue error is the one raised and the stream is usable again.
            self._lib.cuStreamEndCapture(stream, ctypes.byref(graph))
            if graph.value:
                self._lib.cuGraphDestroy(graph)
            raise
        self._check(self._lib.cuStreamEndCapture(stream, ctypes.byref(graph)), "cuStreamEndCapture")
        try:
            graph_exec = ctypes.c_void_p()
            self._check(self._lib.cuGraphInstantiateWithFlags(ctypes.byref(graph_exec), graph,
                                                              ctypes.c_ulonglong(0)),
                        "cuGraphInstantiate")
        finally:
            self._lib.cuGraphDestroy(graph)
        return int(graph_exec.value or 0)

    def launch(self, graph_exec: int, stream_handle: int) -> None:
        self._check(self._lib.cuGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(stream_handle)),
                    "cuGraphLaunch")

    def destroy(self, graph_exec: int) -> None:
        self._lib.cuGraphExecDestroy(ctypes.c_void_p(graph_exec))


def _load_plugin(runtime: "trt.Runtime", path: Path) -> None:
    try:
        load_plugin_library(runtime.get_plugin_registry(), path)
    except BuildError as exc:
        raise EngineError(str(exc)) from None


class TrtBackend(Backend):
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
        problems = (check_engine_hash(self.sidecar, hashlib.sha256(blob).hexdigest())
                    + check_plugin(self.sidecar, plugin_hash))
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

        try:
            import pycuda.autoinit  # noqa: F401  (creates and pushes the CUDA context)
            import pycuda.driver as cuda
        except ImportError:
            raise EngineError(f"pycuda is not installed; {INSTALL_HINT}") from None
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
        self._graph_exec: int | None = None
        self._graph_key: tuple[int, ...] | None = None
        self._buffers: dict[int, _Buffers] = {}
        self._profile: int | None = None
        self._dtypes: dict[str, np.dtype] = {name: np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                                             for name in (*INPUT_NAMES, OUTPUT_NAME)}
        self.last_stages: dict[str, float] = {}

    @property
    def profiles(self) -> list[Profile]:
        return list(self.sidecar.profiles)

    def _use_profile(self, profile: int) -> None:
        if not self._context.set_optimization_profile_async(profile, self._stream.handle):
            raise EngineError(f"TensorRT refused optimisation profile {profile} of the engine "
                              f"(see its log above); rebuild the engine with build_engine.py")
        self._profile = profile

    def _set_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        for name in INPUT_NAMES:
            if not self._context.set_input_shape(name, shapes[name]):
                raise EngineError(f"engine rejects shape {shapes[name]} for input {name}")

    def _output_shape(self) -> tuple[int, ...]:
        dims = self._context.get_tensor_shape(OUTPUT_NAME)
        return tuple(int(dims[axis]) for axis in range(len(dims)))

    def _buffers_for(self, profile: int) -> _Buffers:
        """The profile's buffers, allocated at its largest shapes on first use, and bound."""
        buffers = self._buffers.get(profile)
        if buffers is None:
            largest = {name: high for name, (_, _, high) in self.sidecar.profiles[profile].shapes().items()}
            self._set_shapes(largest)
            counts = {name: int(np.prod(shape)) for name, shape in largest.items()}
            counts[OUTPUT_NAME] = int(np.prod(self._output_shape()))
            host = {name: self._cuda.pagelocked_empty((count,), self._dtypes[name])
                    for name, count in counts.items()}
            device = {name: self._cuda.mem_alloc(array.nbytes) for name, array in host.items()}
            buffers = self._buffers[profile] = _Buffers(host, device)
        for name, allocation in buffers.device.items():
            if not self._context.set_tensor_address(name, int(allocation)):
                raise EngineError(f"TensorRT refused the device address of tensor {name}; "
                                  f"the engine does not have the TTSR inputs/output, rebuild it")
        return buffers

    def _select(self, inputs: ModelInputs) -> tuple[_Buffers, dict[str, np.ndarray]]:
        """Profile, shapes and bindings for ``inputs``, copied into the pinned buffers; returns their views."""
        arrays = inputs.as_dict()
        profile = choose_profile(self.sidecar.profiles, inputs.lr_size, inputs.ref_size, inputs.batch)
        if profile != self._profile:
            self._use_profile(profile)
            buffers = self._buffers_for(profile)
        else:
            buffers = self._buffers[profile]
        shapes = {name: tuple(arrays[name].shape) for name in INPUT_NAMES}
        self._set_shapes(shapes)
        shapes[OUTPUT_NAME] = self._output_shape()
        views = {name: buffers.view(name, shape) for name, shape in shapes.items()}
        for name in INPUT_NAMES:
            np.copyto(views[name], arrays[name], casting="same_kind")
        return buffers, views

    def _enqueue(self) -> None:
        if not self._context.execute_async_v3(self._stream.handle):
            raise EngineError("TensorRT execute_async_v3 failed (see its log above)")

    def _compute(self, key: tuple[int, ...]) -> None:
        if self._graphs is None:
            self._enqueue()
            return
        graph_exec = self._graph_exec
        if graph_exec is None or key != self._graph_key:
            self._drop_graph()
            self._enqueue()  # TensorRT sets up shape-dependent state outside of capture
            graph_exec = self._graphs.capture(self._stream.handle, self._enqueue)
            self._graph_exec, self._graph_key = graph_exec, key
        self._graphs.launch(graph_exec, self._stream.handle)

    def _drop_graph(self) -> None:
        if self._graphs is not None and self._graph_exec is not None:
            self._graphs.destroy(self._graph_exec)
        self._graph_exec = self._graph_key = None

    def run(self, inputs: ModelInputs) -> np.ndarray:
        buffers, views = self._select(inputs)
        cuda, stream = self._cuda, self._stream
        start, after_h2d, after_compute, end = self._events
        start.record(stream)
        for name in INPUT_NAMES:
            cuda.memcpy_htod_async(buffers.device[name], views[name], stream)
        after_h2d.record(stream)
        self._compute(tuple(d for name in INPUT_NAMES for d in views[name].shape))
        after_compute.record(stream)
        cuda.memcpy_dtoh_async(views[OUTPUT_NAME], buffers.device[OUTPUT_NAME], stream)
        end.record(stream)
        end.synchronize()
        self.last_stages = {
            "h2d": start.time_till(after_h2d),
            "compute": after_h2d.time_till(after_compute),
            "d2h": after_compute.time_till(end),
        }
        return np.array(views[OUTPUT_NAME], dtype=np.float32)

    def close(self) -> None:
        """Free the CUDA graph and every buffer (the engine and context go with the object)."""
        self._stream.synchronize()
        self._drop_graph()
        for buffers in self._buffers.values():
            buffers.free()
        self._buffers.clear()
        self._profile = None
