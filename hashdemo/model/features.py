"""A frozen backbone's pooled outputs, computed once and cached: the hash heads then train on them in
seconds to minutes on a CPU, where a pass of a torchvision backbone over the images takes minutes to hours.

The cache is keyed by the dataset's digest, the backbone, its weights' digest and the image size. The
pass writes its result in chunks, so an interrupted pass resumes from the last finished chunk.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hashdemo.data.dataset import Dataset
from hashdemo.data.split import Split
from hashdemo.model.backbones import build_backbone
from hashdemo.model.config import TrainConfig
from hashdemo.model.device import autocast, device_tag, placed, resolve_device
from hashdemo.model.networks import preprocess
from hashdemo.model.weights import BackboneWeights
from hashdemo.storage.files import atomic_file

CHUNK = 512  # images per resumable piece
BATCH = 32  # images per forward pass: a 224-px batch of a ResNet-50 stays well under 1 GB


def features_path(
    dataset: Dataset, cfg: TrainConfig, weights: BackboneWeights, split: str, amp: bool = False
) -> Path:
    tag = device_tag(amp=amp)  # where and at what precision they were computed (CPU float32: none)
    key = f"{dataset.digest}-{cfg.backbone}-{weights.digest}-{cfg.image_size}px-{split}{tag}"
    return dataset.cache / "features" / f"{key}.npy"


def gallery_features_path(dataset: Dataset, cfg: TrainConfig, metrics: dict) -> Path:
    """Where a trained model's frozen backbone's pooled outputs over the gallery are cached: keyed as
    training keys its train and val features, so every model on one backbone and weights shares them."""
    weights = BackboneWeights(None, metrics.get("backbone_weights", "none"))
    return features_path(dataset, cfg, weights, "gallery")


def with_features(
    dataset: Dataset, cfg: TrainConfig, weights: BackboneWeights, progress: bool = True, amp: bool = False
) -> dict[str, Split]:
    """The dataset's splits, train and val carrying the frozen backbone's pooled outputs (N, C), computed
    on the compute device (`amp`: in mixed precision)."""
    backbone = build_backbone(cfg.backbone, cfg.conv7_channels)
    if weights.state is not None:
        backbone.load_state_dict(weights.state)
    splits = dict(dataset.splits)
    for name in ("train", "val"):
        path = features_path(dataset, cfg, weights, name, amp)
        features = pooled_features(backbone, cfg.backbone, splits[name].images, path, progress, amp)
        splits[name] = dataclasses.replace(splits[name], features=features)
    return splits


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as f:
        np.save(f, array)


@torch.no_grad()
def pooled_features(
    backbone: nn.Module, name: str, images: np.ndarray, path: Path, progress: bool = True, amp: bool = False
) -> np.ndarray:
    """The spatial means of `backbone`'s maps for `images`, read from `path` or computed (on the compute
    device, `amp`: in mixed precision) and stored there."""
    if path.is_file():
        return np.load(path)
    pieces = path.with_name(path.name + ".parts")
    pieces.mkdir(parents=True, exist_ok=True)
    starts = range(0, len(images), CHUNK)
    done = sum(min(CHUNK, len(images) - s) for s in starts if (pieces / f"{s:08d}.npy").is_file())
    backbone.eval()
    device = resolve_device()
    with (
        placed(backbone, device),
        tqdm(
            total=len(images), initial=done, unit="img", desc=f"{name} features", disable=not progress
        ) as bar,
    ):
        for start in starts:
            piece = pieces / f"{start:08d}.npy"
            if piece.is_file():
                continue
            pooled = []
            for first in range(start, min(start + CHUNK, len(images)), BATCH):
                batch = images[first : min(first + BATCH, start + CHUNK, len(images))]
                with autocast(device, amp):
                    maps = backbone(preprocess(batch, name).to(device))
                pooled.append(maps.float().mean(dim=(2, 3)).cpu().numpy())
                bar.update(len(batch))
            save_npy(piece, np.concatenate(pooled))
    features = np.concatenate([np.load(pieces / f"{s:08d}.npy") for s in starts])
    save_npy(path, features)
    shutil.rmtree(pieces, ignore_errors=True)
    return features
