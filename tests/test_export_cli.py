"""``export`` command: checkpoint -> plain, rewritten and FP16 graphs; usage errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from _onnx_models import onnx_models, random_inputs, torch_output
from ttsr.atomic import file_sha256
from ttsr.backends.ort import OrtBackend
from ttsr.cli.export import export_command
from ttsr.model import load_checkpoint
from ttsr.onnx_io import inspect_onnx
from ttsr.provenance import Source


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return onnx_models(tmp_path_factory)


def test_export_from_a_checkpoint_writes_all_three_graphs(models, tmp_path, monkeypatch):
    """``ttsr export OUT --checkpoint CKPT --fp16 --keep-intermediates``; the exporter itself is stood in for
    by the shared fixture's export of the same checkpoint (without its recorded hash), to spare a second
    10-20 s export: the rewrite, the FP16 pass and the recording run for real."""
    from ttsr import export

    def exported(model, path, **kwargs):
        graph = onnx.load(models.plain)
        del graph.metadata_props[:]
        onnx.save(graph, path)
        return path

    monkeypatch.setattr(export, "export_onnx", exported)
    out = tmp_path / "out"
    result = CliRunner().invoke(export_command, [
        str(out / "ttsr.onnx"), "--checkpoint", str(models.checkpoint), "--fp16", "--keep-intermediates"])
    assert result.exit_code == 0, result.output
    assert {"ttsr.onnx", "ttsr.fp32.onnx", "ttsr.plain.onnx"} == {p.name for p in out.iterdir()}
    assert "rewrote 'search_transfer'" in result.output
    assert f"Wrote {out / 'ttsr.onnx'}" in result.output
    infos = {name: inspect_onnx(out / name) for name in ("ttsr.plain.onnx", "ttsr.fp32.onnx", "ttsr.onnx")}
    assert [(i.rewritten, i.precision) for i in infos.values()] == [
        (False, "fp32"), (True, "fp32"), (True, "fp16")]
    assert {i.checkpoint_sha256 for i in infos.values()} == {file_sha256(models.checkpoint)}
    inputs = random_inputs((7, 5), (12, 16), 1)
    expected = torch_output(load_checkpoint(models.checkpoint), inputs)
    assert np.abs(OrtBackend(out / "ttsr.fp32.onnx").run(inputs) - expected).max() <= 1e-5
    assert onnx.load(out / "ttsr.onnx").graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_the_library_chain_records_the_checkpoint_in_every_graph(models):
    """The shared fixture's graphs come from :func:`ttsr.pipeline.make_graph` with the checkpoint hash."""
    infos = [inspect_onnx(path) for path in (models.plain, models.rewritten, models.fp16)]
    assert [(i.rewritten, i.precision) for i in infos] == [(False, "fp32"), (True, "fp32"), (True, "fp16")]
    assert {i.checkpoint_sha256 for i in infos} == {file_sha256(models.checkpoint)}


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "1", "--checkpoint", "{ckpt}"], "not both"),
    (["--io-dtype", "float16"], "--io-dtype float16 needs --fp16"),
    (["--lr-size", "8by8"], "is not HxW"),
    (["--batch", "1"], "--batch"),
    (["--opset", "17"], "--opset"),
    (["--checkpoint", "{ckpt}"], "checkpoint"),
])
def test_usage_errors_leave_no_output(tmp_path, args, fragment):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    args = [a.replace("{ckpt}", str(corrupt)) for a in args]
    result = CliRunner().invoke(export_command, [str(tmp_path / "out.onnx"), *args])
    assert result.exit_code != 0
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.pth"]


def stand_in_export(model, path, **kwargs):
    """An empty but valid ONNX graph instead of the real export (covered above): these tests are about folders."""
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "stand_in", [], [])), path)
    return path


def test_missing_output_folders_are_created(tmp_path, monkeypatch):
    from ttsr import export

    monkeypatch.setattr(export, "export_onnx", stand_in_export)
    output = tmp_path / "out" / "sub" / "x.onnx"
    result = CliRunner().invoke(export_command, [str(output), "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert onnx.load(output).graph.name == "stand_in" and f"Wrote {output}" in result.output
    assert inspect_onnx(output).source == Source(seed=0)


def test_a_failed_rewrite_removes_the_export_it_kept_and_the_folders(tmp_path, monkeypatch):
    from ttsr import export

    monkeypatch.setattr(export, "export_onnx", stand_in_export)
    result = CliRunner().invoke(export_command, [str(tmp_path / "out" / "sub" / "x.onnx"), "--seed", "0",
                                                 "--rewrite", "--keep-intermediates"])
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_failed_export_removes_the_folders_it_created(tmp_path, monkeypatch):
    from ttsr import export

    def fail(*args, **kwargs):
        raise export.ExportError("the exporter failed")

    monkeypatch.setattr(export, "export_onnx", fail)
    result = CliRunner().invoke(export_command, [str(tmp_path / "out" / "sub" / "x.onnx"), "--seed", "0"])
    assert result.exit_code == 1 and "the exporter failed" in result.output
    assert list(tmp_path.iterdir()) == []


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    result = CliRunner().invoke(export_command, [str(tmp_path / "out" / "x.onnx"), "--seed", "0"])
    assert result.exit_code == 2 and "cannot create output folder" in result.output
