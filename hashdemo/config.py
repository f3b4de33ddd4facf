"""The training configuration, shared by training and checkpoint loading."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    method: str = "hier"  # "hier" (two-level, SPEC 1) or "dcoh" (code operators, SPEC 2)
    seed: int = 0
    epochs: int = 5  # 5 epochs of 30k images (~210 s each at C = 256 on these 2 cores) stay within 20 minutes
    batch_size: int = 128  # enough pairs per batch for the pairwise loss, small enough for CPU speed
    lr: float = 2e-3  # AdamW with cosine decay; stable for BatchNorm nets at this batch size
    weight_decay: float = 1e-4
    image_size: int = 64  # input side in pixels; travels with the checkpoint so the app resizes to it
    # C: Conv7 maps, so local bits. None: 256 for hier, where H + L must stay far below C (the method's
    # regime, SPEC 1; 512 cost 1.45x per step and could not train within 20 minutes here), and 64 for
    # dcoh, whose h(x) uses the global code only.
    conv7_channels: int | None = None
    bits: int = 32  # H (global code) for hier, K for dcoh
    local_weight: float = 1.0  # 0 trains the one-level (DPSH-style) baseline
    quant_weight: float = 0.1  # pull tanh outputs toward +-1 without fighting the likelihood
    label_weight: float = 1.0  # label prediction from codes (semantic discriminability)
    # Exact label sets: a second pairwise likelihood on the global code whose target is 1 only for
    # pairs with the same label set, so partial overlaps sit farther than exact matches (composed
    # retrieval asks for exact sets, SPEC 3). 0 leaves the graded target alone.
    set_weight: float = 0.0
    adv_weight: float = 0.05  # dcoh: distribution matching (0.05 chosen on val); 0 is the ablation
    operator_steps: int = 2000  # dcoh phase 2: operator updates on the frozen codes (~30 s)
    operator_batch: int = 256  # pairs per operator per step
    operator_lr: float = 3e-2  # chosen on val over 3e-3 / 1e-2 / 3e-2
    operator_seed: int | None = None  # dcoh phase 2's own seed (None: `seed`); varies the operators alone
    train_size: int | None = None  # None: the whole train split; tests train on a few hundred
    dataset: str = "outfits"  # "outfits" (Fashion-MNIST outfits) or the name of an imported folder
    n_classes: int = 10  # label classes (the code classifier's outputs); an imported set's own count

    def __post_init__(self) -> None:
        if self.conv7_channels is None:
            object.__setattr__(self, "conv7_channels", 256 if self.method == "hier" else 64)
        if self.method == "hier" and self.local_weight > 0 and self.bits >= self.conv7_channels:
            raise ValueError(
                f"the global code (H = {self.bits}) must be shorter than the local code "
                f"(C = {self.conv7_channels})"
            )

    @property
    def name(self) -> str:
        if self.method == "hier" and self.local_weight > 0:
            return "hier"
        if self.method == "hier":  # one-level baselines: at H bits, or as long as the local code
            return "single_level" if self.bits < self.conv7_channels else "single_level_local"
        return "dcoh" if self.adv_weight > 0 else "dcoh_no_adv"
