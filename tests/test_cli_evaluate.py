"""``ttsr evaluate`` on a tiny CUFED5-layout folder: its figures against an independent computation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from ttsr.cli import evaluate
from ttsr.cli.evaluate import PUBLISHED_CUFED5, PUBLISHED_PROTOCOL, evaluate_command
from ttsr.data.images import load_image, save_image
from ttsr.data.prepare import prepare_eval, to_image
from ttsr.metrics import psnr, ssim
from ttsr.model import CHECKPOINT_URLS, TTSR, build_model, save_mmediting_checkpoint

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "pairs"
# GT crops (H, W) of the bundled HR images: multiples of 4, small to keep the model fast.
GT_SIZES = {"cat": (40, 32), "coffee": (32, 40), "demo": (36, 44)}
SEED = 1


def invoke(*args: object) -> Result:
    return CliRunner().invoke(evaluate_command, [str(arg) for arg in args])


def super_resolve(model: TTSR, gt: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inputs, gt = prepare_eval(gt, ref)
    with torch.inference_mode():
        return to_image(model(*inputs.as_torch())), gt


def blue_ssim(sr: np.ndarray, gt: np.ndarray, crop_border: int = 4) -> float:
    """SSIM of the blue channel alone, by giving the standard SSIM three copies of it."""
    return ssim(np.repeat(sr[..., 2:], 3, axis=2), np.repeat(gt[..., 2:], 3, axis=2), crop_border)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # These images are tiny: a second thread only adds synchronisation (and stalls on a busy machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> TTSR:
    return build_model(seed=SEED)


@pytest.fixture(scope="module")
def cufed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """000..002: GT ``_0``, the bundled Ref as level 1 and that Ref upside down as level 2."""
    folder = tmp_path_factory.mktemp("cufed5")
    for index, (name, (height, width)) in enumerate(GT_SIZES.items()):
        save_image(folder / f"{index:03d}_0.png", load_image(ASSETS / "hr" / f"{name}.png")[:height, :width])
        ref = load_image(ASSETS / "ref" / f"{name}.png")
        save_image(folder / f"{index:03d}_1.png", ref)
        save_image(folder / f"{index:03d}_2.png", np.ascontiguousarray(ref[::-1]))
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, model: TTSR) -> Path:
    return save_mmediting_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "seed1.pth")


@pytest.fixture(scope="module")
def expected(model: TTSR, cufed: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(SR, GT) of every level-1 pair, computed without the command."""
    return [super_resolve(model, load_image(gt), load_image(gt.with_name(gt.name.replace("_0", "_1"))))
            for gt in sorted(cufed.glob("*_0.png"))]


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_checkpoint_figures_equal_independent_computation(cufed: Path, checkpoint: Path, tmp_path: Path,
                                                          expected: list[tuple[np.ndarray, np.ndarray]]) -> None:
    report, out_dir = tmp_path / "scores.json", tmp_path / "sr"
    result = invoke("--data-dir", cufed, "--checkpoint", checkpoint, "--device", "cpu",
                    "--json", report, "--out-dir", out_dir)
    assert result.exit_code == 0, result.output
    psnrs = [psnr(sr, gt, 4) for sr, gt in expected]
    ssims = [blue_ssim(sr, gt) for sr, gt in expected]
    scores = json.loads(report.read_text())
    assert [image["name"] for image in scores["images"]] == ["000", "001", "002"]
    assert [image["psnr"] for image in scores["images"]] == pytest.approx(psnrs, rel=1e-12)
    assert [image["ssim"] for image in scores["images"]] == pytest.approx(ssims, rel=1e-12)
    assert scores["mean"] == pytest.approx({"psnr": np.mean(psnrs), "ssim": np.mean(ssims)}, rel=1e-12)
    assert f"PSNR {np.mean(psnrs):.4f} dB  SSIM {np.mean(ssims):.4f}" in result.stdout
    assert f"001  PSNR {psnrs[1]:.4f} dB  SSIM {ssims[1]:.4f}" in result.stdout
    assert scores["model"]["random_weights"] is False and "RANDOM" not in result.output
    assert scores["published"] is None and "published (" not in result.stdout
    for index, (sr, _) in enumerate(expected):
        np.testing.assert_array_equal(load_image(out_dir / f"{index:03d}_sr.png"), sr)


def test_seeded_model_is_announced_as_random(cufed: Path, tmp_path: Path,
                                             expected: list[tuple[np.ndarray, np.ndarray]]) -> None:
    report = tmp_path / "scores.json"
    result = invoke("--data-dir", cufed, "--seed", SEED, "--device", "cpu", "--json", report)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("RANDOM WEIGHTS") == 2
    scores = json.loads(report.read_text())
    assert scores["model"] == {"checkpoint": None, "sha256": None, "release": None, "seed": SEED,
                               "random_weights": True}
    assert scores["mean"]["psnr"] == pytest.approx(np.mean([psnr(sr, gt) for sr, gt in expected]), rel=1e-12)


@pytest.mark.parametrize("convention, crop_border", [("rgb", 4), ("y", 4), ("mmediting-0.x", 0)])
def test_convention_and_crop_border_change_the_scores(cufed: Path, tmp_path: Path, convention: str,
                                                      crop_border: int,
                                                      expected: list[tuple[np.ndarray, np.ndarray]]) -> None:
    report = tmp_path / "scores.json"
    result = invoke("--data-dir", cufed, "--seed", SEED, "--device", "cpu", "--json", report,
                    "--convention", convention, "--crop-border", crop_border)
    assert result.exit_code == 0, result.output
    means = json.loads(report.read_text())["mean"]
    luma = "y" if convention == "y" else None
    want_psnr = np.mean([psnr(sr, gt, crop_border, luma) for sr, gt in expected])
    # mmediting 0.x only scored blue because its crop added an axis; without a crop it scores RGB.
    want_ssim = np.mean([ssim(sr, gt, crop_border, luma) for sr, gt in expected])
    assert means == pytest.approx({"psnr": want_psnr, "ssim": want_ssim}, rel=1e-12)
    blue_only = np.mean([blue_ssim(sr, gt, crop_border) for sr, gt in expected])
    assert abs(means["ssim"] - blue_only) > 1e-4


def test_ref_level_and_limit_pick_the_pairs(cufed: Path, model: TTSR, tmp_path: Path) -> None:
    report = tmp_path / "scores.json"
    result = invoke("--data-dir", cufed, "--seed", SEED, "--device", "cpu", "--json", report,
                    "--ref-level", 2, "--limit", 2)
    assert result.exit_code == 0, result.output
    images = json.loads(report.read_text())["images"]
    assert [(image["gt"], image["ref"]) for image in images] == [("000_0.png", "000_2.png"),
                                                                 ("001_0.png", "001_2.png")]
    pairs = [super_resolve(model, load_image(cufed / f"{i:03d}_0.png"), load_image(cufed / f"{i:03d}_2.png"))
             for i in range(2)]
    assert [image["psnr"] for image in images] == pytest.approx([psnr(sr, gt) for sr, gt in pairs], rel=1e-12)


def test_many_images_get_a_progress_bar_instead_of_lines(cufed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate, "PER_IMAGE_LINES_UP_TO", 2)
    result = invoke("--data-dir", cufed, "--seed", SEED, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "000  PSNR" not in result.stdout and "mean of 3 image(s)" in result.stdout
    assert "3/3" in result.stderr


def test_released_file_name_shows_the_published_figures(cufed: Path, checkpoint: Path, tmp_path: Path) -> None:
    released = tmp_path / Path(CHECKPOINT_URLS["ttsr-gan"]).name
    shutil.copy(checkpoint, released)
    report = tmp_path / "scores.json"
    result = invoke("--data-dir", cufed, "--checkpoint", released, "--device", "cpu", "--limit", 1,
                    "--json", report)
    assert result.exit_code == 0, result.output
    gan_psnr, gan_ssim = PUBLISHED_CUFED5["ttsr-gan"]
    assert f"published (ttsr-gan, mmediting 0.x model zoo): PSNR {gan_psnr:.4f} dB  SSIM {gan_ssim:.4f}" \
        in result.stdout
    # One image is not the 126 of the published mean; and these bytes are not the released file.
    assert "not comparable: images 1 (published: 126)" in result.stdout
    assert "is not the released file" in result.stdout
    assert json.loads(report.read_text())["published"] == {"model": "ttsr-gan", "psnr": gan_psnr,
                                                           "ssim": gan_ssim, "comparable": False}


def test_published_figures_are_compared_under_the_published_protocol(
        cufed: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Our folder holds 3 images, not 126: make that the published count to reach the comparison.
    monkeypatch.setitem(PUBLISHED_PROTOCOL, "images", 3)
    released = tmp_path / Path(CHECKPOINT_URLS["ttsr-rec"]).name
    shutil.copy(checkpoint, released)
    report = tmp_path / "scores.json"
    result = invoke("--data-dir", cufed, "--checkpoint", released, "--device", "cpu", "--json", report)
    assert result.exit_code == 0, result.output
    scores = json.loads(report.read_text())
    rec_psnr, rec_ssim = PUBLISHED_CUFED5["ttsr-rec"]
    assert scores["published"]["comparable"] is True
    assert (f"ours - published: {scores['mean']['psnr'] - rec_psnr:+.4f} dB, "
            f"{scores['mean']['ssim'] - rec_ssim:+.4f}") in result.stdout


def test_published_protocol_is_the_default() -> None:
    assert evaluate._protocol_differences("mmediting-0.x", 4, 1, 126) == []
    defaults = {param.name: param.default for param in evaluate_command.params}
    assert (defaults["convention"], defaults["crop_border"], defaults["ref_level"]) == \
        (PUBLISHED_PROTOCOL["convention"], PUBLISHED_PROTOCOL["crop_border"], PUBLISHED_PROTOCOL["ref_level"])


def test_mod_crop_scores_the_cropped_gt(cufed: Path, model: TTSR, tmp_path: Path) -> None:
    folder = copy_folder(cufed, tmp_path / "data")
    gt = load_image(ASSETS / "hr" / "cat.png")[:34, :39]
    save_image(folder / "000_0.png", gt)
    report = tmp_path / "scores.json"
    result = invoke("--data-dir", folder, "--seed", SEED, "--device", "cpu", "--limit", 1, "--mod-crop",
                    "--json", report)
    assert result.exit_code == 0, result.output
    sr, cropped = super_resolve(model, gt[:32, :36], load_image(folder / "000_1.png"))
    assert json.loads(report.read_text())["mean"]["psnr"] == pytest.approx(psnr(sr, cropped), rel=1e-12)


def _empty(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


def _missing_ref(folder: Path) -> None:
    (folder / "001_1.png").unlink()


def _odd_gt(folder: Path) -> None:
    # The last image, so that the first two would be done before a lazy check found it.
    save_image(folder / "002_0.png", load_image(folder / "002_0.png")[:, :-2])


def _corrupt_ref(folder: Path) -> None:
    (folder / "002_1.png").write_bytes(b"not a png")


@pytest.mark.parametrize("damage, options, message", [
    (_empty, ["--seed", SEED], "no GT images named NNN_0.png"),
    (_missing_ref, ["--seed", SEED], "missing 001_1.png"),
    (_odd_gt, ["--seed", SEED], "002_0.png is 36x42, its sides must be multiples of 4; pass --mod-crop"),
    (_corrupt_ref, ["--seed", SEED], "cannot read image"),
    (None, ["--seed", SEED, "--crop-border", 23], "lower --crop-border"),
    (None, ["--checkpoint", "BAD"], "cannot be read as a PyTorch checkpoint"),
    (None, ["--checkpoint", "MISSING"], "checkpoint not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(cufed: Path, tmp_path: Path,
                                                  damage: Callable[[Path], None] | None, options: list[object],
                                                  message: str) -> None:
    folder = copy_folder(cufed, tmp_path / "data")
    if damage is not None:
        damage(folder)
    (tmp_path / "BAD").write_bytes(b"\x00garbage" * 10)
    options = [tmp_path / option if option in ("BAD", "MISSING") else option for option in options]
    report, out_dir = tmp_path / "scores.json", tmp_path / "sr"
    result = invoke("--data-dir", folder, "--device", "cpu", "--json", report, "--out-dir", out_dir, *options)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert not report.exists() and not out_dir.exists()


def test_cuda_without_a_device_is_refused(cufed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke("--data-dir", cufed, "--seed", SEED, "--device", "cuda", "--json", tmp_path / "s.json")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert "PyTorch sees no CUDA device" in result.output and "--device cpu" in result.output
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("options", [[], ["--seed", SEED, "--checkpoint", "x.pth"]])
def test_exactly_one_of_checkpoint_and_seed(cufed: Path, options: list[object]) -> None:
    result = invoke("--data-dir", cufed, *options)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("Error: give exactly one of --checkpoint")


def test_help_teaches_where_to_get_weights_and_data() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert CHECKPOINT_URLS["ttsr-rec"] in result.output and evaluate.CUFED5_URL in result.output
    assert "ttsr evaluate --data-dir CUFED5 --checkpoint" in result.output

