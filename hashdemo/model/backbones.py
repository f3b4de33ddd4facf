"""The backbone seam: a backbone is chosen by name and maps images to the last conv layer's maps.

Every backbone takes (B, 3, S, S) preprocessed images and returns non-negative maps (B, C, h, w): the
local code has one bit per channel, and the global code is linear in the channels' spatial means, so a
global bit's CAM stays exact whatever the backbone. A new backbone is one entry in BACKBONES: the
seven-layer CNN trained from scratch (the outfits'), or a torchvision classifier cut at its last conv
block, whose ImageNet weights hashdemo.model.weights loads.
"""

from __future__ import annotations

import functools
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


class TorchvisionTrunk(nn.Module):
    """A torchvision classifier up to its last conv block (after its ReLU, so the maps are non-negative):
    a ResNet's layer4, VGG's last conv layer before the final pooling. Built without weights; pretrained
    ones are loaded into it (hashdemo.model.weights), or come with a checkpoint."""

    def __init__(self, name: str, classifier: nn.Module | None = None):
        super().__init__()
        from torchvision.models import get_model  # imported here: the outfits' CNN never needs it

        model = classifier if classifier is not None else get_model(name, weights=None)
        if name.startswith("resnet"):
            parts = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
            self.body = nn.Sequential(*(getattr(model, part) for part in parts))
        else:
            self.body = model.features[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@dataclass(frozen=True)
class BackboneSpec:
    build: Callable[[int], nn.Module]  # channels -> the module
    summary: str
    channels: int | None = None  # fixed by the architecture; None: the config's C
    torchvision: str | None = None  # the torchvision model it is cut from: ImageNet weights and statistics


def _torchvision(name: str, channels: int) -> BackboneSpec:
    def build(requested: int) -> nn.Module:
        if requested != channels:
            raise ValueError(f"{name}'s last conv block has {channels} channels, not {requested}")
        return TorchvisionTrunk(name)

    summary = f"torchvision's {name} up to its last conv block ({channels} local bits), ImageNet weights"
    return BackboneSpec(build, summary, channels, name)


BACKBONES = {
    "cnn7": BackboneSpec(SevenLayerCNN, "seven 3x3 conv layers trained from scratch; C is the config's"),
    "resnet18": _torchvision("resnet18", 512),
    "resnet50": _torchvision("resnet50", 2048),
    "vgg16": _torchvision("vgg16", 512),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The backbone `name`'s entry, or a ValueError naming the choices."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def build_backbone(name: str, channels: int) -> nn.Module:
    """The backbone `name` with `channels` output maps, or a ValueError naming the choices."""
    return backbone_spec(name).build(channels)


@functools.cache
def normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The per-channel (mean, std) of a torchvision backbone's ImageNet weights, from torchvision's own
    transforms; None for a backbone trained from scratch here (its inputs are scaled to [-1, 1])."""
    spec = backbone_spec(name)
    if spec.torchvision is None:
        return None
    from torchvision.models import get_model_weights

    transforms = get_model_weights(spec.torchvision).DEFAULT.transforms()
    return tuple(transforms.mean), tuple(transforms.std)
