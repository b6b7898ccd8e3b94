"""TrtBackend's buffer plumbing against recording stand-ins for ``tensorrt`` and ``pycuda``.

The stand-in "engine" upsamples ``lq`` 4x by pixel repetition, reading and
writing the fake device memory at the addresses the backend bound, so a
wrong copy, binding or shape shows up in the output.  Real TensorRT runs are
checked on a GPU machine with scripts/demo.sh.
"""

from __future__ import annotations

import hashlib
import sys
import types

import numpy as np
import pytest

from ttsr.atomic import file_sha256
from ttsr.backends.gpu import GpuInfo
from ttsr.backends.profiles import Profile
from ttsr.backends.trt import runner as trt_backend
from ttsr.backends.trt.runner import EngineError, TrtBackend
from ttsr.backends.trt.sidecar import EngineSidecar, PluginInfo, read_sidecar, write_sidecar
from ttsr.data.prepare import ModelInputs

VERSION = "10.99.0.1"


def fake_modules(log: dict) -> dict[str, types.ModuleType]:
    memory: dict[int, bytearray] = {}

    class Allocation:
        def __init__(self, nbytes):
            self.address = 0x1000 * (len(memory) + 1)
            memory[self.address] = bytearray(nbytes)

        def __int__(self):
            return self.address

        def free(self):
            log.setdefault("freed", []).append(self.address)

    class Pinned(np.ndarray):
        """Stands in for pycuda's pinned arrays, whose .base is the HostAllocation."""

        def free(self):
            log["freed_host"] = log.get("freed_host", 0) + 1

    # A stream clock (ms): each copy advances it by 1, each network pass by 10, so a stage's time
    # tells which operations its events enclosed.
    log["clock"] = 0.0

    def tick(ms):
        log["clock"] += ms

    class Event:
        def record(self, stream):
            self.at = log["clock"]

        def synchronize(self):
            pass

        def time_till(self, other):
            return other.at - self.at

    def pagelocked_empty(shape, dtype):
        log.setdefault("pinned", []).append(tuple(shape))
        return np.empty(int(np.prod(shape)) * np.dtype(dtype).itemsize, np.uint8).view(Pinned).view(dtype)

    def read(address, dtype, shape):
        return np.frombuffer(memory[address], dtype, count=int(np.prod(shape))).reshape(shape)

    def write(address, data):
        memory[address][:len(data)] = data

    driver = types.ModuleType("pycuda.driver")
    driver.Stream = lambda: types.SimpleNamespace(handle=77, synchronize=lambda: None)
    driver.Event = Event
    driver.pagelocked_empty = pagelocked_empty
    driver.mem_alloc = Allocation
    driver.memcpy_htod_async = lambda device, host, stream: (write(int(device), host.tobytes()), tick(1.0))
    driver.memcpy_dtoh_async = lambda host, device, stream: (
        np.copyto(host, read(int(device), host.dtype, host.shape)), tick(1.0))
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver

    class Context:
        def __init__(self):
            self.shapes, self.addresses = {}, {}

        def set_optimization_profile_async(self, index, stream):
            log.setdefault("profiles", []).append(index)
            return log.get("profile_accepted", True)

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            n, c, h, w = self.shapes["lq"]
            return [n, c, 4 * h, 4 * w]

        def set_tensor_address(self, name, address):
            self.addresses[name] = address
            return True

        def execute_async_v3(self, stream):
            log["executions"] = log.get("executions", 0) + 1
            upsample(dict(self.shapes), dict(self.addresses))
            return True

    def upsample(shapes, addresses):
        lq = read(addresses["lq"], np.float32, shapes["lq"])
        write(addresses["sr"], np.repeat(np.repeat(lq, 4, axis=2), 4, axis=3).tobytes())
        tick(10.0)

    class Engine:
        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            log["context"] = Context()
            return log["context"]

    class Runtime:
        def __init__(self, logger):
            pass

        def get_plugin_registry(self):
            return types.SimpleNamespace(load_library=lambda path: log.setdefault("plugin", path),
                                         get_creator=lambda *args: None)

        def deserialize_cuda_engine(self, blob):
            return Engine() if blob == b"engine" else None

    trt = types.ModuleType("tensorrt")
    trt.__version__ = VERSION
    trt.Builder = object
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.Runtime = Runtime
    trt.nptype = lambda dtype: np.float32
    log["upsample"], log["Context"] = upsample, Context
    return {"tensorrt": trt, "pycuda": pycuda, "pycuda.driver": driver,
            "pycuda.autoinit": types.ModuleType("pycuda.autoinit")}


class FakeGraphs:
    """CUDA graphs that, like real ones, replay the shapes and addresses current at capture."""

    def __init__(self, log: dict) -> None:
        self.log, self.live = log, {}

    def capture(self, stream_handle, enqueue):
        context = self.log["context"]
        graph = len(self.log.setdefault("captured", [])) + 1
        self.log["captured"].append(graph)
        self.live[graph] = (dict(context.shapes), dict(context.addresses))
        return graph

    def launch(self, graph, stream_handle):
        self.log["upsample"](*self.live[graph])

    def destroy(self, graph):
        del self.live[graph]


@pytest.fixture
def engine(tmp_path, monkeypatch):
    log: dict = {}
    for name, module in fake_modules(log).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(trt_backend, "require_gpu", lambda: GpuInfo("Fake GPU", "8.6"))
    plugin = tmp_path / "libplugin.so"
    plugin.write_bytes(b"plugin")
    path = tmp_path / "ttsr.engine"
    path.write_bytes(b"engine")
    profiles = [Profile((4, 4), (4, 4), (6, 6), (8, 8), (8, 8), (8, 8), 1, 2, 2),
                Profile((8, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8, 8), 1, 1, 1)]
    write_sidecar(path, EngineSidecar(
        tensorrt_version=VERSION, gpu_name="Fake GPU", compute_capability="8.6", precision="fp16",
        hardware_compatibility="none", profiles=profiles,
        plugin=PluginInfo("TTSRSearchTransfer", "1", str(plugin), file_sha256(plugin)),
        onnx_sha256="0" * 64, engine_sha256=hashlib.sha256(b"engine").hexdigest(), plugin_memory=[],
        checkpoint_sha256=None, build_time="2026-11-25T12:00:00+00:00", tool_version="0.1.0"))
    return path, log


def inputs(batch: int, size: int, seed: int) -> ModelInputs:
    rng = np.random.default_rng(seed)
    shape = lambda h, w: (batch, 3, h, w)  # noqa: E731
    return ModelInputs(lq=rng.uniform(-1, 1, shape(size, size)).astype(np.float32),
                       lq_up=np.zeros(shape(4 * size, 4 * size), np.float32),
                       ref=np.zeros(shape(8, 8), np.float32), ref_downup=np.zeros(shape(8, 8), np.float32))


def upsampled(batch: ModelInputs) -> np.ndarray:
    return np.repeat(np.repeat(batch.lq, 4, axis=2), 4, axis=3)


def test_copies_bind_and_time_each_stage(engine):
    path, log = engine
    backend = TrtBackend(path)
    assert log["plugin"].endswith("libplugin.so")
    first, second = inputs(2, 4, 0), inputs(2, 4, 1)
    np.testing.assert_array_equal(backend.run(first), upsampled(first))
    np.testing.assert_array_equal(backend.run(second), upsampled(second))  # same buffers, new data
    # four input copies, one network pass, one output copy
    assert backend.last_stages == {"h2d": 4.0, "compute": 10.0, "d2h": 1.0}
    assert log["profiles"] == [0]  # chosen once for the shape


def test_one_buffer_set_per_profile_at_its_largest_shapes_freed_on_close(engine):
    path, log = engine
    with TrtBackend(path) as backend:
        small, other, large = inputs(1, 4, 2), inputs(2, 5, 3), inputs(1, 8, 4)
        for batch in (small, other, large, small):
            np.testing.assert_array_equal(backend.run(batch), upsampled(batch))
        assert log["profiles"] == [0, 1, 0]
        assert log["executions"] == 4
        # profile 0: batch 2, LR 6x6, Ref 8x8 at most (lq, lq_up, ref, ref_downup, sr); then profile 1
        assert log["pinned"] == [(2 * 3 * 6 * 6,), (2 * 3 * 24 * 24,), (2 * 3 * 8 * 8,), (2 * 3 * 8 * 8,),
                                 (2 * 3 * 24 * 24,),
                                 (3 * 8 * 8,), (3 * 32 * 32,), (3 * 8 * 8,), (3 * 8 * 8,), (3 * 32 * 32,)]
        assert "freed" not in log
    assert len(log["freed"]) == len(set(log["freed"])) == 10 and log["freed_host"] == 10


def test_cuda_graph_is_recaptured_when_the_shape_changes(engine, monkeypatch):
    path, log = engine
    graphs = FakeGraphs(log)
    monkeypatch.setattr(trt_backend, "_CudaGraphs", lambda: graphs)
    backend = TrtBackend(path, cuda_graph=True)
    small, other = inputs(1, 4, 5), inputs(2, 5, 6)
    for batch in (small, small, other, small):
        np.testing.assert_array_equal(backend.run(batch), upsampled(batch))
        assert len(graphs.live) == 1  # never a stale graph of another shape to replay
    assert log["captured"] == [1, 2, 3]
    assert log["executions"] == 3  # one ordinary enqueue before each capture
    backend.close()
    assert graphs.live == {}


class FakeDriver:
    """libcuda's graph calls: status codes from ``fail`` (name -> status), a graph made by EndCapture,
    an executable graph made by Instantiate."""

    def __init__(self, fail: dict[str, int]) -> None:
        self.fail, self.destroyed = fail, []

    def __getattr__(self, name):
        def call(*args):
            if name == "cuStreamEndCapture":
                args[1]._obj.value = 0xBEEF
            if name == "cuGraphInstantiateWithFlags":
                args[0]._obj.value = 0xCAFE
            if name == "cuGraphDestroy":
                self.destroyed.append(args[0].value)
            return self.fail.get(name, 0)
        return call


def graphs_with(driver: FakeDriver) -> trt_backend._CudaGraphs:
    graphs = object.__new__(trt_backend._CudaGraphs)
    graphs._lib = driver
    return graphs


def test_capture_keeps_the_enqueue_error_and_leaks_no_graph():
    driver = FakeDriver({"cuStreamEndCapture": 901})  # an invalidated capture fails to end

    def enqueue():
        raise EngineError("TensorRT execute_async_v3 failed")

    with pytest.raises(EngineError, match="execute_async_v3 failed"):
        graphs_with(driver).capture(77, enqueue)
    assert driver.destroyed == [0xBEEF]


def test_failed_instantiation_destroys_the_graph():
    driver = FakeDriver({"cuGraphInstantiateWithFlags": 1})
    with pytest.raises(EngineError, match="cuGraphInstantiate failed with CUDA driver error 1"):
        graphs_with(driver).capture(77, lambda: None)
    assert driver.destroyed == [0xBEEF]
    driver = FakeDriver({})
    assert graphs_with(driver).capture(77, lambda: None) == 0xCAFE  # the executable graph
    assert driver.destroyed == [0xBEEF]  # the captured graph is not needed once instantiated


def test_sidecar_of_another_engine(engine):
    path, _ = engine
    sidecar = read_sidecar(path)
    sidecar.engine_sha256 = "ab" * 32
    write_sidecar(path, sidecar)
    with pytest.raises(EngineError, match="engine and sidecar do not belong together.*rebuild") as info:
        TrtBackend(path)
    assert "\n" not in str(info.value)


def test_plugin_library_that_registers_nothing(engine, monkeypatch):
    path, log = engine
    runtime = sys.modules["tensorrt"].Runtime
    monkeypatch.setattr(runtime, "get_plugin_registry", lambda self: types.SimpleNamespace(
        load_library=lambda path: None, get_creator=lambda *args: None))
    with pytest.raises(EngineError, match="did not load or registers no TTSRSearchTransfer"):
        TrtBackend(path)


def test_refused_profile(engine):
    path, log = engine
    log["profile_accepted"] = False
    with pytest.raises(EngineError, match="refused optimisation profile 0"):
        TrtBackend(path).run(inputs(1, 4, 7))


def test_shape_outside_every_profile(engine):
    path, _ = engine
    backend = TrtBackend(path)
    with pytest.raises(ValueError, match="fits no engine profile"):
        backend.run(inputs(1, 7, 4))


def test_engine_that_does_not_deserialise(engine):
    path, _ = engine
    path.write_bytes(b"garbage")
    sidecar = read_sidecar(path)
    sidecar.engine_sha256 = hashlib.sha256(b"garbage").hexdigest()
    write_sidecar(path, sidecar)
    with pytest.raises(EngineError, match="could not deserialise"):
        TrtBackend(path)


def test_running_tensorrt_version_differs(engine, monkeypatch):
    path, _ = engine
    monkeypatch.setattr(sys.modules["tensorrt"], "__version__", "11.1.0.106")
    with pytest.raises(EngineError, match="built with TensorRT 10.99.0.1, this is TensorRT 11.1.0.106"):
        TrtBackend(path)


def test_without_pycuda(engine, monkeypatch):
    path, _ = engine
    monkeypatch.setitem(sys.modules, "pycuda.autoinit", None)  # import raises ImportError
    with pytest.raises(EngineError, match="pycuda is not installed; install it with `pip install tensorrt-cu13"):
        TrtBackend(path)
