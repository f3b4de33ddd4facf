"""The backbone seam: a backbone is chosen by name and maps images to the last conv layer's maps.

Every backbone takes (B, 3, S, S) preprocessed images and returns non-negative maps (B, C, h, w): the
local code has one bit per channel, and the global code is linear in the channels' spatial means, so a
global bit's CAM stays exact whatever the backbone. A new backbone is one entry in BACKBONES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SevenLayerCNN(nn.Module):
    """Seven 3x3 conv layers: (B, 3, 64, 64) -> Conv7 maps (B, C, 8, 8), non-negative (ReLU)."""

    def __init__(self, conv7_channels: int = 64):
        super().__init__()
        self.features = nn.Sequential(
            _conv(3, 32, stride=2),  # conv1: 32x32, the stride keeps 64x64 input cheap on a CPU
            _conv(32, 32),  # conv2
            nn.MaxPool2d(2),  # 16x16
            _conv(32, 64),  # conv3
            _conv(64, 64),  # conv4
            nn.MaxPool2d(2),  # 8x8: items are ~20-30 px, so one Conv7 cell is about a third of one
            _conv(64, 96),  # conv5
            _conv(96, 96),  # conv6
        )
        self.conv7 = _conv(96, conv7_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv7(self.features(x))


@dataclass(frozen=True)
class BackboneSpec:
    build: Callable[[int], nn.Module]  # channels -> the module
    summary: str


BACKBONES = {
    "cnn7": BackboneSpec(SevenLayerCNN, "seven 3x3 conv layers trained from scratch; C is the config's"),
}


def build_backbone(name: str, channels: int) -> nn.Module:
    """The backbone `name` with `channels` output maps, or a ValueError naming the choices."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name].build(channels)
