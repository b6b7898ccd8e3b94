"""The reference model's state dict has exactly the released mmediting checkpoint's keys and shapes."""

from pathlib import Path

from ttsr.model import build_model

# Copied from the facts checked against mmediting 0.x (keys of the released .pth files).
KEY_TABLE = Path(__file__).parent / "data" / "checkpoint_keys.tsv"


def test_state_dict_keys_and_shapes_match_released_checkpoint():
    rows = KEY_TABLE.read_text().splitlines()
    assert rows[0] == "key\tshape"
    expected = [(key, shape) for key, shape in (row.split("\t") for row in rows[1:])]
    actual = [(key, str(list(value.shape))) for key, value in build_model().state_dict().items()]
    assert len(expected) == 316
    assert sorted(actual) == sorted(expected)
