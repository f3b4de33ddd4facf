"""`python -m hashdemo.gallery_codes [--size 100000] [--models hier single_level ...]`: render and encode the
large gallery once (a progress bar; cached by recipe and checkpoint digests; never committed)."""

from __future__ import annotations

import argparse
import logging

from hashdemo.gallery_codes import large_gallery_codes

DEFAULT_MODELS = (
    "hier",
    "single_level",
    "single_level_local",
)  # what `python -m hashdemo.evaluate hier` reads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hashdemo.gallery_codes", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    codes, labels, _ = large_gallery_codes(tuple(args.models), args.size, progress=True)
    print(f"{len(labels):,} images; codes of {', '.join(codes)}")
    return 0
