import dataclasses
import json

import pytest

from ttsr.backends.profiles import Profile
from ttsr.backends.trt.sidecar import (EngineSidecar, PluginInfo, PluginMemory, SidecarError, check_engine_hash,
                                 check_sidecar, read_sidecar, sidecar_path, write_sidecar)


def make_sidecar(**overrides):
    values = dict(
        tensorrt_version="10.13.0.35", gpu_name="NVIDIA A10", compute_capability="8.6",
        precision="fp16", hardware_compatibility="none",
        profiles=[Profile((8, 8), (16, 16), (32, 32), (32, 32), (64, 64), (128, 128), 1, 1, 2)],
        plugin=PluginInfo("TTSRSearchTransfer", "1", "build/libttsr_trt_plugin.so", "ab" * 32),
        onnx_sha256="cd" * 32, engine_sha256="ef" * 32,
        plugin_memory=[PluginMemory(workspace_bytes=178_492_160, ref_chunk=900, ref_positions=3600)],
        checkpoint_sha256=None, build_time="2026-11-25T12:00:00+00:00",
        tool_version="0.1.0")
    values.update(overrides)
    return EngineSidecar(**values)


def test_round_trip_through_the_file(tmp_path):
    engine = tmp_path / "model.engine"
    path = write_sidecar(engine, make_sidecar())
    assert path == sidecar_path(engine) == tmp_path / "model.engine.json"
    assert read_sidecar(engine) == make_sidecar()
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine.json"]  # no temp file left


def test_missing_and_corrupt_sidecars(tmp_path):
    engine = tmp_path / "model.engine"
    with pytest.raises(SidecarError, match="is missing"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(SidecarError, match="not a valid engine sidecar"):
        read_sidecar(engine)
    data = json.loads(make_sidecar().to_json())
    data["format_version"] = 1  # before engine_sha256 and plugin_memory
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(SidecarError, match=r"format_version 1, this tool reads 2\); rebuild"):
        read_sidecar(engine)
    data["format_version"] = 99
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(SidecarError, match="format_version 99"):
        read_sidecar(engine)


def test_check_passes_when_everything_matches():
    assert check_sidecar(make_sidecar(), "10.13.0.35", "8.6", "ab" * 32) == []


def test_check_reports_each_mismatch_on_one_line():
    errors = check_sidecar(make_sidecar(), "11.1.0.106", "9.0", "ef" * 32)
    assert len(errors) == 3
    assert "TensorRT 10.13.0.35" in errors[0] and "TensorRT 11.1.0.106" in errors[0]
    assert "compute capability 8.6" in errors[1] and "9.0" in errors[1]
    assert "plugin library differs" in errors[2]
    assert all("\n" not in e for e in errors)
    assert "is missing" in check_sidecar(make_sidecar(), "10.13.0.35", "8.6", None)[0]


def test_hardware_compatibility_levels():
    ampere = make_sidecar(hardware_compatibility="ampere_plus")
    assert check_sidecar(ampere, "10.13.0.35", "9.0", "ab" * 32) == []
    assert "Ampere" in check_sidecar(ampere, "10.13.0.35", "7.5", "ab" * 32)[0]
    same = make_sidecar(hardware_compatibility="same_compute_capability")
    assert check_sidecar(same, "10.13.0.35", "8.6", "ab" * 32) == []
    assert len(check_sidecar(same, "10.13.0.35", "8.9", "ab" * 32)) == 1
    odd = make_sidecar(hardware_compatibility="everything")
    assert "unknown hardware-compatibility level" in check_sidecar(odd, "10.13.0.35", "8.6", "ab" * 32)[0]


def test_engine_hash_ties_the_sidecar_to_its_engine():
    assert check_engine_hash(make_sidecar(), "ef" * 32) == []
    (error,) = check_engine_hash(make_sidecar(), "01" * 32)
    assert error.startswith("engine and sidecar do not belong together") and "rebuild" in error


def test_plugin_memory_is_described_in_mib():
    memory = make_sidecar().plugin_memory[0]
    assert memory.describe() == ("workspace 170.2 MiB (tile budget default); at the largest shape the kernels "
                                 "score 900 of 3600 Ref positions per pass")
    budgeted = dataclasses.replace(memory, workspace_budget_mib=256)
    assert "(tile budget 256 MiB)" in budgeted.describe()
