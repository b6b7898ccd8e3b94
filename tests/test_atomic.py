import json
import math
import os

import pytest

from ttsr.atomic import atomic_output, file_sha256, make_folders, write_bytes_atomic, write_json_atomic


class Boom(Exception):
    pass


def test_success_renames_the_temp_over_the_target(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_output(target) as temp:
        assert temp.parent == tmp_path and temp != target
        temp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_exception_leaves_neither_temp_nor_target(tmp_path):
    with pytest.raises(Boom):
        with atomic_output(tmp_path / "out.bin") as temp:
            temp.write_bytes(b"partial")
            raise Boom
    assert os.listdir(tmp_path) == []


def test_exception_before_the_temp_exists_is_passed_on(tmp_path):
    with pytest.raises(Boom):
        with atomic_output(tmp_path / "out.bin"):
            raise Boom
    assert os.listdir(tmp_path) == []


def test_existing_target_is_untouched_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("keep")
    with pytest.raises(TypeError):
        write_json_atomic(target, {"value": object()})
    assert target.read_text() == "keep"
    assert os.listdir(tmp_path) == ["out.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_permissions_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "out.bin", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_is_strict_with_non_finite_floats_as_strings(tmp_path):
    target = tmp_path / "report.json"
    write_json_atomic(target, {"psnr": math.inf, "low": -math.inf, "rows": [(math.nan, 1.5)]})
    text = target.read_text()
    assert text.endswith("}\n")
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert data == {"psnr": "inf", "low": "-inf", "rows": [["nan", 1.5]]}
    assert float(data["psnr"]) == math.inf



def test_make_folders_returns_only_what_it_created_outermost_first(tmp_path):
    (tmp_path / "a").mkdir()
    target = tmp_path / "a" / "b" / "c"
    assert make_folders(target) == [tmp_path / "a" / "b", target]
    assert target.is_dir()
    assert make_folders(target) == []


def test_file_sha256_known_answer(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
