"""`python -m hashdemo train MODEL [--dataset NAME] [--<config field> V ...]`: train one model and write
its checkpoint (config and metrics inside). MODEL is hier, single_level, single_level_local, dcoh or
dcoh_no_adv; the outfits are the default dataset, `--dataset NAME` trains on an imported folder.

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

from hashdemo.data.imported import DatasetError, dataset_dir, load_dataset
from hashdemo.data.outfits import load_outfits
from hashdemo.model.checkpoints import CheckpointError, save_checkpoint
from hashdemo.model.config import TrainConfig
from hashdemo.storage.locations import CHECKPOINT_DIR
from hashdemo.training.loop import fit

log = logging.getLogger(__name__)


MODELS = {  # a model's name: (method, the config fields that make it)
    "hier": ("hier", {}),
    "single_level": ("hier", {"local_weight": 0.0}),
    "single_level_local": ("hier", {"local_weight": 0.0, "bits": 256}),
    "dcoh": ("dcoh", {}),
    "dcoh_no_adv": ("dcoh", {"adv_weight": 0.0}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashdemo train", description=__doc__)
    parser.add_argument("model", choices=list(MODELS), help="what to train (hier, dcoh and their baselines)")
    parser.add_argument("--single-level", action="store_true", help="hier: the one-level baseline (H bits)")
    parser.add_argument("--no-adv", action="store_true", help="dcoh: train without the adversarial term")
    tunable = {f.name for f in fields(TrainConfig)} - {"method", "local_weight", "n_classes"}
    defaults = TrainConfig()
    for name in sorted(tunable):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default) if default is not None else int)
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
    except (DatasetError, CheckpointError, ValueError, OSError) as error:
        print(f"hashdemo train: {error}", file=sys.stderr)
        return 2


def train(args: argparse.Namespace, tunable: set[str]) -> int:
    method, fixed = MODELS[args.model]
    overrides = {name: getattr(args, name) for name in tunable if getattr(args, name) is not None}
    overrides.update(fixed)
    if args.single_level:
        overrides["local_weight"] = 0.0
    if args.no_adv:
        overrides["adv_weight"] = 0.0
    if overrides.get("dataset", "outfits") == "outfits":
        splits, checkpoints = load_outfits(progress=True), CHECKPOINT_DIR
    else:
        dataset = load_dataset(overrides["dataset"])
        splits, checkpoints = dataset.splits, dataset_dir(dataset.name) / "checkpoints"
        overrides.update(n_classes=len(dataset.classes), image_size=dataset.meta["size"])
    cfg = TrainConfig(method=method, **overrides)
    h_from = (
        None
        if args.h_from is None
        else torch.load(args.h_from / "model.pt", map_location="cpu", weights_only=True)
    )
    out = args.out or checkpoints / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    progress = out / "progress.pt"  # the whole training state after the last finished epoch
    checkpoint = fit(cfg, splits, h_from=h_from, resume_path=progress)
    save_checkpoint(checkpoint, out)
    progress.unlink(missing_ok=True)
    log.info("saved %s (val %s)", out, checkpoint["metrics"]["val"])
    return 0
