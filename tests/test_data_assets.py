import importlib.util
import sys
from pathlib import Path

import numpy as np
from ttsr.data import find_pairs, load_image, prepare_eval, prepare_pair, resize_bicubic

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "pairs"
SIZES = {"demo": ((160, 160), (144, 176)), "cat": ((96, 128), (120, 160)), "coffee": ((128, 128), (90, 102))}


def test_bundled_pairs_have_the_documented_sizes():
    pairs = find_pairs(ASSETS / "lr", ASSETS / "ref", ASSETS / "hr")
    assert sorted(pair.name for pair in pairs) == sorted(SIZES)
    for pair in pairs:
        hr, lr, ref = load_image(pair.hr), load_image(pair.lr), load_image(pair.ref)
        hr_size, ref_size = SIZES[pair.name]
        assert hr.shape[:2] == hr_size and ref.shape[:2] == ref_size
        np.testing.assert_array_equal(lr, resize_bicubic(hr, 0.25), err_msg=pair.name)
        eval_inputs, _ = prepare_eval(hr, ref)
        pair_inputs = prepare_pair(lr, ref)
        np.testing.assert_array_equal(eval_inputs.lq, pair_inputs.lq)
        np.testing.assert_array_equal(eval_inputs.lq_up, pair_inputs.lq_up)


def test_bundled_assets_are_small():
    assert sum(path.stat().st_size for path in ASSETS.rglob("*.png")) < 400_000


def test_make_assets_reproduces_the_bundled_pixels(tmp_path, monkeypatch):
    script = Path(__file__).resolve().parent.parent / "scripts" / "make_assets.py"
    spec = importlib.util.spec_from_file_location("make_assets", script)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    module.make_assets(tmp_path)
    made = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*.png"))
    assert made == sorted(path.relative_to(ASSETS) for path in ASSETS.rglob("*.png"))
    for relative in made:
        np.testing.assert_array_equal(load_image(tmp_path / relative), load_image(ASSETS / relative))
