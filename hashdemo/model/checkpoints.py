"""Saving and loading checkpoints: plain-data dicts read with `torch.load(..., weights_only=True)`.

`checkpoints/MANIFEST.json` records each model.pt's sha256; a missing, altered, unreadable or
wrong-format checkpoint is refused with one line naming the file and the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from hashdemo.model.config import TrainConfig
from hashdemo.model.laso import FeatureOperators
from hashdemo.model.networks import CodeDiscriminator, CodeOperators, HashNet
from hashdemo.model.registry import OPERATOR_METHODS, build_model, build_operators, rebuild_command
from hashdemo.storage.files import write_atomic
from hashdemo.storage.locations import CHECKPOINT_DIR

CHECKPOINT_FORMAT = 1  # bumped when the checkpoint's layout changes
MANIFEST = "MANIFEST.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unusable; the message names the command that rebuilds it."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its config, networks in eval mode, and metrics."""

    config: TrainConfig
    model: HashNet  # eval mode
    operators: CodeOperators | FeatureOperators | None  # DCOH's on codes, the LaSO-style peer's on features
    discriminator: CodeDiscriminator | None  # DCOH only
    metrics: dict


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(checkpoint: dict, directory: Path) -> None:
    """model.pt with config.json and metrics.json beside it, and its sha256 in the parent's manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "model.pt"
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomic(model_path, buffer.getvalue())
    write_atomic(directory / "config.json", json.dumps(checkpoint["config"], indent=2) + "\n")
    write_atomic(directory / "metrics.json", json.dumps(checkpoint["metrics"], indent=2) + "\n")
    manifest_path = directory.parent / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest[directory.name] = {
        "file": f"{directory.name}/model.pt",
        "sha256": sha256_of(model_path),
        "format": CHECKPOINT_FORMAT,
    }
    write_atomic(manifest_path, json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


def load_checkpoint(name: str, directory: Path = CHECKPOINT_DIR) -> Checkpoint:
    """Build the networks of checkpoint `name` (any model of `hashdemo.model.registry.MODELS`, or a
    variant folder such as `hier_seed1`) in eval mode."""
    path = directory / name / "model.pt"
    rebuild = f"rebuild it with `{rebuild_command(name)}`"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is missing: {rebuild}")
    manifest_path = directory / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if name not in manifest or manifest[name]["sha256"] != sha256_of(path):
        raise CheckpointError(f"checkpoint {path} does not match the sha256 in {manifest_path}: {rebuild}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {checkpoint.get('format')}, expected {CHECKPOINT_FORMAT}")
        config = TrainConfig(**checkpoint["config"])
        model = build_model(config)
        model.load_state_dict(checkpoint["state"]["model"])
        operators = discriminator = None
        if config.method in OPERATOR_METHODS:
            operators, discriminator = build_operators(config)
            operators.load_state_dict(checkpoint["state"]["operators"])
            if discriminator is not None:
                discriminator.load_state_dict(checkpoint["state"]["discriminator"])
    except Exception as error:  # any unreadable or mismatched file gets the same one-line answer
        raise CheckpointError(
            f"checkpoint {path} is unusable ({type(error).__name__}: {error}): {rebuild}"
        ) from error
    metrics_path = path.parent / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    for module in (model, operators, discriminator):
        if module is not None:
            module.eval()
    return Checkpoint(config, model, operators, discriminator, metrics)
