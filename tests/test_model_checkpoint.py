"""Checkpoint loading: every accepted layout gives the saved network; every bad file is one CheckpointError line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsr.model import build_model
from ttsr.model.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_dict_into,
    save_mmediting_checkpoint,
    to_official_key,
)

DATA = Path(__file__).parent / "data"


def make_inputs() -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    lq = torch.rand(1, 3, 12, 12, generator=generator) * 2 - 1
    lq_up = torch.rand(1, 3, 48, 48, generator=generator)
    ref = torch.rand(1, 3, 32, 32, generator=generator)
    ref_downup = torch.rand(1, 3, 32, 32, generator=generator)
    return lq, lq_up, ref, ref_downup


def run(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(*make_inputs())


@pytest.fixture(scope="module")
def seeded_state() -> dict[str, torch.Tensor]:
    return build_model(seed=1).state_dict()


@pytest.fixture(scope="module")
def seeded_output() -> torch.Tensor:
    return run(build_model(seed=1))


@pytest.fixture(scope="module")
def other_output() -> torch.Tensor:
    return run(build_model(seed=2))


def assert_loads_seeded(path: Path, seeded_output: torch.Tensor, other_output: torch.Tensor) -> None:
    model = load_checkpoint(path)
    assert not model.training
    output = run(model)
    assert torch.equal(output, seeded_output)
    assert not torch.equal(output, other_output)


def assert_one_line_error(path: Path, *fragments: str) -> str:
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


@pytest.mark.parametrize("legacy", [False, True])
def test_mmediting_checkpoint_gives_the_saved_network(tmp_path, seeded_output, other_output, legacy):
    path = save_mmediting_checkpoint(build_model(seed=1), tmp_path / "ttsr.pth", legacy=legacy)
    assert zipfile.is_zipfile(path) is not legacy
    checkpoint = torch.load(path, weights_only=True)
    assert set(checkpoint) == {"meta", "state_dict"}
    assert_loads_seeded(path, seeded_output, other_output)


def test_save_leaves_only_the_checkpoint(tmp_path):
    save_mmediting_checkpoint(build_model(seed=1), tmp_path / "ttsr.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["ttsr.pth"]
    with pytest.raises(OSError):
        save_mmediting_checkpoint(build_model(seed=1), tmp_path / "absent" / "ttsr.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["ttsr.pth"]


def test_bare_state_dict(tmp_path, seeded_state, other_output, seeded_output):
    torch.save(seeded_state, tmp_path / "bare.pth")
    assert_loads_seeded(tmp_path / "bare.pth", seeded_output, other_output)


def read_key_table(path: Path) -> dict[str, list[int]]:
    rows = path.read_text().splitlines()[1:]
    return {key: [int(n) for n in shape.strip("[]").split(",")]
            for key, shape in (row.split("\t") for row in rows)}


def test_official_layout_is_mapped(tmp_path, seeded_state, seeded_output, other_output):
    official = {to_official_key(key): value for key, value in seeded_state.items()}
    # official_keys.tsv lists researchmm/TTSR's own MainNet/LTE names: the
    # inverse map must produce exactly those names with the same shapes.
    assert {key: list(value.shape) for key, value in official.items()} == read_key_table(DATA / "official_keys.tsv")
    torch.save(official, tmp_path / "official.pt")
    assert_loads_seeded(tmp_path / "official.pt", seeded_output, other_output)


# Modules of equal shape that a swapped name would mix up without any shape
# error (pairs from the facts file's official -> mmediting key map).
SAME_SHAPE_PAIRS = [
    ("up1.upsample_conv", "conv12"), ("up2.upsample_conv", "conv23"),
    ("csfi3.conv1to2", "ex123.conv12"), ("csfi3.conv1to4", "ex123.conv13"), ("csfi3.conv2to4", "ex123.conv23"),
    ("csfi3.conv2to1", "ex123.conv21"), ("csfi3.conv4to1_1", "ex123.conv31_1"),
    ("csfi3.conv4to1_2", "ex123.conv31_2"), ("csfi3.conv4to2", "ex123.conv32"),
    ("csfi3.conv_merge2", "ex123.conv_merge2"), ("csfi3.conv_merge4", "ex123.conv_merge3"),
    ("conv_first1", "conv11_head"), ("conv_last1", "conv11_tail"),
    ("res_block2_1.7", "RB21.7"), ("res_block2_2.0", "RB22.0"), ("res_block3_3.3", "RB33.3"),
    ("conv_last2_1", "conv21_tail"), ("conv_last3_2", "conv32_tail"),
    ("merge_features.conv1to4", "merge_tail.conv13"), ("merge_features.conv2to4", "merge_tail.conv23"),
    ("sfe.body.15", "SFE.RBs.15"), ("sfe.conv_last", "SFE.conv_tail"),
]


@pytest.mark.parametrize(("ours", "official"), SAME_SHAPE_PAIRS)
def test_official_names_of_same_shape_modules(ours, official):
    suffix = ".conv1.weight" if "res_block" in ours or "body" in ours else ".weight"
    assert to_official_key(f"generator.{ours}{suffix}") == f"MainNet.{official}{suffix}"


def test_official_layout_without_mean_shift_and_with_wrapper_prefix(tmp_path, seeded_state, seeded_output,
                                                                     other_output):
    official = {"module." + to_official_key(key): value for key, value in seeded_state.items()
                if "img_normalize" not in key}
    official["module.LTE_copy.slice1.0.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(official, tmp_path / "official.pt")
    assert_loads_seeded(tmp_path / "official.pt", seeded_output, other_output)


def test_training_only_keys_are_ignored(tmp_path, seeded_state, seeded_output, other_output):
    state = dict(seeded_state)
    state.update({
        "step_counter": torch.tensor([500000.0]),
        "discriminator.body.0.weight": torch.zeros(64, 3, 3, 3),
        "perceptual_loss.vgg.mean": torch.zeros(1, 3, 1, 1),
        "extractor_copy.slice1.0.weight": torch.zeros(64, 3, 3, 3),
        "data_preprocessor.mean": torch.zeros(3, 1, 1),
    })
    torch.save({"meta": {}, "state_dict": state}, tmp_path / "gan.pth")
    assert_loads_seeded(tmp_path / "gan.pth", seeded_output, other_output)


def test_missing_key_is_named(tmp_path, seeded_state):
    state = {k: v for k, v in seeded_state.items() if k != "generator.merge_features.conv_last2.bias"}
    torch.save({"meta": {}, "state_dict": state}, tmp_path / "ckpt.pth")
    assert_one_line_error(tmp_path / "ckpt.pth", "missing 1 key(s): generator.merge_features.conv_last2.bias")


def test_many_missing_keys_are_counted(seeded_state):
    state = {k: v for k, v in seeded_state.items() if not k.startswith("extractor.")}
    with pytest.raises(CheckpointError, match=r"missing 12 key\(s\): extractor\.img_normalize\.weight, .*12 in all"):
        load_state_dict_into(build_model(), state)


def test_unexpected_key_is_named(tmp_path, seeded_state):
    state = dict(seeded_state, **{"generator.extra_conv.weight": torch.zeros(1)})
    torch.save(state, tmp_path / "ckpt.pth")
    assert_one_line_error(tmp_path / "ckpt.pth", "unexpected 1 key(s): generator.extra_conv.weight")


def test_wrong_shape_is_named(tmp_path, seeded_state):
    state = dict(seeded_state, **{"extractor.slice3.10.weight": torch.zeros(256, 128, 1, 1)})
    torch.save(state, tmp_path / "ckpt.pth")
    assert_one_line_error(tmp_path / "ckpt.pth",
                          "extractor.slice3.10.weight [256, 128, 1, 1] (model [256, 128, 3, 3])")


def test_failed_load_leaves_model_unchanged(seeded_state):
    model = build_model(seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(seeded_state, **{"generator.extra_conv.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError):
        load_state_dict_into(model, state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_numpy_values_in_meta_load(tmp_path, seeded_output, other_output):
    meta = {"mmedit_version": "0.8.0", "config": "model = dict(type='TTSR')",
            "hook_msgs": {"best_score": np.float64(25.2433), "best_iter": np.int64(200000),
                          "scale": np.float32(4.0)}}
    for legacy in (False, True):
        path = save_mmediting_checkpoint(build_model(seed=1), tmp_path / f"np{legacy}.pth", meta=meta, legacy=legacy)
        assert_loads_seeded(path, seeded_output, other_output)


def test_numpy1_scalar_name_loads(tmp_path, seeded_output, other_output):
    # Files written under numpy 1.x name the scalar constructor numpy.core.multiarray.
    path = save_mmediting_checkpoint(build_model(seed=1), tmp_path / "np.pth",
                                     meta={"best_score": np.float64(25.2433)}, legacy=True)
    data = path.read_bytes()
    assert data.count(b"numpy._core.multiarray\nscalar") == 1
    path.write_bytes(data.replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar"))
    assert_loads_seeded(path, seeded_output, other_output)


UNPICKLED: list[bool] = []


def mark_unpickled() -> None:
    UNPICKLED.append(True)


class ConfigLike:
    """Stands for mmcv's Config: a global that safe loading must refuse without running it."""

    def __reduce__(self):
        return mark_unpickled, ()


@pytest.mark.parametrize("legacy", [False, True])
def test_refused_global_is_named_and_never_run(tmp_path, legacy):
    path = save_mmediting_checkpoint(build_model(seed=1), tmp_path / "cfg.pth",
                                     meta={"config": ConfigLike()}, legacy=legacy)
    assert_one_line_error(path, "mark_unpickled", "weights_only", str(path))
    assert UNPICKLED == []


def not_checkpoints(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["text"] = tmp_path / "notes.txt"
    files["text"].write_text("this is not a checkpoint\n")
    files["empty"] = tmp_path / "empty.pth"
    files["empty"].write_bytes(b"")
    for legacy in (False, True):
        whole = save_mmediting_checkpoint(build_model(seed=1), tmp_path / f"whole{legacy}.pth", legacy=legacy)
        data = whole.read_bytes()
        files[f"truncated legacy={legacy}"] = tmp_path / f"truncated{legacy}.pth"
        files[f"truncated legacy={legacy}"].write_bytes(data[: len(data) // 2])
    files["list"] = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], files["list"])
    files["non-tensor entry"] = tmp_path / "meta_only.pth"
    torch.save({"meta": {}, "state_dict": {"generator.sfe.conv_first.weight": "weights"}}, files["non-tensor entry"])
    files["missing"] = tmp_path / "absent.pth"
    files["directory"] = tmp_path
    return files


def test_not_a_checkpoint_is_one_line(tmp_path):
    for name, path in not_checkpoints(tmp_path).items():
        message = assert_one_line_error(path, str(path))
        assert len(message) < 400, name

