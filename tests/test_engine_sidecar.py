import json

import pytest

from ttsr.engine.profiles import Profile
from ttsr.engine.sidecar import (EngineSidecar, PluginInfo, SidecarError, check_sidecar, read_sidecar,
                                 sidecar_path, write_sidecar)


def make_sidecar(**overrides):
    values = dict(
        tensorrt_version="10.13.0.35", gpu_name="NVIDIA A10", compute_capability="8.6",
        precision="fp16", hardware_compatibility="none",
        profiles=[Profile((8, 8), (16, 16), (32, 32), (32, 32), (64, 64), (128, 128), 1, 1, 2)],
        plugin=PluginInfo("TTSRSearchTransfer", "1", "build/libttsr_trt_plugin.so", "ab" * 32),
        onnx_sha256="cd" * 32, checkpoint_sha256=None, build_time="2026-11-25T12:00:00+00:00",
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
