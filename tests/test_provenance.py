"""Issue #14: graphs and engines record the weights they were made from (checkpoint sha256 or seed), and
every command that pairs one with weights refuses a mismatch in one line."""

from __future__ import annotations

import shutil

import onnx
import pytest
from click.testing import CliRunner

from _onnx_models import onnx_models
from test_cli_build_engine import build, fake_build  # noqa: F401 (fixture)
from ttsr import pipeline
from ttsr.backends.gpu import GpuInfo
from ttsr.backends.trt.sidecar import read_sidecar
from ttsr.cli.export import export_command, fp16_estimate_command
from ttsr.onnx_io import inspect_onnx, record_source
from ttsr.provenance import Source, SourceMismatch, check_source


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


A, B = Source(checkpoint_sha256="a" * 64), Source(checkpoint_sha256="b" * 64)


@pytest.mark.parametrize("recorded, given", [(A, A), (Source(seed=3), Source(seed=3))])
def test_the_same_weights_pass(recorded, given):
    assert check_source(recorded, given, "graph g.onnx") is None


@pytest.mark.parametrize("recorded, given, expect", [
    (A, B, "made from the checkpoint with sha256 aaaaaaaaaaaa, but the weights given are the checkpoint "
           "with sha256 bbbbbbbbbbbb; pass --checkpoint with sha256 aaaaaaaaaaaa"),
    (A, Source(seed=0), "but the weights given are the random model of seed 0"),
    (Source(seed=3), Source(seed=4), "made from the random model of seed 3, but the weights given are the "
                                     "random model of seed 4; pass --seed 3 and no --checkpoint"),
    (Source(seed=3), A, "but the weights given are the checkpoint with sha256 aaaaaaaaaaaa"),
])
def test_other_weights_are_refused_in_one_line(recorded, given, expect):
    with pytest.raises(SourceMismatch) as info:
        check_source(recorded, given, "graph g.onnx")
    assert expect in str(info.value) and "\n" not in str(info.value)


def test_a_graph_without_a_record_is_reported():
    warning = check_source(Source(), A, "graph g.onnx")
    assert warning is not None and "records no checkpoint hash or seed" in warning


def test_the_seed_is_recorded_and_replaces_a_checkpoint(models, tmp_path):
    graph = shutil.copy(models.rewritten, tmp_path / "g.onnx")
    record_source(graph, Source(seed=7))
    assert inspect_onnx(graph).source == Source(seed=7)
    record_source(graph, A)
    assert inspect_onnx(graph).source == A
    keys = [p.key for p in onnx.load(graph).metadata_props]
    assert "ttsr.source_seed" not in keys and keys.count("ttsr.source_checkpoint_sha256") == 1


def test_export_records_the_seed(models, tmp_path, monkeypatch):
    from ttsr import export

    def exported(model, path, **kwargs):  # the shared fixture's export, without its record
        graph = onnx.load(models.plain)
        del graph.metadata_props[:]
        onnx.save(graph, path)
        return path

    monkeypatch.setattr(export, "export_onnx", exported)
    result = CliRunner().invoke(export_command, [str(tmp_path / "g.onnx"), "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert inspect_onnx(tmp_path / "g.onnx").source == Source(seed=5)


@pytest.mark.parametrize("weights, expect", [
    (["--seed", "1"], "but the weights given are the random model of seed 1"),
    ([], "but the weights given are the random model of seed 0"),
])
def test_fp16_estimate_refuses_a_graph_of_other_weights(models, weights, expect):
    result = CliRunner().invoke(fp16_estimate_command, ["--onnx", str(models.fp16), *weights])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error:") and expect in line
    assert "FP16 vs FP32" not in result.stdout


def test_build_engine_records_the_seed_in_the_sidecar(fake_build, tmp_path, monkeypatch):
    install, args = fake_build
    install(GpuInfo("Fake GPU", "8.9"))
    graph = args[args.index("--onnx") + 1]
    record_source(graph, Source(seed=3))
    result = build(*args)
    assert result.exit_code == 0, result.output
    assert read_sidecar(tmp_path / "ttsr.engine").source == Source(seed=3)
    # and from --seed: the graph the chain makes (stood in by the small one) records it too
    made = []
    monkeypatch.setattr(pipeline, "make_graph", lambda model, target, workdir, **kw: made.append(kw) or graph)
    seeded = [arg for arg in args if arg not in ("--onnx", graph)]
    result = build(*seeded, "--seed", "4")
    assert result.exit_code == 0, result.output
    assert read_sidecar(tmp_path / "ttsr.engine").source == Source(seed=4)
    assert made[0]["weights"] == Source(seed=4)
