"""``build_engine`` against a recording stand-in for the ``tensorrt`` module.

No GPU or TensorRT exists on CI, so this checks what the builder asks of
TensorRT (network flags, profile shapes, workspace, timing cache, plugin
loading) and what it writes (engine, sidecar, cache, all atomically); the real
build is checked on a GPU machine with scripts/demo.sh.
"""

from __future__ import annotations

import hashlib
import sys
import types
from enum import IntEnum

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ttsr import contract
from ttsr.backends.gpu import GpuInfo
from ttsr.backends.profiles import Profile
from ttsr.backends.trt import builder as builder_module
from ttsr.backends.trt import checks as trt_checks
from ttsr.backends.trt.builder import BuildError, BuildOptions, build_engine
from ttsr.backends.trt.sidecar import read_sidecar
from ttsr.contract import Shapes
from ttsr.plugin.native import NativeLibraryError, chunk_size, workspace_size

INPUTS = ("lq", "lq_up", "ref", "ref_downup")


class Flag(IntEnum):
    STRONGLY_TYPED = 1


def fake_tensorrt(calls: dict, *, has_fp16: bool = True, cache_accepted: bool = True,
                  plugin_loads: bool = True) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.0.1"
    trt.NetworkDefinitionCreationFlag = Flag
    trt.BuilderFlag = types.SimpleNamespace(**({"FP16": "fp16-flag"} if has_fp16 else {}))
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.HardwareCompatibilityLevel = types.SimpleNamespace(NONE="hc-none", AMPERE_PLUS="hc-ampere")
    trt.Dims = lambda dims: tuple(dims)

    class Logger:
        WARNING = "warning"

        def __init__(self, level):
            pass

    class Registry:
        def load_library(self, path):  # noexcept in C++: None on failure
            calls["plugin"] = path
            return object() if plugin_loads else None

        def get_creator(self, *args):
            return object() if plugin_loads else None

    class Profile_:
        def set_shape(self, name, low, opt, high):
            calls.setdefault("shapes", {})[name] = (low, opt, high)

    class Cache:
        def __init__(self, blob):
            calls["cache_in"] = bytes(blob)

        def serialize(self):
            return b"cache-after-build"

    class Config:
        def set_memory_pool_limit(self, pool, size):
            calls["pool"] = (pool, size)

        def set_flag(self, flag):
            calls.setdefault("flags", []).append(flag)

        def create_timing_cache(self, blob):
            calls["cache"] = Cache(blob)
            return calls["cache"]

        def set_timing_cache(self, cache, ignore_mismatch):
            return cache_accepted

        def get_timing_cache(self):
            return calls["cache"]

        def add_optimization_profile(self, profile):
            calls["profiles"] = calls.get("profiles", 0) + 1

        def __setattr__(self, name, value):
            calls.setdefault("config", {})[name] = value

    class Builder:
        def __init__(self, logger):
            pass

        def get_plugin_registry(self):
            return Registry()

        def create_network(self, flags):
            calls["network_flags"] = flags
            return "network"

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile_()

        def build_serialized_network(self, network, config):
            return b"serialized-engine"

    class OnnxParser:
        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls["parsed"] = path
            return True

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    return trt


def write_graph_and_plugin(tmp_path):
    """A minimal rewritten FP16 graph (one plugin node, an FP16 weight) and a stand-in plugin file."""
    graph = tmp_path / "g.onnx"
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, None, None]) for n in INPUTS]
    weight = helper.make_tensor("w", TensorProto.FLOAT16, [1], [1.0])
    node = helper.make_node(contract.OP_TYPE, list(INPUTS), ["sr"], domain=contract.DOMAIN)
    output = helper.make_tensor_value_info("sr", TensorProto.FLOAT, None)
    onnx.save(helper.make_model(helper.make_graph([node], "g", inputs, [output], [weight])), graph)
    plugin = tmp_path / "libplugin.so"
    plugin.write_bytes(b"plugin code")
    return graph, plugin


@pytest.fixture
def setup(tmp_path, monkeypatch):
    def install(**kwargs):
        calls: dict = {}
        monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(calls, **kwargs))
        monkeypatch.setattr(trt_checks, "detect_gpu", lambda: GpuInfo("Fake GPU", "8.9"))
        return calls

    graph, plugin = write_graph_and_plugin(tmp_path)
    profile = Profile((8, 8), (16, 24), (32, 32), (32, 32), (64, 96), (128, 128), 1, 2, 4)
    options = BuildOptions(onnx_path=graph, output=tmp_path / "ttsr.engine", profiles=[profile],
                           plugin_library=plugin, precision="fp16", workspace_mib=512,
                           timing_cache=tmp_path / "timing.cache", optimization_level=4,
                           hardware_compatibility="ampere_plus", checkpoint_sha256="ab" * 32)
    return install, options


def test_strongly_typed_build_writes_engine_sidecar_and_cache(setup, tmp_path):
    install, options = setup
    calls = install()
    options.timing_cache.write_bytes(b"cache-before")
    sidecar = build_engine(options)

    assert calls["network_flags"] == 1 << 1  # 1 << STRONGLY_TYPED
    assert "flags" not in calls  # no weak-typing flag
    assert calls["plugin"] == str(options.plugin_library) and calls["parsed"] == str(options.onnx_path)
    assert calls["pool"] == ("workspace", 512 << 20)
    assert calls["config"] == {"builder_optimization_level": 4, "hardware_compatibility_level": "hc-ampere"}
    assert calls["shapes"]["lq"] == ((1, 3, 8, 8), (2, 3, 16, 24), (4, 3, 32, 32))
    assert calls["shapes"]["lq_up"] == ((1, 3, 32, 32), (2, 3, 64, 96), (4, 3, 128, 128))
    assert set(calls["shapes"]) == set(INPUTS) and calls["profiles"] == 1
    assert calls["cache_in"] == b"cache-before"

    assert options.output.read_bytes() == b"serialized-engine"
    assert options.timing_cache.read_bytes() == b"cache-after-build"
    assert read_sidecar(options.output) == sidecar
    assert (sidecar.tensorrt_version, sidecar.gpu_name, sidecar.compute_capability) == \
        ("10.99.0.1", "Fake GPU", "8.9")
    assert sidecar.precision == "fp16" and sidecar.hardware_compatibility == "ampere_plus"
    assert sidecar.plugin.sha256 == hashlib.sha256(b"plugin code").hexdigest()
    assert sidecar.onnx_sha256 == hashlib.sha256(options.onnx_path.read_bytes()).hexdigest()
    assert sidecar.checkpoint_sha256 == "ab" * 32
    assert sidecar.engine_sha256 == hashlib.sha256(b"serialized-engine").hexdigest()
    # the plugin at the profile's largest shape: batch 4, LR 32x32, Ref 128x128 (search grid 32x32), float16
    largest = Shapes(4, 256, 32, 32, 32, 32, 256, 128, 64)
    (memory,) = sidecar.plugin_memory
    assert memory.ref_positions == 32 * 32 and memory.ref_chunk == chunk_size(largest, np.float16)
    assert memory.workspace_bytes == workspace_size(largest, np.float16)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "g.onnx", "libplugin.so", "timing.cache", "ttsr.engine", "ttsr.engine.json"]


def test_weak_fp16_only_where_tensorrt_has_the_flag(setup, tmp_path):
    install, options = setup
    fp32_graph = onnx.load(options.onnx_path)
    fp32_graph.graph.initializer[0].CopyFrom(helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0]))
    onnx.save(fp32_graph, options.onnx_path)
    options.weak_fp16 = True
    calls = install(has_fp16=True)
    assert build_engine(options).precision == "fp16-weak"
    assert calls["network_flags"] == 0 and calls["flags"] == ["fp16-flag"]
    install(has_fp16=False)
    options.output = tmp_path / "other.engine"
    with pytest.raises(BuildError, match="no weakly typed FP16 flag"):
        build_engine(options)
    assert not options.output.exists()


def test_refused_timing_cache(setup):
    install, options = setup
    install(cache_accepted=False)
    options.timing_cache.write_bytes(b"from another GPU")
    with pytest.raises(BuildError, match="made by another TensorRT or GPU"):
        build_engine(options)
    assert not options.output.exists()


def test_missing_plugin_library(setup):
    install, options = setup
    install()
    options.plugin_library.unlink()
    with pytest.raises(BuildError, match="does not exist; build it with `bash scripts/setup.sh`"):
        build_engine(options)


def test_no_gpu(setup, monkeypatch):
    install, options = setup
    install()
    monkeypatch.setattr(trt_checks, "detect_gpu", lambda: None)
    with pytest.raises(BuildError, match="no NVIDIA GPU found"):
        build_engine(options)


def test_ampere_plus_needs_an_ampere_gpu_to_build_on(setup, monkeypatch):
    install, options = setup
    calls = install()
    monkeypatch.setattr(trt_checks, "detect_gpu", lambda: GpuInfo("Tesla T4", "7.5"))
    with pytest.raises(BuildError, match="ampere_plus needs an Ampere or newer GPU.*Tesla T4 is sm 7.5") as info:
        build_engine(options)
    assert "\n" not in str(info.value)
    assert "plugin" not in calls and not options.output.exists()  # refused before TensorRT does anything


def test_plugin_library_that_registers_nothing(setup):
    install, options = setup
    install(plugin_loads=False)
    with pytest.raises(BuildError, match="did not load or registers no TTSRSearchTransfer version 1"):
        build_engine(options)
    assert not options.output.exists()


def test_without_the_cpu_twin_the_plugin_memory_is_not_recorded(setup, monkeypatch):
    install, options = setup
    install()

    def missing(profile, precision, budget_mib):
        raise NativeLibraryError("libttsr_st_cpu.so not found")

    monkeypatch.setattr(builder_module, "plugin_memory", missing)
    assert build_engine(options).plugin_memory == []
    assert read_sidecar(options.output).plugin_memory == []
