"""Loading the shipped checkpoints: plain-data dicts read with `torch.load(..., weights_only=True)`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from hashdemo.models import CodeDiscriminator, CodeOperators, HashNet
from hashdemo.train import CHECKPOINT_DIR, TrainConfig


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable; the message names the command that rebuilds it."""


@dataclass(frozen=True)
class Loaded:
    config: TrainConfig
    model: HashNet  # eval mode
    operators: CodeOperators | None  # DCOH only
    discriminator: CodeDiscriminator | None  # DCOH only
    metrics: dict


def train_command(name: str) -> str:
    return {
        "hier": "python -m hashdemo.train hier",
        "single_level": "python -m hashdemo.train hier --single-level",
        "dcoh": "python -m hashdemo.train dcoh",
        "dcoh_no_adv": "python -m hashdemo.train dcoh --no-adv",
    }[name]


def load_checkpoint(name: str, directory: Path = CHECKPOINT_DIR) -> Loaded:
    """Build the networks of checkpoint `name` (hier, single_level, dcoh, dcoh_no_adv) in eval mode."""
    path = directory / name / "model.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is missing: train it with `{train_command(name)}`")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig(**checkpoint["config"])
        model = HashNet(config.conv7_channels, config.bits)
        model.load_state_dict(checkpoint["state"]["model"])
        operators = discriminator = None
        if config.method == "dcoh":
            operators, discriminator = CodeOperators(config.bits), CodeDiscriminator(config.bits)
            operators.load_state_dict(checkpoint["state"]["operators"])
            discriminator.load_state_dict(checkpoint["state"]["discriminator"])
    except Exception as error:  # any unreadable or mismatched file gets the same one-line answer
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}): "
            f"rebuild it with `{train_command(name)}`"
        ) from error
    metrics_path = path.parent / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    for module in (model, operators, discriminator):
        if module is not None:
            module.eval()
    return Loaded(config, model, operators, discriminator, metrics)
