"""`python -m hashdemo train MODEL [--dataset NAME] [--<config field> V ...]`: train one model and write
its checkpoint (config and metrics inside). MODEL is a name of the model registry
(hashdemo/model/registry.py; `--help` lists them); the outfits are the default dataset, `--dataset NAME`
trains on an imported folder. `--backbone NAME` picks the backbone: a torchvision one starts from
`--weights imagenet|FILE|none` and stays frozen unless `--finetune` (the heads train on its features,
computed once and cached).

The whole training state is saved after every epoch (`progress.pt` in the output directory): an
interrupted run, started again with the same options, goes on from its last finished epoch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from pathlib import Path

import torch

from hashdemo.data.dataset import OUTFITS, open_dataset
from hashdemo.data.imported import DatasetError
from hashdemo.model.backbones import BACKBONES
from hashdemo.model.checkpoints import CheckpointError, save_checkpoint
from hashdemo.model.config import TrainConfig
from hashdemo.model.device import DeviceError, add_device_option, apply_device_option
from hashdemo.model.features import with_features
from hashdemo.model.registry import MODELS, model_config, name_of
from hashdemo.model.weights import WeightsError, backbone_weights
from hashdemo.training.loop import fit

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashdemo train", description=__doc__)
    parser.add_argument(
        "model",
        choices=list(MODELS),
        help="; ".join(f"{name}: {spec.summary}" for name, spec in MODELS.items()),
    )
    parser.add_argument("--single-level", action="store_true", help="hier: the one-level baseline (H bits)")
    parser.add_argument("--no-adv", action="store_true", help="dcoh: train without the adversarial term")
    add_device_option(parser)
    parser.add_argument(
        "--amp-features", action="store_true", help="a frozen backbone's feature pass in mixed precision"
    )
    tunable = {f.name for f in fields(TrainConfig)} - {"method", "local_weight", "n_classes"}
    defaults = TrainConfig()
    helps = {
        "backbone": "; ".join(f"{name}: {spec.summary}" for name, spec in BACKBONES.items()),
        "weights": "a torchvision backbone's start: imagenet (the default, through torchvision's weights "
        "API; HASHDEMO_OFFLINE=1 forbids the download), a state dict FILE, or none",
        "finetune": "train a torchvision backbone too (default: frozen: the heads train on its features)",
    }
    for name in sorted(tunable):
        default, flag = getattr(defaults, name), f"--{name.replace('_', '-')}"
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", default=None, help=helps.get(name))
        else:
            kind = type(default) if default is not None else int
            parser.add_argument(flag, type=kind, help=helps.get(name))
    parser.add_argument(
        "--out",
        type=Path,
        help="output directory (default: checkpoints/NAME; for an "
        "imported dataset, $HASHDEMO_CACHE_DIR/datasets/DATASET/checkpoints/NAME)",
    )
    parser.add_argument(
        "--h-from",
        type=Path,
        help="dcoh: take h(x) from this checkpoint directory and train only the operators",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return train(args, tunable)
    except (DatasetError, CheckpointError, WeightsError, DeviceError, ValueError, OSError) as error:
        print(f"hashdemo train: {error}", file=sys.stderr)
        return 2


def train(args: argparse.Namespace, tunable: set[str]) -> int:
    apply_device_option(args)
    overrides = {name: getattr(args, name) for name in tunable if getattr(args, name) is not None}
    if args.single_level:
        overrides["local_weight"] = 0.0
    if args.no_adv:
        overrides["adv_weight"] = 0.0
    dataset = open_dataset(overrides.get("dataset", OUTFITS))
    if not dataset.kind.shipped:  # an imported set: its classes and size decide the model's shape
        overrides.update(n_classes=len(dataset.classes), image_size=dataset.image_size)
    cfg = model_config(args.model, **overrides)
    splits, checkpoints = dataset.splits, dataset.checkpoints
    h_from = (
        None
        if args.h_from is None
        else torch.load(args.h_from / "model.pt", map_location="cpu", weights_only=True)
    )
    weights = backbone_weights(cfg.backbone, cfg.weights, cfg.seed)
    if cfg.frozen_backbone:
        splits = with_features(dataset, cfg, weights, amp=args.amp_features)
    out = args.out or checkpoints / name_of(cfg)
    out.mkdir(parents=True, exist_ok=True)
    progress = out / "progress.pt"  # the whole training state after the last finished epoch
    checkpoint = fit(cfg, splits, h_from=h_from, resume_path=progress, backbone_state=weights.state)
    checkpoint["metrics"]["backbone_weights"] = weights.digest
    save_checkpoint(checkpoint, out)
    progress.unlink(missing_ok=True)
    log.info("saved %s (val %s)", out, checkpoint["metrics"]["val"])
    return 0
