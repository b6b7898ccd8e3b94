"""``ttsr export-triton``: repositories whose config.pbtxt files parse with Triton's own model-config
protobuf (tritonclient's ``model_config_pb2``) and whose dims and batch sizes are the engine sidecar's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests._onnx_models import onnx_models
from ttsr.cli import main
from ttsr.backends.profiles import Profile
from ttsr.backends.trt.sidecar import EngineSidecar, PluginInfo, write_sidecar
from ttsr.atomic import file_sha256

ENGINE_BYTES = b"not a real plan, but the bytes the repository must carry"


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def engine_with_sidecar(folder: Path, profiles: list[Profile], plugin_sha256: str | None = None) -> Path:
    engine, plugin = folder / "ttsr.engine", folder / "libttsr_trt_plugin.so"
    engine.write_bytes(ENGINE_BYTES)
    plugin.write_bytes(b"plugin library bytes")
    write_sidecar(engine, EngineSidecar(
        tensorrt_version="10.16.1.11", gpu_name="NVIDIA L4", compute_capability="8.9", precision="fp16",
        hardware_compatibility="none", profiles=profiles,
        plugin=PluginInfo("TTSRSearchTransfer", "1", str(plugin), plugin_sha256 or file_sha256(plugin)),
        onnx_sha256="1" * 64, engine_sha256=hashlib.sha256(ENGINE_BYTES).hexdigest(), plugin_memory=[],
        checkpoint_sha256=None, build_time="2026-12-04T12:00:00+00:00", tool_version="0.1.0"))
    return engine


def export(*args: str):
    return CliRunner().invoke(main, ["export-triton", *args])


def dims(config: model_config_pb2.ModelConfig) -> dict[str, list[int]]:
    return {tensor.name: list(tensor.dims) for tensor in [*config.input, *config.output]}


def test_static_profile_gives_fixed_dims_and_its_batch(tmp_path):
    # LR 40x32, Ref 160x128, batch 1..2: every dim fixed by the one profile.
    engine = engine_with_sidecar(tmp_path, [Profile((40, 32), (40, 32), (40, 32), (160, 128), (160, 128),
                                                    (160, 128), 1, 2, 2)])
    repo = tmp_path / "repo"
    result = export(str(repo), "--engine", str(engine), "--instances", "3", "--max-queue-delay-us", "1500")
    assert result.exit_code == 0, result.output
    plan = parse(repo / "ttsr_trt" / "config.pbtxt")
    assert plan.platform == "tensorrt_plan" and plan.max_batch_size == 2
    assert dims(plan) == {"lq": [3, 40, 32], "lq_up": [3, 160, 128], "ref": [3, 160, 128],
                          "ref_downup": [3, 160, 128], "sr": [3, 160, 128]}
    assert all(t.data_type == model_config_pb2.TYPE_FP32 for t in [*plan.input, *plan.output])
    assert plan.dynamic_batching.max_queue_delay_microseconds == 1500
    (group,) = plan.instance_group
    assert group.count == 3 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert list(group.profile) == ["0"]
    assert (repo / "ttsr_trt" / "1" / "model.plan").read_bytes() == ENGINE_BYTES
    plugin = repo / "plugins" / "libttsr_trt_plugin.so"
    assert file_sha256(plugin) == file_sha256(tmp_path / "libttsr_trt_plugin.so")
    readme = (repo / "README.md").read_text()
    assert "--backend-config=tensorrt,plugins=" in readme and "LD_PRELOAD=" in readme


def test_two_profiles_give_variable_dims_the_largest_batch_and_both_profiles(tmp_path):
    profiles = [Profile((16, 16), (32, 32), (64, 48), (64, 64), (128, 128), (256, 256), 1, 2, 4),
                Profile((40, 40), (40, 40), (40, 40), (160, 160), (160, 160), (160, 160), 1, 8, 8)]
    repo = tmp_path / "repo"
    result = export(str(repo), "--engine", str(engine_with_sidecar(tmp_path, profiles)), "--model-name", "sr")
    assert result.exit_code == 0, result.output
    plan = parse(repo / "sr_trt" / "config.pbtxt")
    assert plan.max_batch_size == 8
    assert dims(plan) == {name: [3, -1, -1] for name in ("lq", "lq_up", "ref", "ref_downup", "sr")}
    assert list(plan.instance_group[0].profile) == ["0", "1"]
    for step in ("sr_preprocess", "sr_postprocess"):
        config = parse(repo / step / "config.pbtxt")
        assert config.backend == "python" and config.max_batch_size == 8
        assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
        spec = json.loads(config.parameters["ttsr"].string_value)
        assert [Profile.from_dict(p) for p in spec["profiles"]] == profiles
        assert "TritonPythonModel" in (repo / step / "1" / "model.py").read_text()


def test_ensemble_chains_images_through_the_three_models(tmp_path):
    profiles = [Profile((16, 16), (32, 32), (64, 64), (64, 64), (128, 128), (256, 256), 1, 2, 4)]
    repo = tmp_path / "repo"
    assert export(str(repo), "--engine", str(engine_with_sidecar(tmp_path, profiles))).exit_code == 0
    ensemble = parse(repo / "ttsr" / "config.pbtxt")
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 4
    assert [t.name for t in ensemble.input] == ["LR", "REF"] and [t.name for t in ensemble.output] == ["SR"]
    assert all(t.data_type == model_config_pb2.TYPE_UINT8 and list(t.dims) == [-1, -1, 3]
               for t in [*ensemble.input, *ensemble.output])
    available = {"LR", "REF"}
    for step in ensemble.ensemble_scheduling.step:
        config = parse(repo / step.model_name / "config.pbtxt")
        # Each step's map keys are its model's tensors; the values were produced before (or are inputs).
        assert set(step.input_map) == {t.name for t in config.input}
        assert set(step.input_map.values()) <= available
        assert set(step.output_map) == {t.name for t in config.output}
        available |= set(step.output_map.values())
    assert "SR" in available
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == ["ttsr_preprocess", "ttsr_trt",
                                                                         "ttsr_postprocess"]
    assert (repo / "ttsr" / "1").is_dir()  # Triton wants a version folder, even for an ensemble


@pytest.mark.parametrize("problem, expect", [
    ("plugin", "plugin library differs"),
    ("batch", "batch min 2"),
    ("exists", "exists; give a new folder"),
])
def test_refusals_leave_nothing_behind(tmp_path, problem, expect):
    profile = Profile((16, 16), (32, 32), (64, 64), (64, 64), (128, 128), (256, 256),
                      2 if problem == "batch" else 1, 2, 4)
    engine = engine_with_sidecar(tmp_path, [profile], plugin_sha256="0" * 64 if problem == "plugin" else None)
    repo = tmp_path / "repo"
    if problem == "exists":
        repo.mkdir()
    before = sorted(tmp_path.iterdir())
    result = export(str(repo), "--engine", str(engine))
    assert result.exit_code != 0 and expect in result.output
    assert sorted(tmp_path.iterdir()) == before


def test_onnx_repository_is_one_python_model_with_the_graph(tmp_path_factory, tmp_path):
    graph = onnx_models(tmp_path_factory)
    repo = tmp_path / "cpu"
    result = export(str(repo), "--onnx", str(graph.rewritten), "--max-lr", "48x40", "--max-ref", "128",
                    "--max-batch", "3", "--threads", "2")
    assert result.exit_code == 0, result.output
    config = parse(repo / "ttsr" / "config.pbtxt")
    assert config.backend == "python" and config.max_batch_size == 3
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    spec = json.loads(config.parameters["ttsr"].string_value)
    assert spec["backend"]["kind"] == "ort" and spec["backend"]["onnx"] == "1/ttsr.onnx"
    assert spec["backend"]["threads"] == 2
    (profile,) = [Profile.from_dict(p) for p in spec["profiles"]]
    assert (profile.lr_max, profile.ref_max, profile.batch_max) == ((48, 40), (128, 128), 3)
    assert file_sha256(repo / "ttsr" / "1" / "ttsr.onnx") == file_sha256(graph.rewritten)
    assert "RegisterCustomOps" in (repo / "README.md").read_text()


def test_onnx_repository_serves_on_triton(tmp_path_factory, tmp_path):
    """The exported CPU repository, as is, under nvidia-pytriton's tritonserver: it loads (the graph found
    relative to the model folder) and answers a request with the SR of the right size."""
    import numpy as np
    import tritonclient.http as http

    from tests.test_serve import _free_ports
    from ttsr.serve.server import ServerOptions, TritonServer, find_triton, make_backend_dir

    repo = tmp_path / "cpu"
    assert export(str(repo), "--onnx", str(onnx_models(tmp_path_factory).rewritten), "--threads", "1").exit_code == 0
    install = find_triton()
    http_port, grpc_port, metrics_port = _free_ports(3)
    options = ServerOptions(repository=repo, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                            log_level="error")
    server = TritonServer(install, options, make_backend_dir(install, tmp_path / "work"), echo=lambda line: None)
    try:
        server.wait_ready(180)
        client = http.InferenceServerClient(f"127.0.0.1:{http_port}", network_timeout=60)
        rng = np.random.default_rng(0)
        inputs = []
        for name, shape in (("LR", (1, 8, 12, 3)), ("REF", (1, 32, 36, 3))):
            tensor = http.InferInput(name, list(shape), "UINT8")
            tensor.set_data_from_numpy(rng.integers(0, 256, shape, dtype=np.uint8))
            inputs.append(tensor)
        sr = client.infer("ttsr", inputs, outputs=[http.InferRequestedOutput("SR")]).as_numpy("SR")
        client.close()
        assert sr.shape == (1, 32, 48, 3) and sr.dtype == np.uint8 and sr.std() > 0
    finally:
        assert server.stop() == 0


def test_onnx_repository_needs_the_rewritten_graph(tmp_path_factory, tmp_path):
    result = export(str(tmp_path / "cpu"), "--onnx", str(onnx_models(tmp_path_factory).plain))
    assert result.exit_code == 1 and "no TTSRSearchTransfer node" in result.output
    assert list(tmp_path.iterdir()) == []
