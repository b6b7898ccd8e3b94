"""``ttsr evaluate``: score the PyTorch reference on a CUFED5-layout folder, as mmediting 0.x did.

The default protocol (``--convention mmediting-0.x``, crop border 4, Ref level 1, all 126 images)
is the one behind the model zoo figures, so a released checkpoint can be checked against them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import click
import numpy as np
import torch
from tqdm import tqdm

from ttsr.atomic import file_sha256, write_json_atomic
from ttsr.backends.torch import TorchBackend
from ttsr.cli.common import load_model
from ttsr.data.images import ImageError, load_image, save_image
from ttsr.data.prepare import SCALE, ModelInputs, mod_crop, prepare_eval, to_image
from ttsr.metrics import CONVENTIONS, score
from ttsr.metrics.quality import SSIM_WINDOW
from ttsr.model import CHECKPOINT_URLS

# mmediting 0.x model zoo (configs/restorers/ttsr/README.md), CUFED5, Ref level 1: (PSNR, SSIM).
PUBLISHED_CUFED5 = {"ttsr-rec": (25.2433, 0.7491), "ttsr-gan": (24.6075, 0.7234)}
PUBLISHED_PROTOCOL = {"convention": "mmediting-0.x", "crop_border": SCALE, "ref_level": 1, "images": 126}
CUFED5_URL = "https://drive.google.com/file/d/1Fa1mopExA9YGG1RxrCZZn7QFTYXLx6ph/view"

CONVENTION_NOTES = {
    "mmediting-0.x": "RGB PSNR, blue-channel SSIM: the published protocol",
    "rgb": "PSNR and SSIM over the RGB channels",
    "y": "PSNR and SSIM on BT.601 luma",
}
GT_LEVEL = 0
# Up to this many images each gets its own line; more get a progress bar.
PER_IMAGE_LINES_UP_TO = 5

_GT_NAME = re.compile(rf"^(?P<name>.+)_{GT_LEVEL}\.png$")
_SHA_SUFFIX = re.compile(r"-(?P<digits>[0-9a-f]{8})\.pth$")


class DatasetError(ValueError):
    """A data folder that does not hold CUFED5-layout GT/Ref pairs; the message names the file and the fix."""


@dataclass(frozen=True)
class Sample:
    name: str
    gt: Path
    ref: Path


@dataclass(frozen=True)
class ImageScore:
    name: str
    gt: str
    ref: str
    psnr: float
    ssim: float


def _natural_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def find_samples(data_dir: Path, ref_level: int = 1, limit: int | None = None) -> list[Sample]:
    """The GT/Ref pairs ``NAME_0.png`` / ``NAME_<ref_level>.png`` of ``data_dir``, in numeric order, first ``limit``."""
    names = sorted((match["name"] for path in data_dir.iterdir()
                    if path.is_file() and (match := _GT_NAME.match(path.name))), key=_natural_key)
    if not names:
        raise DatasetError(f"no GT images named NNN_{GT_LEVEL}.png in {data_dir}; point --data-dir at the "
                           f"CUFED5 folder (000_0.png ... 125_5.png)")
    samples = [Sample(name, data_dir / f"{name}_{GT_LEVEL}.png", data_dir / f"{name}_{ref_level}.png")
               for name in names[:limit]]
    missing = [sample.ref.name for sample in samples if not sample.ref.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f", ... ({len(missing)} in all)" if len(missing) > 3 else "")
        raise DatasetError(f"no Ref level {ref_level} image for every GT in {data_dir}: missing {shown}; "
                           f"add them or choose another --ref-level")
    return samples


def _load(path: Path) -> np.ndarray:
    try:
        return load_image(path)
    except ImageError as error:
        raise DatasetError(str(error)) from None


def read_pair(sample: Sample, crop: bool = False, crop_border: int = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """GT and Ref images of one pair; the GT sides must be multiples of 4 and leave room to score."""
    gt = _load(sample.gt)
    if crop:
        gt = mod_crop(gt)
    height, width = gt.shape[:2]
    if height % SCALE or width % SCALE:
        # mmediting 0.x would fail here on its PSNR shape assert: it evaluated pre-cropped copies.
        raise DatasetError(f"GT {sample.gt} is {height}x{width}, its sides must be multiples of {SCALE}; "
                           f"pass --mod-crop to crop it to {height - height % SCALE}x{width - width % SCALE} "
                           f"(bottom/right, as mmagic 1.x and the official TTSR code do)")
    if min(height, width) - 2 * crop_border < SSIM_WINDOW:
        raise DatasetError(f"GT {sample.gt} is {height}x{width}: with crop border {crop_border} less than "
                           f"{SSIM_WINDOW}x{SSIM_WINDOW} pixels remain for SSIM; lower --crop-border")
    return gt, _load(sample.ref)


def load_sample(sample: Sample, crop: bool = False, crop_border: int = SCALE) -> tuple[ModelInputs, np.ndarray]:
    """Model inputs and GT of one pair through the mmediting 0.x ``valid_pipeline``."""
    return prepare_eval(*read_pair(sample, crop, crop_border))


def released_model(checkpoint: Path) -> str | None:
    """The CHECKPOINT_URLS key whose released file has ``checkpoint``'s file name, if any."""
    for key in CHECKPOINT_URLS:
        if _release_file_name(key) == checkpoint.name:
            return key
    return None


def score_samples(predict: Callable[[ModelInputs], np.ndarray], samples: Sequence[Sample], convention: str,
                  crop_border: int = SCALE, crop: bool = False, out_dir: Path | None = None,
                  on_score: Callable[[ImageScore], None] | None = None) -> list[ImageScore]:
    """Super-resolve and score every sample; ``predict`` maps inputs to the (1, 3, 4H, 4W) output in [-1, 1]."""
    scores = []
    for sample in samples:
        inputs, gt = load_sample(sample, crop, crop_border)
        sr = to_image(predict(inputs))
        if out_dir is not None:
            save_image(out_dir / f"{sample.name}_sr.png", sr)
        psnr, ssim = score(sr, gt, convention, crop_border)
        result = ImageScore(sample.name, sample.gt.name, sample.ref.name, psnr, ssim)
        scores.append(result)
        if on_score is not None:
            on_score(result)
    return scores


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def _figures(psnr: float, ssim: float) -> str:
    return f"PSNR {psnr:.4f} dB  SSIM {ssim:.4f}"


def _protocol_differences(convention: str, crop_border: int, ref_level: int, count: int) -> list[str]:
    ours = {"convention": convention, "crop_border": crop_border, "ref_level": ref_level, "images": count}
    return [f"{key.replace('_', ' ')} {ours[key]} (published: {value})"
            for key, value in PUBLISHED_PROTOCOL.items() if ours[key] != value]


def _check_release_digest(checkpoint: Path, sha256: str) -> str | None:
    suffix = _SHA_SUFFIX.search(checkpoint.name)
    if suffix is None or sha256.startswith(suffix["digits"]):
        return None
    return (f"note: {checkpoint.name} has the release's name, but its sha256 begins {sha256[:8]}, not "
            f"{suffix['digits']}: it is not the released file, the published figures may not apply")


def _echo_model(checkpoint: Path | None, sha256: str | None, release: str | None, seed: int | None) -> None:
    if checkpoint is None or sha256 is None:
        click.secho(f"WARNING: RANDOM WEIGHTS (--seed {seed}), not a trained TTSR: these scores mean nothing; "
                    f"pass --checkpoint for real figures", fg="red", bold=True)
        return
    click.echo(f"model: {checkpoint} (sha256 {sha256[:12]}" + (f", released {release})" if release else ")"))
    digest_note = _check_release_digest(checkpoint, sha256) if release else None
    if digest_note:
        click.echo(digest_note)


def _compare_published(release: str, mean_psnr: float, mean_ssim: float,
                       differences: list[str]) -> dict[str, Any]:
    """Print the model zoo figures beside ours; returns them for the JSON report."""
    pub_psnr, pub_ssim = PUBLISHED_CUFED5[release]
    line = f"published ({release}, mmediting 0.x model zoo): {_figures(pub_psnr, pub_ssim)}"
    if differences:
        line += "; not comparable: " + ", ".join(differences)
    else:
        line += f"; ours - published: {mean_psnr - pub_psnr:+.4f} dB, {mean_ssim - pub_ssim:+.4f}"
    click.echo(line)
    return {"model": release, "psnr": pub_psnr, "ssim": pub_ssim, "comparable": not differences}


def _check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() is "
                                   "False); use --device cpu or a CUDA build of torch on a machine with a GPU")


def _check_json_path(json_path: Path | None) -> None:
    if json_path is not None and not json_path.parent.is_dir():
        raise click.ClickException(f"--json {json_path}: folder {json_path.parent} does not exist; create it first")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _release_file_name(model: str) -> str:
    return Path(urlparse(CHECKPOINT_URLS[model]).path).name


EPILOG = f"""\b
Examples:
  # 1. the CUFED5 test set, from the TTSR authors (researchmm/TTSR README, "CUFED test set"):
  #    {CUFED5_URL}
  #    unzipped: CUFED5/000_0.png (GT) ... 125_5.png (Ref levels 1..5)
  # 2. the released weights (mmediting model zoo):
  wget {CHECKPOINT_URLS['ttsr-rec']}
  # 3. the published protocol (mmediting 0.x; published: PSNR {PUBLISHED_CUFED5['ttsr-rec'][0]} dB, SSIM {PUBLISHED_CUFED5['ttsr-rec'][1]}):
  ttsr evaluate --data-dir CUFED5 --checkpoint {_release_file_name('ttsr-rec')} --json rec.json
  #    TTSR-GAN, {_release_file_name('ttsr-gan')}: {PUBLISHED_CUFED5['ttsr-gan'][0]} dB / {PUBLISHED_CUFED5['ttsr-gan'][1]}
  # GT sides not multiples of 4 are refused, as mmediting 0.x (which scored pre-cropped copies)
  # would; --mod-crop crops them like mmagic 1.x.  A quick look: 5 images, SR images, luma scores:
  ttsr evaluate --data-dir CUFED5 --checkpoint rec.pth --limit 5 --out-dir sr --convention y
"""


@click.command("evaluate", epilog=EPILOG)
@click.option("--data-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="CUFED5-layout folder: GT NNN_0.png and Ref NNN_K.png side by side.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="TTSR .pth file (mmediting/mmagic, bare state dict or official layout).")
@click.option("--seed", type=int, help="Random weights from this seed instead of a checkpoint (smoke tests only).")
@click.option("--ref-level", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which Ref of each GT: NNN_K.png (CUFED5 has levels 1 = most similar to 5).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=_default_device,
              show_default="cuda if available, else cpu", help="Where the model runs (TF32 off on CUDA).")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N images.")
@click.option("--convention", type=click.Choice(CONVENTIONS), default="mmediting-0.x", show_default=True,
              help="mmediting-0.x: RGB PSNR and blue-channel SSIM as published; rgb; y: on luma.")
@click.option("--crop-border", type=click.IntRange(min=0), default=SCALE, show_default=True,
              help="Pixels dropped from every side before scoring.")
@click.option("--mod-crop", is_flag=True,
              help="Crop GT sides down to multiples of 4 (bottom/right) instead of refusing such images.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each SR image here as NNN_sr.png.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write per-image and mean PSNR/SSIM to this JSON file.")
def evaluate_command(data_dir: Path, checkpoint: Path | None, seed: int | None, ref_level: int, device: str,
                     limit: int | None, convention: str, crop_border: int, mod_crop: bool, out_dir: Path | None,
                     json_path: Path | None) -> None:
    """Evaluate the PyTorch reference on CUFED5 with the mmediting 0.x protocol.

    Prints each image's PSNR/SSIM (a progress bar for more than a few), the mean, and, for a
    released checkpoint, the published figures beside ours.
    """
    if (checkpoint is None) == (seed is None):
        raise click.UsageError(f"give exactly one of --checkpoint (the released one: {CHECKPOINT_URLS['ttsr-rec']}) "
                               f"and --seed (random weights)")
    _check_device(device)
    _check_json_path(json_path)
    try:
        samples = find_samples(data_dir, ref_level, limit)
        model, _ = load_model(checkpoint, seed or 0, device)
        # Every pair is read before anything is written, so bad data leaves no partial output.
        for sample in samples:
            read_pair(sample, mod_crop, crop_border)
    except DatasetError as error:
        raise click.ClickException(str(error)) from None

    release = released_model(checkpoint) if checkpoint is not None else None
    sha256 = file_sha256(checkpoint) if checkpoint is not None else None
    click.echo(f"evaluate: {len(samples)} image(s) from {data_dir} (GT NNN_{GT_LEVEL}.png, Ref NNN_{ref_level}.png), "
               f"device {device}")
    _echo_model(checkpoint, sha256, release, seed)
    click.echo(f"protocol: {convention} ({CONVENTION_NOTES[convention]}), crop border {crop_border}"
               + (", GT mod-cropped to multiples of 4" if mod_crop else ""))

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    backend = TorchBackend(model, device=device)
    per_image_lines = len(samples) <= PER_IMAGE_LINES_UP_TO
    progress = tqdm(total=len(samples), unit="image", desc="evaluate", file=sys.stderr, disable=per_image_lines)

    def report(result: ImageScore) -> None:
        if per_image_lines:
            click.echo(f"{result.name}  {_figures(result.psnr, result.ssim)}")
        progress.update()

    try:
        scores = score_samples(backend.run, samples, convention, crop_border, mod_crop, out_dir, report)
    except (DatasetError, ImageError) as error:
        raise click.ClickException(str(error)) from None
    except torch.OutOfMemoryError:
        raise click.ClickException(f"out of memory on {device}; evaluate with --device cpu or on a larger GPU") from None
    finally:
        progress.close()

    mean_psnr, mean_ssim = _mean([s.psnr for s in scores]), _mean([s.ssim for s in scores])
    suffix = "  (RANDOM WEIGHTS: meaningless)" if checkpoint is None else ""
    click.echo(f"mean of {len(scores)} image(s): {_figures(mean_psnr, mean_ssim)}{suffix}")
    published = None
    if release is not None:
        differences = _protocol_differences(convention, crop_border, ref_level, len(scores))
        published = _compare_published(release, mean_psnr, mean_ssim, differences)

    if json_path is not None:
        write_json_atomic(json_path, {
            "data_dir": str(data_dir), "ref_level": ref_level, "convention": convention,
            "crop_border": crop_border, "mod_crop": mod_crop, "device": device,
            "model": {"checkpoint": str(checkpoint) if checkpoint else None, "sha256": sha256,
                      "release": release, "seed": seed, "random_weights": checkpoint is None},
            "images": [asdict(s) for s in scores],
            "mean": {"psnr": mean_psnr, "ssim": mean_ssim},
            "published": published,
        })
        click.echo(f"wrote {json_path}")
