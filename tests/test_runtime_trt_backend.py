"""TrtBackend's buffer plumbing against recording stand-ins for ``tensorrt`` and ``pycuda``.

The stand-in "engine" upsamples ``lq`` 4x by pixel repetition, reading and
writing the fake device memory at the addresses the backend bound, so a
wrong copy, binding or shape shows up in the output.  Real TensorRT runs are
checked on a GPU machine with scripts/demo.sh.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from ttsr.data.prepare import ModelInputs
from ttsr.engine.gpu import GpuInfo
from ttsr.engine.profiles import Profile
from ttsr.engine.sidecar import EngineSidecar, PluginInfo, write_sidecar
from ttsr.model import file_sha256
from ttsr.runtime import trt_backend
from ttsr.runtime.trt_backend import EngineError, TrtBackend

VERSION = "10.99.0.1"


def fake_modules(log: dict) -> dict[str, types.ModuleType]:
    memory: dict[int, bytearray] = {}

    class Allocation:
        def __init__(self, nbytes):
            self.address = 0x1000 * (len(memory) + 1)
            memory[self.address] = bytearray(nbytes)

        def __int__(self):
            return self.address

    class Event:
        def record(self, stream):
            log["events"] = log.get("events", 0) + 1

        def synchronize(self):
            pass

        def time_till(self, other):
            return 0.5

    driver = types.ModuleType("pycuda.driver")
    driver.Stream = lambda: types.SimpleNamespace(handle=77)
    driver.Event = Event
    driver.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype)
    driver.mem_alloc = Allocation

    def htod(device, host, stream):
        memory[int(device)][:] = host.tobytes()

    def dtoh(host, device, stream):
        host[...] = np.frombuffer(memory[int(device)], dtype=host.dtype).reshape(host.shape)

    driver.memcpy_htod_async, driver.memcpy_dtoh_async = htod, dtoh
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver

    class Context:
        def __init__(self):
            self.shapes, self.addresses = {}, {}

        def set_optimization_profile_async(self, index, stream):
            log.setdefault("profiles", []).append(index)

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            n, c, h, w = self.shapes["lq"]
            return [n, c, 4 * h, 4 * w]

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def execute_async_v3(self, stream):
            log["executions"] = log.get("executions", 0) + 1
            lq = np.frombuffer(memory[self.addresses["lq"]], np.float32).reshape(self.shapes["lq"])
            sr = np.repeat(np.repeat(lq, 4, axis=2), 4, axis=3)
            memory[self.addresses["sr"]][:] = sr.astype(np.float32).tobytes()
            return True

    class Engine:
        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def get_plugin_registry(self):
            return types.SimpleNamespace(load_library=lambda path: log.setdefault("plugin", path))

        def deserialize_cuda_engine(self, blob):
            return Engine() if blob == b"engine" else None

    trt = types.ModuleType("tensorrt")
    trt.__version__ = VERSION
    trt.Builder = object
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.Runtime = Runtime
    trt.nptype = lambda dtype: np.float32
    return {"tensorrt": trt, "pycuda": pycuda, "pycuda.driver": driver,
            "pycuda.autoinit": types.ModuleType("pycuda.autoinit")}


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
        onnx_sha256="0" * 64, checkpoint_sha256=None, build_time="2026-11-25T12:00:00+00:00",
        tool_version="0.1.0"))
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
    assert backend.last_stages == {"h2d": 0.5, "compute": 0.5, "d2h": 0.5}
    assert log["profiles"] == [0]  # chosen once for the shape


def test_each_shape_gets_its_profile_and_buffers(engine):
    path, log = engine
    backend = TrtBackend(path)
    small, large = inputs(1, 4, 2), inputs(1, 8, 3)
    for batch in (small, large, small):
        np.testing.assert_array_equal(backend.run(batch), upsampled(batch))
    assert log["profiles"] == [0, 1, 0]
    assert log["executions"] == 3


def test_shape_outside_every_profile(engine):
    path, _ = engine
    backend = TrtBackend(path)
    with pytest.raises(ValueError, match="fits no engine profile"):
        backend.run(inputs(1, 7, 4))


def test_engine_that_does_not_deserialise(engine):
    path, _ = engine
    path.write_bytes(b"garbage")
    with pytest.raises(EngineError, match="could not deserialise"):
        TrtBackend(path)


def test_running_tensorrt_version_differs(engine, monkeypatch):
    path, _ = engine
    monkeypatch.setattr(sys.modules["tensorrt"], "__version__", "11.1.0.106")
    with pytest.raises(EngineError, match="built with TensorRT 10.99.0.1, this is TensorRT 11.1.0.106"):
        TrtBackend(path)
