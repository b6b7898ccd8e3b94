"""Issue #14: an export example too large to trace is refused in one line before anything is allocated."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ttsr.cli.export import export_command
from ttsr.export import ExportError, check_example_size


def test_examples_of_deployment_sizes_are_accepted_and_the_limit_is_the_relevance_matrix():
    check_example_size((64, 64), (256, 256), 4)  # 4 x 4096 x 4096 float32 relevance: 256 MiB
    with pytest.raises(ExportError, match="GiB to trace"):
        check_example_size((128, 128), (512, 512), 2)  # 2 x 16384 x 16384: 2 GiB


@pytest.mark.parametrize("size_args", [["--lr-size", "100000x100000"], ["--ref-size", "40000x40000"],
                                       ["--batch", "100000"]])
def test_export_refuses_an_absurd_example_before_allocating(tmp_path, monkeypatch, size_args):
    from ttsr import export
    from ttsr.cli import common

    def untouched(*args, **kwargs):
        raise AssertionError("the model was loaded or exported for an example that cannot be traced")

    monkeypatch.setattr(export, "export_onnx", untouched)
    monkeypatch.setattr(common, "build_model", untouched)
    result = CliRunner().invoke(export_command, [str(tmp_path / "g.onnx"), *size_args])
    assert result.exit_code == 2, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error:") and "GiB to trace" in error and "the exported graph takes any size" in error
    assert list(tmp_path.iterdir()) == []
