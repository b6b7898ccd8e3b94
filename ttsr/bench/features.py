"""Inputs of the GPU check: search-transfer features for the block, images for the whole model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

TTSR_CHANNELS = (256, 256, 128, 64)  # ck, c3, c2, c1 of TTSR's LTE features
SCALE = 4  # TTSR's: SR and Ref images are 4x the LR


@dataclass(frozen=True)
class Case:
    """One block shape: batch, LR and Ref feature sizes, channels (ck, c3, c2, c1)."""

    n: int
    h: int
    w: int
    hr: int
    wr: int
    channels: tuple[int, int, int, int] = TTSR_CHANNELS

    @property
    def label(self) -> str:
        return f"N={self.n} LR {self.h}x{self.w} Ref {self.hr}x{self.wr} C={','.join(map(str, self.channels))}"

    @classmethod
    def square(cls, side: int) -> "Case":
        """Batch 1, LR = Ref = ``side`` (the benchmark's shape)."""
        return cls(1, side, side, side, side)


def make_inputs(case: Case, seed: int, device: str = "cuda") -> tuple[Tensor, ...]:
    """q, k, v3, v2, v1 as ReLU-like float32 features (non-negative, with zeros) as the LTE produces."""
    gen = torch.Generator(device=device).manual_seed(seed)
    ck, c3, c2, c1 = case.channels
    sizes = ((case.n, ck, case.h, case.w), (case.n, ck, case.hr, case.wr), (case.n, c3, case.hr, case.wr),
             (case.n, c2, 2 * case.hr, 2 * case.wr), (case.n, c1, 4 * case.hr, 4 * case.wr))
    return tuple(torch.randn(s, generator=gen, device=device).clamp_(min=0) for s in sizes)


def model_inputs(lr_side: int, seed: int, batch: int = 1) -> tuple[Tensor, ...]:
    """The whole model's inputs (lq, lq_up, ref, ref_downup; float32 on the CPU, in the ranges of
    :class:`ttsr.model.TTSR`) for a square LR of ``lr_side`` and a Ref of 4x that, whose features
    then have the LR's grid.  Smooth random textures stand in for photos; the Ref is the HR
    image mirrored, so that the search finds matching patches.  The resizing is torch's bicubic
    (not PIL's, as :mod:`ttsr.data` does): the GPU machine may lack Pillow."""
    gen = torch.Generator().manual_seed(seed)
    hr_side = SCALE * lr_side
    coarse = torch.rand((batch, 3, hr_side // 2, hr_side // 2), generator=gen)
    hr = _resized(coarse, hr_side)
    ref = hr.flip(-1)
    lr = _resized(hr, lr_side)
    return lr * 2 - 1, _resized(lr, hr_side), ref, _resized(_resized(ref, lr_side), hr_side)


def _resized(image: Tensor, side: int) -> Tensor:
    return F.interpolate(image, size=(side, side), mode="bicubic", align_corners=False).clamp_(0, 1)
