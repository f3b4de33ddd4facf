"""`python -m hashdemo train hier|dcoh [--single-level|--no-adv] [--<config field> V ...]`: train one
shipped model on the outfits and write its checkpoint (config and metrics inside)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from pathlib import Path

import torch

from hashdemo.checkpoints import CHECKPOINT_DIR, save_checkpoint
from hashdemo.config import TrainConfig
from hashdemo.data import load_outfits
from hashdemo.train import METHODS, fit

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hashdemo train", description=__doc__)
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("--single-level", action="store_true", help="hier: train the one-level baseline")
    parser.add_argument("--no-adv", action="store_true", help="dcoh: train without the adversarial term")
    tunable = {f.name for f in fields(TrainConfig)} - {"method", "local_weight", "adv_weight"}
    defaults = TrainConfig()
    for name in sorted(tunable):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default) if default is not None else int)
    parser.add_argument("--out", type=Path, help="output directory (default: checkpoints/NAME)")
    parser.add_argument(
        "--h-from",
        type=Path,
        help="dcoh: take h(x) from this checkpoint directory and train only the operators",
    )
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in tunable if getattr(args, name) is not None}
    if args.single_level:
        overrides["local_weight"] = 0.0
    if args.no_adv:
        overrides["adv_weight"] = 0.0
    cfg = TrainConfig(method=args.method, **overrides)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    h_from = (
        None
        if args.h_from is None
        else torch.load(args.h_from / "model.pt", map_location="cpu", weights_only=True)
    )
    checkpoint = fit(cfg, load_outfits(progress=True), h_from=h_from)
    out = args.out or CHECKPOINT_DIR / cfg.name
    save_checkpoint(checkpoint, out)
    log.info("saved %s (val %s)", out, checkpoint["metrics"]["val"])
