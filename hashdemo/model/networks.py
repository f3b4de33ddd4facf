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
from hashdemo.data.split import Split
from hashdemo.model.backbones import build_backbone, normalisation
from hashdemo.model.device import DEVICE_BATCH_MIN, placed, resolve_device


def preprocess(images: np.ndarray, backbone: str = "cnn7") -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32: in [-1, 1] for a backbone trained here, with
    torchvision's ImageNet normalisation for its backbones."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2)  # a copy: inputs may be read-only
    stats = normalisation(backbone)
    if stats is None:
        return x.float().div_(127.5).sub_(1.0)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in stats)
    return x.float().div_(255.0).sub_(mean).div_(std)


def signs_of(bits: np.ndarray) -> torch.Tensor:
    """0/1 codes as the +-1 float tensor the networks take."""
    return torch.from_numpy(bits.astype(np.float32) * 2 - 1)


@dataclass
class HashOutput:
    conv7: torch.Tensor | None  # (B, C, h, w) the Conv7 feature maps I_1..I_C; None from cached features
    local_relaxed: torch.Tensor  # (B, C) tanh relaxation of H_l, one bit per Conv7 map
    global_relaxed: torch.Tensor  # (B, H) tanh relaxation of H_g
    logits: torch.Tensor  # (B, n_classes) label prediction from the global code
    global_pre: torch.Tensor  # (B, H) before the tanh: the bit is its sign; the peers' losses take it
    local_pre: torch.Tensor  # (B, C) likewise for the local code
    pooled: torch.Tensor  # (B, C) the Conv7 maps' spatial means, what the head took


class HashNet(nn.Module):
    """Backbone + two-level hash head.

    Local code: pooled Conv7 map c through a per-channel affine (BatchNorm1d), so bit c means
    "feature map c fires above its learned threshold". Global code: a linear map of that local
    pre-activation, so each global bit is linear in the pooled Conv7 features and its CAM is the
    exact Zhou et al. form (see `cam_weights`). DCOH uses the same net as its h(x), global code only.

    A frozen backbone (pretrained weights, no fine-tuning) is never trained and stays in eval mode, so
    the head can train on its pooled outputs computed once (`head`, `encode_pooled`).
    """

    def __init__(
        self,
        conv7_channels: int = 64,
        bits: int = 32,
        n_classes: int = 10,
        backbone: str = "cnn7",
        frozen_backbone: bool = False,
    ):
        super().__init__()
        if bits > conv7_channels:
            raise ValueError(f"global bits ({bits}) must not outnumber Conv7 channels ({conv7_channels})")
        self.backbone_name, self.frozen_backbone = backbone, frozen_backbone
        self.backbone = build_backbone(backbone, conv7_channels)
        self.backbone.requires_grad_(not frozen_backbone)
        self.local_norm = nn.BatchNorm1d(conv7_channels)
        self.global_proj = nn.Linear(conv7_channels, bits)
        self.classifier = nn.Linear(bits, n_classes)

    def train(self, mode: bool = True) -> HashNet:
        super().train(mode)
        if self.frozen_backbone:  # its BatchNorm statistics are the pretrained ones
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> HashOutput:
        conv7 = self.backbone(x)  # (B, C, h, w)
        return self.head(conv7.mean(dim=(2, 3)), conv7)

    def head(self, pooled: torch.Tensor, conv7: torch.Tensor | None = None) -> HashOutput:
        """The hash head on the Conv7 maps' spatial means (B, C)."""
        local_pre = self.local_norm(pooled)  # (B, C)
        global_pre = self.global_proj(local_pre)  # (B, H)
        global_relaxed = torch.tanh(global_pre)
        logits = self.classifier(global_relaxed)
        return HashOutput(conv7, torch.tanh(local_pre), global_relaxed, logits, global_pre, local_pre, pooled)

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
        """Codes of uint8 images (N, S, S, 3), in eval mode; the model's mode is restored."""
        return self._encode(
            images, lambda batch: preprocess(batch, self.backbone_name), self, batch_size, with_conv7
        )

    @torch.no_grad()
    def encode_pooled(self, pooled: np.ndarray, batch_size: int = 4096) -> Encoded:
        """Codes from the backbone's pooled outputs (N, C), as cached for a frozen backbone."""
        return self._encode(pooled, lambda batch: torch.from_numpy(np.asarray(batch)), self.head, batch_size)

    def _encode(self, inputs, prepare, forward, batch_size: int, with_conv7: bool = False) -> Encoded:
        """A batch pass on the compute device (`hashdemo.model.device`) when it is large enough and the
        model sits on the CPU, else where the model is; results on the CPU."""
        home = next(self.parameters()).device
        device = resolve_device() if home.type == "cpu" and len(inputs) >= DEVICE_BATCH_MIN else home
        was_training = self.training
        self.eval()
        parts: dict[str, list[np.ndarray]] = {name: [] for name in Encoded.__dataclass_fields__}
        with placed(self, device):
            for start in range(0, len(inputs), batch_size):
                out = forward(prepare(inputs[start : start + batch_size]).to(device))
                parts["global_bits"].append((out.global_relaxed > 0).to(torch.uint8).cpu().numpy())
                parts["local_bits"].append((out.local_relaxed > 0).to(torch.uint8).cpu().numpy())
                parts["label_probs"].append(torch.sigmoid(out.logits).cpu().numpy())
                parts["pooled"].append(out.pooled.cpu().numpy())
                if with_conv7:
                    parts["conv7"].append(out.conv7.cpu().numpy())
        self.train(was_training)
        return Encoded(**{name: np.concatenate(chunks) if chunks else None for name, chunks in parts.items()})


def encode_split(model: HashNet, split: Split, limit: int | None = None) -> Encoded:
    """Codes of a split's first `limit` images: from its cached backbone features when the model's
    backbone is frozen and the split carries them (training), else through the whole network."""
    if model.frozen_backbone and split.features is not None:
        return model.encode_pooled(split.features[:limit])
    return model.encode(split.images[:limit])


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
