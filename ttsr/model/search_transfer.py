"""The search-transfer block of TTSR, as mmediting computes it.

This is the PyTorch reference of the contract in :mod:`ttsr.contract`: it
materialises the full (Ref positions x LR positions) relevance matrix and the
unfolded value patches, exactly like the released model, so its memory grows
with the square of the image area.  The CPU twin and the CUDA kernels in
``plugins/`` compute the same outputs in linear memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ttsr import contract


def relevance(q: Tensor, k: Tensor) -> Tensor:
    """(N, Hr*Wr, H*W) cosine relevance of every Ref patch to every LR patch (contract steps 1-3)."""
    ps = contract.PATCH_SIZE
    q_unf = F.normalize(F.unfold(q, kernel_size=ps, padding=ps // 2), dim=1,
                        eps=contract.NORM_EPS)
    k_unf = F.normalize(F.unfold(k, kernel_size=ps, padding=ps // 2), dim=1,
                        eps=contract.NORM_EPS)
    return torch.bmm(k_unf.permute(0, 2, 1), q_unf)


class SearchTransfer(nn.Module):
    """Relevance embedding, hard and soft attention, and texture transfer.

    ``forward(q, k, v3, v2, v1) -> (s, t3, t2, t1)``; shapes in :mod:`ttsr.contract`.
    """

    def forward(self, q: Tensor, k: Tensor, v3: Tensor, v2: Tensor,
                v1: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ps = contract.PATCH_SIZE
        soft, hard = torch.max(relevance(q, k), dim=1)

        height, width = q.shape[2], q.shape[3]
        textures = []
        for value, scale in zip((v3, v2, v1), contract.LEVEL_SCALES):
            kernel = ps * scale
            v_unf = F.unfold(value, kernel_size=kernel, padding=scale, stride=scale)
            picked = v_unf.gather(2, hard.unsqueeze(1).expand(-1, v_unf.shape[1], -1))
            folded = F.fold(picked, output_size=(height * scale, width * scale),
                            kernel_size=kernel, padding=scale, stride=scale)
            textures.append(folded / contract.FOLD_DIVISOR)
        s = soft.view(q.shape[0], 1, height, width)
        return s, textures[0], textures[1], textures[2]
