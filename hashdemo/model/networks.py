"""Networks: a seven-layer CNN whose last conv layer is Conv7, the hash head both methods use,
and DCOH's code operators and discriminator (docs/methods.md, both methods).

Preprocessing lives here, beside the model, so training, evaluation and the app cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hashdemo.data.label_ops import OPERATORS
from hashdemo.model.backbones import build_backbone


def preprocess(images: np.ndarray) -> torch.Tensor:
    """(N, 64, 64, 3) uint8 RGB -> (N, 3, 64, 64) float32 in [-1, 1]."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2)  # a copy: inputs may be read-only
    return x.float().div_(127.5).sub_(1.0)


def signs_of(bits: np.ndarray) -> torch.Tensor:
    """0/1 codes as the +-1 float tensor the networks take."""
    return torch.from_numpy(bits.astype(np.float32) * 2 - 1)


@dataclass
class HashOutput:
    conv7: torch.Tensor  # (B, C, h, w) the Conv7 feature maps I_1..I_C
    local_relaxed: torch.Tensor  # (B, C) tanh relaxation of H_l, one bit per Conv7 map
    global_relaxed: torch.Tensor  # (B, H) tanh relaxation of H_g
    logits: torch.Tensor  # (B, n_classes) label prediction from the global code
    global_pre: torch.Tensor  # (B, H) before the tanh: the bit is its sign; the peers' losses take it
    local_pre: torch.Tensor  # (B, C) likewise for the local code


class HashNet(nn.Module):
    """Backbone + two-level hash head.

    Local code: pooled Conv7 map c through a per-channel affine (BatchNorm1d), so bit c means
    "feature map c fires above its learned threshold". Global code: a linear map of that local
    pre-activation, so each global bit is linear in the pooled Conv7 features and its CAM is the
    exact Zhou et al. form (see `cam_weights`). DCOH uses the same net as its h(x), global code only.
    """

    def __init__(self, conv7_channels: int = 64, bits: int = 32, n_classes: int = 10, backbone: str = "cnn7"):
        super().__init__()
        if bits > conv7_channels:
            raise ValueError(f"global bits ({bits}) must not outnumber Conv7 channels ({conv7_channels})")
        self.backbone = build_backbone(backbone, conv7_channels)
        self.local_norm = nn.BatchNorm1d(conv7_channels)
        self.global_proj = nn.Linear(conv7_channels, bits)
        self.classifier = nn.Linear(bits, n_classes)

    def forward(self, x: torch.Tensor) -> HashOutput:
        conv7 = self.backbone(x)  # (B, C, h, w)
        local_pre = self.local_norm(conv7.mean(dim=(2, 3)))  # (B, C)
        global_pre = self.global_proj(local_pre)  # (B, H)
        global_relaxed = torch.tanh(global_pre)
        logits = self.classifier(global_relaxed)
        return HashOutput(conv7, torch.tanh(local_pre), global_relaxed, logits, global_pre, local_pre)

    @torch.no_grad()
    def cam_weights(self) -> torch.Tensor:
        """(H, C) weights w_jc with global_pre_j = sum_c w_jc * mean(I_c) + const (eval mode).

        The BatchNorm1d scale folds into the projection; the constant shifts a CAM uniformly
        and vanishes when the map is normalised to [0, 1].
        """
        norm = self.local_norm
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (C,)
        return self.global_proj.weight * scale[None, :]

    @torch.no_grad()
    def encode(self, images: np.ndarray, batch_size: int = 500, with_conv7: bool = False) -> Encoded:
        """Codes of uint8 images (N, 64, 64, 3), in eval mode; the model's mode is restored."""
        was_training = self.training
        self.eval()
        parts: dict[str, list[np.ndarray]] = {name: [] for name in Encoded.__dataclass_fields__}
        for start in range(0, len(images), batch_size):
            out = self(preprocess(images[start : start + batch_size]))
            parts["global_bits"].append((out.global_relaxed > 0).to(torch.uint8).numpy())
            parts["local_bits"].append((out.local_relaxed > 0).to(torch.uint8).numpy())
            parts["pooled"].append(out.conv7.mean(dim=(2, 3)).numpy())
            parts["label_probs"].append(torch.sigmoid(out.logits).numpy())
            if with_conv7:
                parts["conv7"].append(out.conv7.numpy())
        self.train(was_training)
        return Encoded(**{name: np.concatenate(chunks) if chunks else None for name, chunks in parts.items()})


@dataclass(frozen=True)
class Encoded:
    """What the search and the UI need of a batch of images, as numpy arrays."""

    global_bits: np.ndarray  # (N, H) uint8, H_g
    local_bits: np.ndarray  # (N, C) uint8, H_l
    pooled: np.ndarray  # (N, C) float32, spatial mean of the Conv7 maps
    label_probs: np.ndarray  # (N, n_classes) float32, the code classifier's sigmoid
    conv7: np.ndarray | None = None  # (N, C, h, w) float32, only when asked for

    def take(self, ids: np.ndarray) -> Encoded:
        """The rows `ids` of every array."""
        return Encoded(**{name: None if value is None else value[ids] for name, value in vars(self).items()})


class CodeOperators(nn.Module):
    """Union / intersection / difference: h = tanh(W [h1, h2] + b), W in R^{K x 2K} (eqs. 3.3-3.5)."""

    def __init__(self, bits: int):
        super().__init__()
        self.maps = nn.ModuleDict({name: nn.Linear(2 * bits, bits) for name in OPERATORS})

    def forward(self, operator: str, codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
        if operator not in self.maps:
            raise ValueError(f"unknown operator {operator!r}; expected one of {OPERATORS}")
        return torch.tanh(self.maps[operator](torch.cat([codes_a, codes_b], dim=1)))


class CodeDiscriminator(nn.Module):
    """D: real code h(x) -> logit 1, operator output -> logit 0 (distribution matching loss)."""

    def __init__(self, bits: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(bits, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes).squeeze(1)
