"""TTSRNet: the generator of TTSR (x4, 64 channels, residual blocks 16/16/8/4).

Attribute names follow mmediting's ``TTSRNet`` so that its state dict loads
under the ``generator.`` prefix without renaming.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1)


def upsample(x: Tensor, scale: int) -> Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x))) * res_scale``."""

    def __init__(self, channels: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        # Residual branches start small (as mmediting initialises them) so that a
        # freshly seeded deep stack stays numerically tame.
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(cast(Tensor, conv.bias))  # Conv2d types it Optional; conv3x3 makes one

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x))) * self.res_scale


def residual_blocks(count: int, channels: int, res_scale: float) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlockNoBN(channels, res_scale) for _ in range(count)))


class SFE(nn.Module):
    """Shallow feature extraction: conv, residual blocks, conv, long skip."""

    def __init__(self, in_channels: int, mid_channels: int, num_blocks: int,
                 res_scale: float) -> None:
        super().__init__()
        self.conv_first = conv3x3(in_channels, mid_channels)
        self.body = residual_blocks(num_blocks, mid_channels, res_scale)
        self.conv_last = conv3x3(mid_channels, mid_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv_first(x))
        return x + self.conv_last(self.body(x))


class CSFI2(nn.Module):
    """Cross-scale feature integration between the x1 and x2 branches."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1to2 = conv1x1(channels, channels)
        self.conv2to1 = conv3x3(channels, channels, stride=2)
        self.conv_merge1 = conv3x3(channels * 2, channels)
        self.conv_merge2 = conv3x3(channels * 2, channels)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        x12 = F.relu(self.conv1to2(upsample(x1, 2)))
        x21 = F.relu(self.conv2to1(x2))
        out1 = F.relu(self.conv_merge1(torch.cat((x1, x21), dim=1)))
        out2 = F.relu(self.conv_merge2(torch.cat((x2, x12), dim=1)))
        return out1, out2


class CSFI3(nn.Module):
    """Cross-scale feature integration between the x1, x2 and x4 branches."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1to2 = conv1x1(channels, channels)
        self.conv1to4 = conv1x1(channels, channels)
        self.conv2to1 = conv3x3(channels, channels, stride=2)
        self.conv2to4 = conv1x1(channels, channels)
        self.conv4to1_1 = conv3x3(channels, channels, stride=2)
        self.conv4to1_2 = conv3x3(channels, channels, stride=2)
        self.conv4to2 = conv3x3(channels, channels, stride=2)
        self.conv_merge1 = conv3x3(channels * 3, channels)
        self.conv_merge2 = conv3x3(channels * 3, channels)
        self.conv_merge4 = conv3x3(channels * 3, channels)

    def forward(self, x1: Tensor, x2: Tensor, x4: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x12 = F.relu(self.conv1to2(upsample(x1, 2)))
        x14 = F.relu(self.conv1to4(upsample(x1, 4)))
        x21 = F.relu(self.conv2to1(x2))
        x24 = F.relu(self.conv2to4(upsample(x2, 2)))
        x41 = F.relu(self.conv4to1_2(F.relu(self.conv4to1_1(x4))))
        x42 = F.relu(self.conv4to2(x4))
        out1 = F.relu(self.conv_merge1(torch.cat((x1, x21, x41), dim=1)))
        out2 = F.relu(self.conv_merge2(torch.cat((x2, x12, x42), dim=1)))
        out4 = F.relu(self.conv_merge4(torch.cat((x4, x14, x24), dim=1)))
        return out1, out2, out4


class MergeFeatures(nn.Module):
    """Merges the three branches at x4 into the RGB output, clamped to [-1, 1]."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1to4 = conv1x1(channels, channels)
        self.conv2to4 = conv1x1(channels, channels)
        self.conv_merge = conv3x3(channels * 3, channels)
        self.conv_last1 = conv3x3(channels, channels // 2)
        self.conv_last2 = conv1x1(channels // 2, out_channels)

    def forward(self, x1: Tensor, x2: Tensor, x4: Tensor) -> Tensor:
        x14 = F.relu(self.conv1to4(upsample(x1, 4)))
        x24 = F.relu(self.conv2to4(upsample(x2, 2)))
        x = F.relu(self.conv_merge(torch.cat((x4, x14, x24), dim=1)))
        return torch.clamp(self.conv_last2(self.conv_last1(x)), -1.0, 1.0)


class PixelShufflePack(nn.Module):
    """Convolution to ``scale**2`` times the channels, then pixel shuffle."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel_size: int) -> None:
        super().__init__()
        self.scale = scale
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale * scale, kernel_size,
                                       padding=(kernel_size - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), self.scale)


class TTSRNet(nn.Module):
    """``forward(lq, soft_attention, (t3, t2, t1)) -> sr`` with sr in [-1, 1] at 4x the LR size.

    ``lq``: (N, 3, H, W) in [-1, 1]; ``soft_attention``: (N, 1, H, W);
    textures: (N, 4T, H, W), (N, 2T, 2H, 2W), (N, T, 4H, 4W) with T = ``texture_channels``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, mid_channels: int = 64,
                 texture_channels: int = 64, num_blocks: tuple[int, int, int, int] = (16, 16, 8, 4),
                 res_scale: float = 1.0) -> None:
        super().__init__()
        c, t = mid_channels, texture_channels
        self.texture_channels = t
        self.sfe = SFE(in_channels, c, num_blocks[0], res_scale)

        self.conv_first1 = conv3x3(c + 4 * t, c)
        self.res_block1 = residual_blocks(num_blocks[1], c, res_scale)
        self.conv_last1 = conv3x3(c, c)

        self.up1 = PixelShufflePack(c, c, 2, 3)
        self.conv_first2 = conv3x3(c + 2 * t, c)
        self.csfi2 = CSFI2(c)
        self.res_block2_1 = residual_blocks(num_blocks[2], c, res_scale)
        self.res_block2_2 = residual_blocks(num_blocks[2], c, res_scale)
        self.conv_last2_1 = conv3x3(c, c)
        self.conv_last2_2 = conv3x3(c, c)

        self.up2 = PixelShufflePack(c, c, 2, 3)
        self.conv_first3 = conv3x3(c + t, c)
        self.csfi3 = CSFI3(c)
        self.res_block3_1 = residual_blocks(num_blocks[3], c, res_scale)
        self.res_block3_2 = residual_blocks(num_blocks[3], c, res_scale)
        self.res_block3_3 = residual_blocks(num_blocks[3], c, res_scale)
        self.conv_last3_1 = conv3x3(c, c)
        self.conv_last3_2 = conv3x3(c, c)
        self.conv_last3_3 = conv3x3(c, c)

        self.merge_features = MergeFeatures(c, out_channels)

    def forward(self, lq: Tensor, soft_attention: Tensor,
                textures: tuple[Tensor, Tensor, Tensor] | list[Tensor]) -> Tensor:
        t3, t2, t1 = textures
        if t1.shape[1] != self.texture_channels:
            raise ValueError(f"finest texture has {t1.shape[1]} channels, "
                             f"expected texture_channels={self.texture_channels}")
        x1 = self.sfe(lq)
        x1 = x1 + self.conv_first1(torch.cat((x1, t3), dim=1)) * soft_attention
        x1 = x1 + self.conv_last1(self.res_block1(x1))

        x21 = x1
        x22 = F.relu(self.up1(x1))
        x22 = x22 + self.conv_first2(torch.cat((x22, t2), dim=1)) * upsample(soft_attention, 2)
        # The cross-scale blocks feed only the residual branches; the skips add the
        # features from before them (mmediting's TTSRNet, researchmm/TTSR's MainNet).
        x21_res, x22_res = self.csfi2(x21, x22)
        x21 = x21 + self.conv_last2_1(self.res_block2_1(x21_res))
        x22 = x22 + self.conv_last2_2(self.res_block2_2(x22_res))

        x31, x32 = x21, x22
        x33 = F.relu(self.up2(x22))
        x33 = x33 + self.conv_first3(torch.cat((x33, t1), dim=1)) * upsample(soft_attention, 4)
        x31_res, x32_res, x33_res = self.csfi3(x31, x32, x33)
        x31 = x31 + self.conv_last3_1(self.res_block3_1(x31_res))
        x32 = x32 + self.conv_last3_2(self.res_block3_2(x32_res))
        x33 = x33 + self.conv_last3_3(self.res_block3_3(x33_res))

        return self.merge_features(x31, x32, x33)
