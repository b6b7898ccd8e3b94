from pathlib import Path

import pytest

from ttsr.data import Pair, PairError, find_pairs, read_pair_list


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_find_pairs_matches_by_stem(tmp_path):
    touch(tmp_path / "lr", "b.png", "a.png", "notes.txt")
    touch(tmp_path / "ref", "a.jpg", "b.png")
    touch(tmp_path / "hr", "a.png", "b.bmp")
    pairs = find_pairs(tmp_path / "lr", tmp_path / "ref", tmp_path / "hr")
    assert pairs == [
        Pair("a", tmp_path / "lr" / "a.png", tmp_path / "ref" / "a.jpg", tmp_path / "hr" / "a.png"),
        Pair("b", tmp_path / "lr" / "b.png", tmp_path / "ref" / "b.png", tmp_path / "hr" / "b.bmp"),
    ]
    assert [pair.hr for pair in find_pairs(tmp_path / "lr", tmp_path / "ref")] == [None, None]


@pytest.mark.parametrize("missing_from", ["ref", "lr", "hr"])
def test_find_pairs_names_unmatched_images(tmp_path, missing_from):
    for folder in ("lr", "ref", "hr"):
        touch(tmp_path / folder, "a.png", *([] if folder == missing_from else ["lonely.png"]))
    with pytest.raises(PairError, match="lonely"):
        find_pairs(tmp_path / "lr", tmp_path / "ref", tmp_path / "hr")


def test_find_pairs_folder_errors(tmp_path):
    touch(tmp_path / "lr", "a.png", "a.jpg")
    touch(tmp_path / "ref", "a.png")
    touch(tmp_path / "empty")
    with pytest.raises(PairError, match="two images named 'a'"):
        find_pairs(tmp_path / "lr", tmp_path / "ref")
    with pytest.raises(PairError, match="does not exist"):
        find_pairs(tmp_path / "nowhere", tmp_path / "ref")
    with pytest.raises(PairError, match="holds no images"):
        find_pairs(tmp_path / "ref", tmp_path / "empty")


def test_read_pair_list(tmp_path):
    touch(tmp_path / "data", "x.png", "x_ref.png", "x_hr.png", "y 1.png", "y_ref.png")
    listing = tmp_path / "data" / "pairs.txt"
    listing.write_text("# lr ref hr\n\nx.png x_ref.png x_hr.png  # with ground truth\n'y 1.png' y_ref.png\n")
    data = tmp_path / "data"
    assert read_pair_list(listing) == [Pair("x", data / "x.png", data / "x_ref.png", data / "x_hr.png"),
                                       Pair("y 1", data / "y 1.png", data / "y_ref.png", None)]
    moved = tmp_path / "pairs.txt"
    moved.write_text("x.png x_ref.png\n")
    assert read_pair_list(moved, root=data) == [Pair("x", data / "x.png", data / "x_ref.png", None)]


@pytest.mark.parametrize("text, message", [
    ("x.png\n", "pairs.txt:1: expected 'lr ref \\[hr\\]', got 1 fields"),
    ("x.png x.png x.png x.png\n", "got 4 fields"),
    ("# only\nx.png absent.png\n", "pairs.txt:2: .*absent.png does not exist"),
    ("x.png x.png\nx.png x.png\n", "already used on line 1"),
    ("'x.png x.png\n", "quot"),
    ("# nothing\n", "holds no pairs"),
])
def test_read_pair_list_errors(tmp_path, text, message):
    touch(tmp_path, "x.png")
    listing = tmp_path / "pairs.txt"
    listing.write_text(text)
    with pytest.raises(PairError, match=message):
        read_pair_list(listing)


def test_read_pair_list_missing_file(tmp_path):
    with pytest.raises(PairError, match="cannot read pair list"):
        read_pair_list(tmp_path / "absent.txt")
