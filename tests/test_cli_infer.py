"""Complete ``infer`` runs on the CPU backends over the small bundled pairs, the gate, and bad inputs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ttsr.atomic import file_sha256
from ttsr.backends.gpu import GpuInfo
from ttsr.backends.profiles import Profile
from ttsr.backends.trt.runner import EngineError
from ttsr.backends.trt.sidecar import EngineSidecar, PluginInfo, write_sidecar
from ttsr.cli import main
from ttsr.model import build_model, save_mmediting_checkpoint
from ttsr.onnx_io import inspect_onnx, record_source
from ttsr.pipeline import make_graph
from ttsr.provenance import Source

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets" / "pairs"
SMALL = ("cat", "coffee")  # the two smallest bundled pairs
# Top-left crops (height, width) that keep each CPU run well under a second: LR, and Ref / HR.
CROP = {"lr": (12, 16), "ref": (48, 64), "hr": (48, 64)}
PERTURBED_WEIGHT = "generator.merge_features.conv_last2.weight"


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory):
    """A seeded model's checkpoint, the same model with one conv weight doubled, and the
    rewritten ONNX graph exported from the first (exported once: the export takes seconds)."""
    root = tmp_path_factory.mktemp("infer")
    model = build_model(seed=0)
    base = save_mmediting_checkpoint(model, root / "base.pth")
    perturbed_model = build_model(seed=0)
    with torch.no_grad():
        dict(perturbed_model.named_parameters())[PERTURBED_WEIGHT].mul_(2.0)
    perturbed = save_mmediting_checkpoint(perturbed_model, root / "perturbed.pth")
    onnx_path = make_graph(model, "rewritten", root, weights=Source(checkpoint_sha256=file_sha256(base)))
    return {"base": base, "perturbed": perturbed, "onnx": onnx_path}


def make_pairs(root: Path) -> Path:
    """lr/ref/hr folders under ``root`` holding top-left crops of the small bundled pairs (HR still 4x the LR)."""
    for role, (height, width) in CROP.items():
        (root / role).mkdir(parents=True)
        for name in SMALL:
            with Image.open(ASSETS / role / f"{name}.png") as image:
                image.crop((0, 0, width, height)).save(root / role / f"{name}.png")
    return root


@pytest.fixture
def pairs(tmp_path):
    return make_pairs(tmp_path)


def folders(pairs: Path, hr: bool = True) -> list[str]:
    args = ["--lr-dir", str(pairs / "lr"), "--ref-dir", str(pairs / "ref")]
    return args + (["--hr-dir", str(pairs / "hr")] if hr else [])


def invoke(*args: str):
    return CliRunner().invoke(main, ["infer", *args], catch_exceptions=False)


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_ort_run_writes_tables_json_images_and_passes_the_gate(artefacts, pairs, tmp_path):
    out, report_path = tmp_path / "sr", tmp_path / "report.json"
    # One ORT thread: its spinning thread pool crawls on a busy 2-core machine.
    result = invoke(*folders(pairs), "--backend", "ort", "--onnx", str(artefacts["onnx"]), "--threads", "1",
                    "--checkpoint", str(artefacts["base"]), "--out-dir", str(out), "--json", str(report_path),
                    "--warmup", "0", "--check", "--min-psnr", "50", "--min-ssim", "0.999")
    assert result.exit_code == 0, result.output
    assert "=== Latency (ort" in result.stdout and "Host Latency" in result.stdout
    assert "=== Accuracy (rgb" in result.stdout and "[PASSED] 4 of 4 check(s) pass" in result.stdout
    assert "warning" not in result.stderr  # the graph records this very checkpoint

    report = read_report(report_path)
    assert [row["name"] for row in report["images"]] == list(SMALL)
    assert report["latency"]["calls"] == 2 and report["latency"]["images"] == 2
    assert report["latency"]["all"]["host_latency_ms"]["min"] > 0
    assert {key: report["gate"][key] for key in ("min_psnr", "min_ssim", "passed", "failing")} == {
        "min_psnr": 50.0, "min_ssim": 0.999, "passed": True, "failing": []}
    for row in report["images"]:
        psnr = row["vs_reference"]["psnr"]
        assert psnr == "inf" or psnr >= 50
        assert row["vs_hr"]["psnr"] == pytest.approx(row["reference_vs_hr"]["psnr"], abs=0.05)
        lr = Image.open(pairs / "lr" / f"{row['name']}.png")
        sr = Image.open(out / f"{row['name']}.png")
        assert sr.size == (4 * lr.size[0], 4 * lr.size[1])
        assert row["output"] == str(out / f"{row['name']}.png")
    assert sorted(p.name for p in out.iterdir()) == ["cat.png", "coffee.png"]


def test_gate_fails_against_a_perturbed_reference(artefacts, pairs, tmp_path):
    """A graph that records no source cannot be checked against the weights: it runs, with a warning,
    and the gate catches the other weights."""
    unrecorded = tmp_path / "unrecorded.onnx"
    record_source(shutil.copy(artefacts["onnx"], unrecorded), Source())
    report_path = tmp_path / "report.json"
    result = invoke(*folders(pairs, hr=False), "--backend", "ort", "--onnx", str(unrecorded),
                    "--threads", "1", "--checkpoint", str(artefacts["perturbed"]), "--json", str(report_path),
                    "--warmup", "0", "--check", "--min-psnr", "50")
    assert result.exit_code == 1, result.output
    assert "[FAILED] 0 of 2 check(s) pass; failing: cat, coffee" in result.stdout
    table = result.stdout.split("=== Gate")[1]
    failing = [line.split() for line in table.splitlines() if line.endswith("FAIL")]
    assert [(row[0], row[4], row[-3:-1]) for row in failing] == [("PSNR", "cat", [">=", "50"]),
                                                                 ("PSNR", "coffee", [">=", "50"])]
    assert "records no checkpoint hash or seed" in result.stderr
    report = read_report(report_path)
    assert report["gate"]["passed"] is False and report["gate"]["failing"] == list(SMALL)
    assert all(row["vs_reference"]["psnr"] < 50 for row in report["images"])
    assert all("vs_hr" not in row for row in report["images"])


@pytest.mark.parametrize("weights, expect", [
    ("perturbed", "but the weights given are the checkpoint with sha256"),
    (None, "but the weights given are the random model of seed 0"),
])
def test_a_graph_of_other_weights_is_refused(artefacts, pairs, tmp_path, weights, expect):
    given = ["--checkpoint", str(artefacts[weights])] if weights else []
    result = invoke(*folders(pairs, hr=False), "--backend", "ort", "--onnx", str(artefacts["onnx"]),
                    "--threads", "1", *given, *outputs(tmp_path), "--check", "--min-psnr", "50")
    assert_clean_failure(result, tmp_path, expect=expect)
    assert f"made from the checkpoint with sha256 {file_sha256(artefacts['base'])[:12]}" in result.stderr


def test_torch_backend_batches_equal_sizes_from_a_pair_list(artefacts, pairs, tmp_path):
    for role in ("lr", "ref", "hr"):
        shutil.copy(pairs / role / "cat.png", pairs / role / "cat2.png")
    listing = pairs / "pairs.txt"
    listing.write_text("# lr ref hr\n" + "".join(
        f"lr/{n}.png ref/{n}.png hr/{n}.png\n" for n in ("cat", "coffee", "cat2")))
    report_path = tmp_path / "report.json"
    result = invoke("--pairs", str(listing), "--backend", "torch", "--checkpoint", str(artefacts["base"]),
                    "--batch", "2", "--warmup", "0", "--json", str(report_path),
                    "--metrics-convention", "mmediting-0.x")
    assert result.exit_code == 0, result.output
    report = read_report(report_path)
    assert report["latency"]["calls"] == 2  # (cat, cat2) and (coffee,)
    assert report["latency"]["images"] == 3
    assert report["metrics"] == {"convention": "mmediting-0.x", "crop_border": 4}
    assert all(row["vs_reference"] == {"psnr": "inf", "ssim": 1.0} for row in report["images"])
    assert report["images"][0]["vs_hr"] == report["images"][2]["vs_hr"]  # cat and its copy


def assert_clean_failure(result, tmp_path, *, exit_code=1, expect=""):
    assert result.exit_code == exit_code, result.output
    message = result.stderr.strip()
    assert message.startswith("Error:") and len(message.splitlines()) == 1, message
    assert expect in message
    assert not (tmp_path / "sr").exists() and not (tmp_path / "report.json").exists()


def outputs(tmp_path: Path) -> list[str]:
    return ["--out-dir", str(tmp_path / "sr"), "--json", str(tmp_path / "report.json")]


def test_missing_folder(pairs, tmp_path):
    result = invoke("--lr-dir", str(tmp_path / "nowhere"), "--ref-dir", str(pairs / "ref"),
                    "--backend", "torch", *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="does not exist")


def test_unmatched_pairs(pairs, tmp_path):
    shutil.copy(pairs / "lr" / "cat.png", pairs / "lr" / "stray.png")
    result = invoke(*folders(pairs), "--backend", "torch", *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="stray")


def test_corrupt_image(pairs, tmp_path):
    (pairs / "ref" / "coffee.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    result = invoke(*folders(pairs), "--backend", "torch", *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="coffee.png")


def test_hr_of_the_wrong_size(pairs, tmp_path):
    Image.new("RGB", (100, 100)).save(pairs / "hr" / "cat.png")
    result = invoke(*folders(pairs), "--backend", "torch", *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="is 100x100 but the SR output")


def test_ref_too_small(pairs, tmp_path):
    Image.new("RGB", (3, 40)).save(pairs / "ref" / "cat.png")
    result = invoke(*folders(pairs), "--backend", "torch", *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="pair cat: Ref is 40x3")


def test_unreadable_onnx(pairs, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    result = invoke(*folders(pairs), "--backend", "ort", "--onnx", str(bad), *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="not a readable ONNX model")


def test_unreadable_engine(pairs, tmp_path):
    result = invoke(*folders(pairs), "--backend", "trt", "--engine", str(tmp_path / "none.engine"),
                    *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="cannot read engine")
    engine = tmp_path / "ttsr.engine"
    engine.write_bytes(b"\0" * 64)
    result = invoke(*folders(pairs), "--backend", "trt", "--engine", str(engine), *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="sidecar")


def test_sidecar_mismatch(pairs, tmp_path):
    engine, plugin = tmp_path / "ttsr.engine", tmp_path / "libplugin.so"
    engine.write_bytes(b"\0" * 64)
    plugin.write_bytes(b"a plugin library built later")
    write_sidecar(engine, EngineSidecar(
        tensorrt_version="10.13.0.35", gpu_name="NVIDIA A10", compute_capability="8.6", precision="fp16",
        hardware_compatibility="none",
        profiles=[Profile((8, 8), (32, 32), (64, 64), (32, 32), (128, 128), (256, 256))],
        plugin=PluginInfo("TTSRSearchTransfer", "1", str(plugin), "0" * 64), onnx_sha256="1" * 64,
        engine_sha256=hashlib.sha256(b"\0" * 64).hexdigest(), plugin_memory=[], checkpoint_sha256=None,
        build_time="2026-11-25T12:00:00+00:00", tool_version="0.1.0"))
    result = invoke(*folders(pairs), "--backend", "trt", "--engine", str(engine), *outputs(tmp_path))
    assert_clean_failure(result, tmp_path, expect="plugin library differs")


def test_gate_needs_a_threshold(pairs, tmp_path):
    result = invoke(*folders(pairs), "--backend", "torch", "--check", *outputs(tmp_path))
    assert result.exit_code == 2 and "--check needs --min-psnr DB, --min-ssim S, --max-p99-ms" in result.stderr


def test_unwritable_output_is_refused_before_the_run_and_undoes_what_it_made(pairs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the JSON folder should be")
    result = invoke(*folders(pairs, hr=False), "--backend", "torch", "--seed", "3", "--warmup", "0",
                    "--out-dir", str(tmp_path / "sr"), "--json", str(blocker / "report.json"))
    assert_clean_failure(result, tmp_path, expect=f"--json {blocker / 'report.json'}: {blocker} is a file, "
                                                  f"not a folder")
    assert "No --checkpoint" not in result.stdout  # refused before the model was even made


def test_recorded_checkpoint_hash_is_in_the_graph_and_its_fp16_pass(artefacts, tmp_path):
    assert inspect_onnx(artefacts["onnx"]).checkpoint_sha256 == file_sha256(artefacts["base"])
    fp16 = inspect_onnx(make_graph(artefacts["onnx"], "fp16", tmp_path))
    assert fp16.precision == "fp16" and fp16.checkpoint_sha256 == file_sha256(artefacts["base"])


def test_help_teaches_through_the_shim():
    result = subprocess.run([sys.executable, "infer.py", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for text in ("--lr-dir", "--backend", "--check", "--min-psnr", "Examples:", "seeded random"):
        assert text in result.stdout
    assert result.stdout.startswith("Usage: infer.py")


@pytest.fixture
def fake_trt(pairs, tmp_path, monkeypatch):
    """The recording TensorRT/pycuda stand-ins of test_runtime_trt_backend, with an engine whose
    profile fits the pairs (its "network" upsamples lq 4x)."""
    from test_runtime_trt_backend import VERSION, fake_modules
    from ttsr.backends.trt import runner as trt_backend

    log: dict = {}
    for name, module in fake_modules(log).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(trt_backend, "require_gpu", lambda: GpuInfo("Fake GPU", "8.6"))
    plugin, engine = tmp_path / "libplugin.so", tmp_path / "ttsr.engine"
    plugin.write_bytes(b"plugin")
    engine.write_bytes(b"engine")
    write_sidecar(engine, EngineSidecar(
        tensorrt_version=VERSION, gpu_name="Fake GPU", compute_capability="8.6", precision="fp16",
        hardware_compatibility="none", profiles=[Profile((12, 16), (12, 16), (12, 16), (48, 64), (48, 64),
                                                         (48, 64))],
        plugin=PluginInfo("TTSRSearchTransfer", "1", str(plugin), file_sha256(plugin)), onnx_sha256="1" * 64,
        engine_sha256=hashlib.sha256(b"engine").hexdigest(), plugin_memory=[], checkpoint_sha256=None,
        build_time="2026-11-25T12:00:00+00:00", tool_version="0.1.0", seed=0))  # infer's default weights
    return ["--backend", "trt", "--engine", str(engine), "--warmup", "0"], log


def test_trt_run_frees_the_gpu_buffers(pairs, fake_trt):
    args, log = fake_trt
    result = invoke(*folders(pairs, hr=False), *args)
    assert result.exit_code == 0, result.output
    assert "=== Latency (trt" in result.stdout and log["executions"] == 2
    assert len(log["freed"]) == 5 and log["freed_host"] == 5  # lq, lq_up, ref, ref_downup, sr


@pytest.mark.parametrize("failure, message", [
    (EngineError("TensorRT execute_async_v3 failed (see its log above)"),
     "Error: trt backend failed: TensorRT execute_async_v3 failed (see its log above)"),
    (RuntimeError("cuMemcpyDtoHAsync failed: an illegal memory access was encountered"),
     "Error: trt backend failed with RuntimeError: cuMemcpyDtoHAsync failed: an illegal memory access was "
     "encountered; rerun with --backend ort to tell the engine from the inputs"),
])
def test_trt_failures_name_the_error_and_still_free_the_buffers(pairs, fake_trt, monkeypatch, failure, message):
    args, log = fake_trt

    def fail(self, stream):
        raise failure

    monkeypatch.setattr(log["Context"], "execute_async_v3", fail)
    result = invoke(*folders(pairs, hr=False), *args)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message)
    assert len(log["freed"]) == 5
