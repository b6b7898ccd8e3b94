"""Accuracy of a run: PSNR/SSIM per image against the PyTorch reference (and HR), their means,
and Polygraphy-style error statistics of the raw output."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ttsr.data.prepare import SCALE, to_image
from ttsr.metrics import score
from ttsr.metrics.quality import SSIM_WINDOW
from ttsr.report.table import number, render

SCORED = ("vs_reference", "vs_hr", "reference_vs_hr")
# Tolerances, in 8-bit levels of the [0, 1] output, for the share of pixels whose error exceeds them.
TOLERANCE_LEVELS = (0.5, 1, 2, 4, 8)
# Relative errors divide by the reference value; below this (black) they would only measure noise.
REL_FLOOR = 1.0 / 255


def min_lr_side(crop_border: int) -> int:
    """The smallest LR side whose SR output still holds SSIM's window after ``crop_border`` is cropped."""
    return math.ceil((SSIM_WINDOW + 2 * crop_border) / SCALE)


def check_lr_size(lr_size: tuple[int, int], crop_border: int) -> None:
    """Refuse, before anything runs, an LR image whose SR output could not be scored."""
    side = min_lr_side(crop_border)
    if min(lr_size) < side:
        height, width = lr_size
        raise ValueError(
            f"LR is {height}x{width}: its {SCALE * height}x{SCALE * width} SR output, less the {crop_border}-pixel "
            f"crop border, is smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window; give an LR of at least "
            f"{side}x{side} (or a smaller --crop-border)")


@dataclass
class ImageResult:
    """One image's run: the backend's and the reference's raw outputs (3, 4H, 4W) in [-1, 1], the
    model's bicubic x4 LR input and the HR image (HxWx3 uint8)."""

    name: str
    paths: dict[str, str]
    lr_size: tuple[int, int]
    ref_size: tuple[int, int]
    output: np.ndarray
    reference: np.ndarray
    bicubic: np.ndarray
    hr: np.ndarray | None

    @property
    def image(self) -> np.ndarray:
        return to_image(self.output)

    @property
    def reference_image(self) -> np.ndarray:
        return to_image(self.reference)


def error_stats(output: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Polygraphy's comparison numbers on the [0, 1] pixel scale (raw outputs, before rounding).

    Absolute and relative error (max, mean, median; relative to the reference value, floored at
    1/255), and for each tolerance the share of pixels whose largest channel error exceeds it.
    """
    ours = (np.asarray(output, dtype=np.float64) + 1.0) / 2.0
    theirs = (np.asarray(reference, dtype=np.float64) + 1.0) / 2.0
    if ours.shape != theirs.shape:
        raise ValueError(f"output {ours.shape} and reference {theirs.shape} differ in shape")
    absolute = np.abs(ours - theirs)
    relative = absolute / np.maximum(np.abs(theirs), REL_FLOOR)
    per_pixel = absolute.max(axis=0)
    return {
        "scale": "[0, 1] pixel values",
        "abs": {"max": float(absolute.max()), "mean": float(absolute.mean()), "median": float(np.median(absolute))},
        "rel": {"max": float(relative.max()), "mean": float(relative.mean()), "median": float(np.median(relative))},
        "share_of_pixels_over": {f"{level:g}/255": float((per_pixel > level / 255).mean())
                                 for level in TOLERANCE_LEVELS},
    }


def _pair(first: np.ndarray, second: np.ndarray, convention: str, crop_border: int) -> dict[str, float]:
    psnr, ssim = score(first, second, convention, crop_border)
    return {"psnr": psnr, "ssim": ssim}


def score_image(result: ImageResult, convention: str, crop_border: int) -> dict[str, Any]:
    """The JSON row of one image: sizes, scores and the error statistics of its one output, ``sr``."""
    image, reference = result.image, result.reference_image
    row: dict[str, Any] = {
        "name": result.name, **result.paths,
        "lr_size": list(result.lr_size), "ref_size": list(result.ref_size), "sr_size": list(image.shape[:2]),
        "vs_reference": _pair(image, reference, convention, crop_border),
    }
    if result.hr is not None:
        row["vs_hr"] = _pair(image, result.hr, convention, crop_border)
        row["reference_vs_hr"] = _pair(reference, result.hr, convention, crop_border)
    row["error_stats"] = {"sr": error_stats(result.output, result.reference)}
    return row


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM of each comparison the rows have."""
    result = {}
    for key in SCORED:
        scored = [row[key] for row in rows if key in row]
        if scored:
            result[key] = {"psnr": float(np.mean([float(s["psnr"]) for s in scored])),
                           "ssim": float(np.mean([float(s["ssim"]) for s in scored]))}
    return result


def accuracy_table(rows: Sequence[dict[str, Any]], means: dict[str, dict[str, float]]) -> str:
    keys = ["vs_reference"] + (["vs_hr", "reference_vs_hr"] if any("vs_hr" in row for row in rows) else [])
    titles = {"vs_reference": "vs reference", "vs_hr": "vs HR", "reference_vs_hr": "reference vs HR"}
    header = ["image", "SR size"] + [f"{titles[k]} {q}" for k in keys for q in ("PSNR dB", "SSIM")]

    def cells(scores: dict[str, float] | None) -> list[str]:
        if scores is None:
            return ["-", "-"]
        return [number(float(scores["psnr"])), number(float(scores["ssim"]), 4)]

    body = [[row["name"], f"{row['sr_size'][0]}x{row['sr_size'][1]}"]
            + [cell for key in keys for cell in cells(row.get(key))] for row in rows]
    footer = [["mean", ""] + [cell for key in keys for cell in cells(means.get(key))]]
    return render(header, body, footer)
