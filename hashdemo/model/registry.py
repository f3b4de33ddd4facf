"""The model registry: every model hashdemo trains, by name, in one place: the config that makes it,
how it is built (`build_model`: a backbone by name + the hash heads) and the command that trains it.

A new model is one entry in MODELS; a new backbone is one entry in hashdemo.model.backbones.
Checkpoints (hashdemo.model.checkpoints) are built through `build_model` and `build_operators`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hashdemo.data.kinds import DEFAULT, dataset_flag
from hashdemo.model.config import TrainConfig
from hashdemo.model.laso import FeatureOperators
from hashdemo.model.networks import CodeDiscriminator, CodeOperators, HashNet


@dataclass(frozen=True)
class ModelSpec:
    method: str  # the training objective: "hier" (global + local codes) or "dcoh" (h(x), then operators)
    summary: str
    fields: dict = field(default_factory=dict)  # the config fields that make this model


PEERS = {  # the field's one-level hashing methods, each a loss of hashdemo.model.peer_losses
    "hashnet": "HashNet (Cao et al. 2017)",
    "csq": "CSQ (Yuan et al. 2020)",
    "greedyhash": "GreedyHash (Su et al. 2018)",
    "dsh": "DSH (Liu et al. 2016)",
}
AS_LOCAL = "as many bits as the local code"  # a `bits` field resolved to the backbone's C
OPERATOR_METHODS = ("dcoh", "laso")  # an h(x), then operators trained on its frozen outputs
MODELS = {
    "hier": ModelSpec("hier", "two-level codes: a global code and one local bit per feature map (method 1)"),
    "single_level": ModelSpec(
        "hier", "one-level baseline: the global code's length, no local code", {"local_weight": 0.0}
    ),
    "single_level_local": ModelSpec(
        "hier", "one-level baseline as long as the local code", {"local_weight": 0.0, "bits": AS_LOCAL}
    ),
    **{
        name: ModelSpec(
            "hier",
            f"{paper}: one-level code at the global code's length",
            {"local_weight": 0.0, "loss": name},
        )
        for name, paper in PEERS.items()
    },
    "dcoh": ModelSpec("dcoh", "h(x) and the learned union / intersection / difference operators (method 2)"),
    "dcoh_no_adv": ModelSpec("dcoh", "DCOH without the adversarial term (the ablation)", {"adv_weight": 0.0}),
    "laso": ModelSpec(
        "laso", "LaSO-style peer (Alfassy et al. 2019): MLP operators on h(x)'s float features"
    ),
}


def check_name(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def model_config(name: str, **overrides) -> TrainConfig:
    """The config of model `name`; `overrides` (a dataset's, a user's) come first, the model's own last."""
    spec = check_name(name)
    fields = {**overrides, **spec.fields}
    if fields.get("bits") == AS_LOCAL:
        del fields["bits"]
        fields["bits"] = TrainConfig(method=spec.method, **fields).conv7_channels
    return TrainConfig(method=spec.method, **fields)


def name_of(cfg: TrainConfig) -> str:
    """The registry's name for a config (the checkpoint folder it trains by default)."""
    if cfg.method == "laso":
        return "laso"
    if cfg.method == "dcoh":
        return "dcoh" if cfg.adv_weight > 0 else "dcoh_no_adv"
    if cfg.local_weight > 0:
        return "hier"
    if cfg.loss != "pairwise":
        return cfg.loss
    return "single_level" if cfg.bits < cfg.conv7_channels else "single_level_local"


def train_command(name: str, dataset: str = DEFAULT) -> str:
    """The command that trains model `name` (on an imported dataset with `--dataset`)."""
    return f"python -m hashdemo train {name}{dataset_flag(dataset)}"


VARIANTS = (  # checkpoint folders beside the registry's names: (suffix pattern, the flags that train one)
    (re.compile(r"^(hier)_h(\d+)$"), "--bits {}"),  # the two-level model at another H
    (re.compile(r"^(\w+?)_seed(\d+)$"), "--seed {}"),  # a full retrain
    (re.compile(r"^(\w+?)_ops(\d+)$"), "--operator-seed {} --h-from checkpoints/{base}"),  # operators alone
    (re.compile(r"^(\w+?)_(\d+)$"), "--bits {}"),  # a one-level code at another length
)


def rebuild_command(name: str) -> str:
    """The command that trains checkpoint folder `name`: a registry name, or a variant of one
    (csq_16, hier_h64, hier_seed1, laso_ops2)."""
    if name in MODELS:
        return train_command(name)
    for pattern, flags in VARIANTS:
        found = pattern.match(name)
        if found and found.group(1) in MODELS:
            base = "dcoh" if found.group(1) == "laso" else found.group(1)
            extra = flags.format(found.group(2), base=base)
            return f"python -m hashdemo train {found.group(1)} {extra} --out checkpoints/{name}"
    return "python -m hashdemo train ..."


def build_model(cfg: TrainConfig) -> HashNet:
    """Backbone by name + the hash heads, untrained."""
    frozen = cfg.frozen_backbone
    return HashNet(cfg.conv7_channels, cfg.bits, cfg.n_classes, backbone=cfg.backbone, frozen_backbone=frozen)


def build_operators(cfg: TrainConfig) -> tuple[CodeOperators | FeatureOperators, CodeDiscriminator | None]:
    """DCOH's operators and discriminator on K-bit codes, or the LaSO-style peer's on C float features
    (no discriminator), untrained."""
    if cfg.method == "laso":
        return FeatureOperators(cfg.conv7_channels, cfg.n_classes), None
    return CodeOperators(cfg.bits), CodeDiscriminator(cfg.bits)
