"""Model inputs from images, as mmediting 0.x prepares them, and model output back to an image.

All resizes are Pillow BICUBIC on uint8 with mmcv's size rounding ``int(x * scale + 0.5)``
(``mmcv.imrescale(..., backend='pillow')``); Pillow antialiases when downscaling, so torch or
OpenCV bicubic would give other inputs and other scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ttsr.model.ttsr import INPUT_NAMES

SCALE = 4


def resize_bicubic(image: np.ndarray, scale: float) -> np.ndarray:
    """Rescale an HxWx3 uint8 image by ``scale`` exactly as ``mmcv.imrescale(backend='pillow')``."""
    height, width = image.shape[:2]
    size = (int(width * scale + 0.5), int(height * scale + 0.5))
    if min(size) < 1:
        raise ValueError(f"image of {height}x{width} is too small to rescale by {scale}")
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def _check_image(name: str, image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {tuple(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{name} must be an HxWx3 uint8 RGB array, got {got}; read it with ttsr.data.load_image")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"{name} is empty ({image.shape[0]}x{image.shape[1]})")


def _normalise(image: np.ndarray, mean: float, std: float) -> np.ndarray:
    """HxWx3 uint8 -> 1x3xHxW float32 ``(x - mean) / std`` (mmcv ``imnormalize``, no channel swap)."""
    chw = (image.astype(np.float64).transpose(2, 0, 1) - mean) / std
    return np.ascontiguousarray(chw[None], dtype=np.float32)


@dataclass
class ModelInputs:
    """The four TTSR inputs, float32 NCHW: ``lq`` in [-1, 1]; ``lq_up``, ``ref``, ``ref_downup`` in [0, 1].

    Construction checks that the grids agree (``lq_up`` = 4x ``lq``; ``ref_downup`` = ``ref``, both
    multiples of 4), so that mismatched sizes can never reach the model.
    """

    lq: np.ndarray
    lq_up: np.ndarray
    ref: np.ndarray
    ref_downup: np.ndarray

    def __post_init__(self) -> None:
        for name in INPUT_NAMES:
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.ndim != 4 or array.shape[1] != 3:
                shape = tuple(array.shape) if hasattr(array, "shape") else type(array).__name__
                raise ValueError(f"ModelInputs.{name} must be an (N, 3, H, W) numpy array, got {shape}")
        n, _, h, w = self.lq.shape
        hr4, wr4 = self.ref.shape[2:]
        expected = {"lq_up": (n, 3, SCALE * h, SCALE * w), "ref": (n, 3, hr4, wr4), "ref_downup": (n, 3, hr4, wr4)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"ModelInputs.{name} has shape {getattr(self, name).shape}, expected {shape} "
                                 f"for lq {self.lq.shape} and ref {self.ref.shape}")
        if hr4 % SCALE or wr4 % SCALE or min(h, w, hr4, wr4) < 1:
            raise ValueError(f"ModelInputs: ref is {hr4}x{wr4}, its sides must be positive multiples of {SCALE}")

    @property
    def batch(self) -> int:
        return int(self.lq.shape[0])

    @property
    def lr_size(self) -> tuple[int, int]:
        """(H, W) of the LR image."""
        return int(self.lq.shape[2]), int(self.lq.shape[3])

    @property
    def ref_size(self) -> tuple[int, int]:
        """(Hr4, Wr4) of the Ref image, multiples of 4."""
        return int(self.ref.shape[2]), int(self.ref.shape[3])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in INPUT_NAMES}

    def as_torch(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lq, lq_up, ref, ref_downup = (torch.from_numpy(getattr(self, name)) for name in INPUT_NAMES)
        return lq, lq_up, ref, ref_downup

    @staticmethod
    def stack(items: Sequence["ModelInputs"]) -> "ModelInputs":
        """Concatenate along the batch axis; all items must have the same LR and Ref sizes."""
        if not items:
            raise ValueError("ModelInputs.stack needs at least one item")
        sizes = {(item.lr_size, item.ref_size) for item in items}
        if len(sizes) > 1:
            listed = ", ".join(f"LR {lr[0]}x{lr[1]} / Ref {ref[0]}x{ref[1]}" for lr, ref in sorted(sizes))
            raise ValueError(f"cannot batch inputs of different sizes ({listed}); batch same-size pairs only")
        return ModelInputs(**{name: np.concatenate([getattr(item, name) for item in items])
                              for name in INPUT_NAMES})


def _model_inputs(lq: np.ndarray, lq_up: np.ndarray, ref: np.ndarray, ref_downup: np.ndarray) -> ModelInputs:
    return ModelInputs(lq=_normalise(lq, 127.5, 127.5), lq_up=_normalise(lq_up, 0.0, 255.0),
                       ref=_normalise(ref, 0.0, 255.0), ref_downup=_normalise(ref_downup, 0.0, 255.0))


def crop_like(ref: np.ndarray, height: int, width: int) -> np.ndarray:
    """mmediting ``CropLike``: ``ref`` cropped or zero-padded at the bottom/right to ``height`` x ``width``."""
    out = np.zeros((height, width, ref.shape[2]), dtype=ref.dtype)
    h, w = min(height, ref.shape[0]), min(width, ref.shape[1])
    out[:h, :w] = ref[:h, :w]
    return out


def mod_crop(image: np.ndarray) -> np.ndarray:
    """Crop bottom/right to multiples of 4, as mmagic 1.x ``ModCrop`` and the official TTSR test code do."""
    height, width = image.shape[:2]
    return image[: height - height % SCALE, : width - width % SCALE]


def prepare_eval(gt: np.ndarray, ref: np.ndarray) -> tuple[ModelInputs, np.ndarray]:
    """mmediting 0.x CUFED ``valid_pipeline``: inputs (batch 1) from a GT image and its Ref; also returns GT."""
    _check_image("GT", gt)
    _check_image("Ref", ref)
    height, width = gt.shape[:2]
    if height % SCALE or width % SCALE:
        raise ValueError(f"GT is {height}x{width}, its sides must be multiples of {SCALE}; crop it to "
                         f"{height - height % SCALE}x{width - width % SCALE} (bottom/right) first")
    ref = crop_like(ref, height, width)
    lq = resize_bicubic(gt, 1 / SCALE)
    ref_down = resize_bicubic(ref, 1 / SCALE)
    inputs = _model_inputs(lq, resize_bicubic(lq, SCALE), ref, resize_bicubic(ref_down, SCALE))
    return inputs, gt


def prepare_pair(lr: np.ndarray, ref: np.ndarray) -> ModelInputs:
    """Inference inputs (batch 1) from an LR image and a Ref image (no GT).

    The Ref is cropped at the bottom/right to multiples of 4 (as the official TTSR test code does),
    so that its x1/4-then-x4 copy has exactly its size and the three texture levels line up.
    """
    _check_image("LR", lr)
    _check_image("Ref", ref)
    height, width = ref.shape[:2]
    if height < SCALE or width < SCALE:
        raise ValueError(f"Ref is {height}x{width}, each side must be at least {SCALE} pixels; give a larger Ref")
    ref = mod_crop(ref)
    ref_downup = resize_bicubic(resize_bicubic(ref, 1 / SCALE), SCALE)
    return _model_inputs(lr, resize_bicubic(lr, SCALE), ref, ref_downup)


def to_image(sr: np.ndarray | Tensor) -> np.ndarray:
    """Model output (3, H, W) or (1, 3, H, W) in [-1, 1] -> HxWx3 uint8 RGB.

    Same float32 steps as mmediting 0.x (``(x + 1) / 2``, clamp, ``* 255``, numpy round half-to-even),
    so that the scores match its evaluation to the last pixel.
    """
    if isinstance(sr, Tensor):
        sr = sr.detach().cpu().float().numpy()
    chw = np.asarray(sr, dtype=np.float32)
    if chw.ndim == 4 and chw.shape[0] == 1:
        chw = chw[0]
    if chw.ndim != 3 or chw.shape[0] != 3:
        raise ValueError(f"expected one image of shape (3, H, W) or (1, 3, H, W), got {tuple(chw.shape)}; "
                         f"convert batch items one at a time")
    unit = np.clip((chw + np.float32(1)) / np.float32(2), 0, 1)
    image: np.ndarray = np.round(unit * np.float32(255)).astype(np.uint8).transpose(1, 2, 0).copy()
    return image
