"""The training configuration, shared by training and checkpoint loading."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    method: str = "hier"  # "hier" (two-level, SPEC 1) or "dcoh" (code operators, SPEC 2)
    seed: int = 0
    epochs: int = 8  # ~45 s an epoch of 30k images on 2 cores: the shipped runs stay under 10 min
    batch_size: int = 128  # enough pairs per batch for the pairwise loss, small enough for CPU speed
    lr: float = 2e-3  # AdamW with cosine decay; stable for BatchNorm nets at this batch size
    weight_decay: float = 1e-4
    image_size: int = 64  # input side in pixels; travels with the checkpoint so the app resizes to it
    conv7_channels: int = 64  # C: Conv7 maps, so local bits; 64 is where re-ranking has room
    bits: int = 32  # H (global code) for hier, K for dcoh
    local_weight: float = 1.0  # 0 trains the one-level (DPSH-style) baseline
    quant_weight: float = 0.1  # pull tanh outputs toward +-1 without fighting the likelihood
    label_weight: float = 1.0  # label prediction from codes (semantic discriminability)
    adv_weight: float = 0.2  # dcoh: distribution matching; 0 is the ablation
    train_size: int | None = None  # None: the whole train split; tests train on a few hundred

    def __post_init__(self) -> None:
        if self.method == "hier" and self.local_weight > 0 and self.bits >= self.conv7_channels:
            raise ValueError(
                f"the global code (H = {self.bits}) must be shorter than the local code (C = {self.conv7_channels})"
            )

    @property
    def name(self) -> str:
        if self.method == "hier":
            return "hier" if self.local_weight > 0 else "single_level"
        return "dcoh" if self.adv_weight > 0 else "dcoh_no_adv"
