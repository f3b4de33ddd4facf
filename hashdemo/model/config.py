"""The training configuration, shared by training and checkpoint loading."""

from __future__ import annotations

from dataclasses import dataclass

from hashdemo.model.backbones import backbone_spec

# What each method trains with when a field is left at None (why, with the measurements: docs/methods.md).
# hier: H = 32 of C = 256 local bits, so H + L stay far below C, the method's regime.
# dcoh: h(x) uses the global code only; K = 96 at C = 96, 10 epochs, chosen on val (docs/results.md).
METHOD_DEFAULTS = {
    "hier": {"conv7_channels": 256, "bits": 32, "epochs": 5},
    "dcoh": {"conv7_channels": 96, "bits": 96, "epochs": 10},
    "laso": {"conv7_channels": 96, "bits": 96, "epochs": 10},  # DCOH's h(x): its pooled features
}


@dataclass(frozen=True)
class TrainConfig:
    # "hier" (two-level codes, method 1), "dcoh" (code operators, method 2) or "laso" (its feature peer)
    method: str = "hier"
    backbone: str = "cnn7"  # by name, from hashdemo.model.backbones
    # a torchvision backbone's starting weights (hashdemo.model.weights): "imagenet", a state dict's file
    # or "none"; None: imagenet for a torchvision backbone, none for one trained from scratch
    weights: str | None = None
    finetune: bool = False  # train a torchvision backbone too (default: frozen, heads train on its features)
    # the global code's loss: "pairwise" (the seed's likelihood, with the quantization and label terms)
    # or a peer's from hashdemo.model.peer_losses (its own terms only)
    loss: str = "pairwise"
    seed: int = 0
    epochs: int | None = None  # None: the method's own (METHOD_DEFAULTS)
    batch_size: int = 128  # enough pairs per batch for the pairwise loss, small enough for CPU speed
    lr: float = 2e-3  # AdamW with cosine decay; stable for BatchNorm nets at this batch size
    weight_decay: float = 1e-4
    image_size: int = 64  # input side in pixels; travels with the checkpoint so the app resizes to it
    conv7_channels: int | None = None  # C: Conv7 maps, so local bits; None: the method's own
    bits: int | None = None  # H (global code) for hier, K for dcoh; None: the method's own
    local_weight: float = 1.0  # 0 trains the one-level (DPSH-style) baseline
    quant_weight: float = 0.1  # pull tanh outputs toward +-1 without fighting the likelihood
    label_weight: float = 1.0  # label prediction from codes (semantic discriminability)
    # Exact label sets: a second pairwise likelihood on the global code whose target is 1 only for
    # pairs with the same label set, so partial overlaps sit farther than exact matches (composed
    # retrieval asks for exact sets). 0 leaves the graded target alone.
    set_weight: float = 0.0
    adv_weight: float = 0.05  # dcoh: distribution matching (0.05 chosen on val); 0 is the ablation
    operator_steps: int = 2000  # dcoh phase 2: operator updates on the frozen codes (seconds on a CPU)
    operator_batch: int = 256  # pairs per operator per step
    operator_lr: float = 3e-2  # chosen on val over 3e-3 / 1e-2 / 3e-2
    operator_seed: int | None = None  # dcoh phase 2's own seed (None: `seed`); varies the operators alone
    # phase 2: compositions per step for each of the 9 chains (x0 op1 x1) op2 x2, the first operator's
    # output the second's first operand (128 chosen on val over 0 / 128 / 256: chains composed from
    # generated codes need it, docs/results.md); 0 trains only the single operators and the
    # union -> difference cascade (eq. 3.6)
    chain_batch: int = 128
    logit_range: float = 8.0  # dcoh phase 2: prototype logits are codes' inner products * logit_range / K
    train_size: int | None = None  # None: the whole train split; tests train on a few hundred
    dataset: str = "outfits"  # the built-in outfits, or the name of an imported data set
    n_classes: int = 10  # label classes (the code classifier's outputs); an imported set's own count

    def __post_init__(self) -> None:
        spec = backbone_spec(self.backbone)
        if spec.channels is not None:  # the architecture's: one local bit per channel of its last block
            if self.conv7_channels not in (None, spec.channels):
                raise ValueError(f"{self.backbone} has {spec.channels} channels, not {self.conv7_channels}")
            object.__setattr__(self, "conv7_channels", spec.channels)
        if self.weights is None:
            object.__setattr__(self, "weights", "imagenet" if spec.torchvision else "none")
        for name, value in METHOD_DEFAULTS[self.method if self.method in METHOD_DEFAULTS else "hier"].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.method == "hier" and self.local_weight > 0 and self.bits >= self.conv7_channels:
            raise ValueError(
                f"the global code (H = {self.bits}) must be shorter than the local code "
                f"(C = {self.conv7_channels})"
            )

    @property
    def frozen_backbone(self) -> bool:
        """A torchvision backbone not fine-tuned: the heads train on its features, computed once."""
        return backbone_spec(self.backbone).torchvision is not None and not self.finetune
