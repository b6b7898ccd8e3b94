"""Learnable texture extractor: VGG19 up to relu3_1 behind a frozen ImageNet normalisation."""

from __future__ import annotations

from collections import OrderedDict
from typing import cast

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNormalize(nn.Conv2d):
    """``(x - mean) / std`` as a frozen 1x1 convolution.

    A convolution rather than buffers because the released checkpoints store it
    as ``img_normalize.weight`` / ``img_normalize.bias``.
    """

    def __init__(self, mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__(3, 3, kernel_size=1)
        std_t = torch.tensor(std)
        with torch.no_grad():
            self.weight.copy_(torch.diag(1.0 / std_t).view(3, 3, 1, 1))
            cast(Tensor, self.bias).copy_(-torch.tensor(mean) / std_t)  # Conv2d types it Optional
        self.requires_grad_(False)


def _vgg_slice(first_index: int, layers: list[nn.Module]) -> nn.Sequential:
    # VGG19 ``features`` indices are kept as child names so that checkpoint keys
    # read ``slice2.5.weight`` like torchvision's layer numbering.
    return nn.Sequential(OrderedDict(
        (str(first_index + i), layer) for i, layer in enumerate(layers)))


class LTE(nn.Module):
    """Returns ``[relu3_1 (256, h/4, w/4), relu2_1 (128, h/2, w/2), relu1_1 (64, h, w)]``.

    Input: RGB in [0, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.img_normalize = ImageNormalize()
        self.slice1 = _vgg_slice(0, [nn.Conv2d(3, 64, 3, padding=1), nn.ReLU()])
        self.slice2 = _vgg_slice(2, [
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU()])
        self.slice3 = _vgg_slice(7, [
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, padding=1), nn.ReLU()])

    def forward(self, x: Tensor) -> list[Tensor]:
        level1 = self.slice1(self.img_normalize(x))
        level2 = self.slice2(level1)
        level3 = self.slice3(level2)
        return [level3, level2, level1]
