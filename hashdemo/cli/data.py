"""`python -m hashdemo data [--describe] [--montage PATH] [--<recipe field> V ...]`: build the outfit splits,
describe them, draw a montage."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import fields

import cv2
import numpy as np
import torch
from torchvision.utils import make_grid

from hashdemo.app.pictures import captioned
from hashdemo.data import DatasetMissingError, OutfitRecipe, Split, describe, label_text, load_outfits

logger = logging.getLogger(__name__)


def save_montage(split: Split, path: str | os.PathLike, rows: int = 4, cols: int = 8) -> None:
    """Write a PNG grid of the first rows*cols images of `split`, each captioned with its labels."""
    tiles = [
        captioned(split.images[i], label_text(split.labels[i]).split(", "), n_lines=3)
        for i in range(min(rows * cols, len(split)))
    ]
    batch = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)  # (N, 3, h, w) uint8
    grid = make_grid(batch, nrow=cols, padding=6, pad_value=255).permute(1, 2, 0).numpy()
    cv2.imwrite(str(path), np.ascontiguousarray(grid[..., ::-1]))


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m hashdemo data [--describe] [--montage PATH] [--<recipe field> V ...]``."""
    parser = argparse.ArgumentParser(prog="python -m hashdemo data", description=__doc__)
    parser.add_argument("--describe", action="store_true", help="print the split summary JSON")
    parser.add_argument("--montage", metavar="PATH", help="write a labelled PNG grid of gallery")
    parser.add_argument(
        "--cache-dir", help="cache directory (default $HASHDEMO_CACHE_DIR or ~/.cache/hashdemo)"
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    defaults = OutfitRecipe()
    for f in fields(OutfitRecipe):
        if f.name != "version":
            value = getattr(defaults, f.name)
            parser.add_argument(
                f"--{f.name.replace('_', '-')}",
                type=type(value),
                default=value,
                help=f"recipe field (default {value})",
            )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        recipe = OutfitRecipe(
            **{f.name: getattr(args, f.name) for f in fields(OutfitRecipe) if f.name != "version"}
        )
        splits = load_outfits(recipe, cache_dir=args.cache_dir, progress=args.progress)
    except (DatasetMissingError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    if args.describe:
        print(json.dumps(describe(splits), indent=2))
    if args.montage:
        save_montage(splits["gallery"], args.montage)
        logger.info("montage written to %s", args.montage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
