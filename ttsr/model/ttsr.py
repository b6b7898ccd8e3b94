"""The whole TTSR network: texture extractor, search-transfer block and generator."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ttsr.model.lte import LTE
from ttsr.model.search_transfer import SearchTransfer
from ttsr.model.ttsr_net import TTSRNet

INPUT_NAMES = ("lq", "lq_up", "ref", "ref_downup")
OUTPUT_NAME = "sr"


class TTSR(nn.Module):
    """``forward(lq, lq_up, ref, ref_downup) -> sr``.

    ``lq`` (N, 3, H, W) in [-1, 1]; ``lq_up`` (N, 3, 4H, 4W), ``ref`` and
    ``ref_downup`` (N, 3, Hr4, Wr4) in [0, 1] with Hr4, Wr4 multiples of 4;
    ``sr`` (N, 3, 4H, 4W) in [-1, 1].  Inputs are prepared by :mod:`ttsr.data`.
    """

    def __init__(self, mid_channels: int = 64,
                 num_blocks: tuple[int, int, int, int] = (16, 16, 8, 4)) -> None:
        # The defaults are the released x4 c64b16 networks; smaller generators serve the
        # golden fixture, which must stay small enough to commit.
        super().__init__()
        self.generator = TTSRNet(mid_channels=mid_channels, num_blocks=num_blocks)
        self.extractor = LTE()
        self.search_transfer = SearchTransfer()

    def forward(self, lq: Tensor, lq_up: Tensor, ref: Tensor, ref_downup: Tensor) -> Tensor:
        q = self.extractor(lq_up)[0]
        k = self.extractor(ref_downup)[0]
        v3, v2, v1 = self.extractor(ref)
        s, t3, t2, t1 = self.search_transfer(q, k, v3, v2, v1)
        return self.generator(lq, s, (t3, t2, t1))


def build_model(seed: int | None = None) -> TTSR:
    """A TTSR in eval mode; with ``seed``, its random weights are reproducible."""
    if seed is None:
        model = TTSR()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TTSR()
    return model.eval()
