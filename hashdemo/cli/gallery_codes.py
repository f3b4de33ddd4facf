"""Build gallery codes ahead of time (each with a progress bar; cached, never committed):

python -m hashdemo gallery-codes [--size 100000] [--models hier single_level ...]
    render and encode the large gallery (cached by recipe and checkpoint digests)
python -m hashdemo gallery-codes --million [1000000] [--models hier single_level greedyhash]
        [--worker I --workers N]
    encode a million-image gallery in resumable chunks, memory-mapped in the cache (a killed run goes on
    where it stopped; N workers started with I = 0..N-1 share the chunks)
python -m hashdemo gallery-codes --milvus URI
    put the app's gallery in Milvus (a .db path for milvus-lite, http://host:19530 for a server);
    idempotent, and an interrupted build resumes where it stopped
"""

from __future__ import annotations

import argparse
import logging
import sys

from hashdemo.data.dataset import open_dataset
from hashdemo.model.checkpoints import CheckpointError
from hashdemo.model.device import DeviceError, add_device_option, apply_device_option
from hashdemo.retrieval.gallery_codes import large_gallery_codes
from hashdemo.retrieval.million import MILLION, MILLION_MODELS, encode_million

DEFAULT_MODELS = (
    "hier",
    "single_level",
    "single_level_local",
)  # what `python -m hashdemo evaluate hier` reads


def build_milvus(uri: str) -> int:
    from tqdm import tqdm

    from hashdemo.retrieval.index import GalleryUnavailable
    from hashdemo.service.engine import Engine

    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.setdefault(name, tqdm(total=total, desc=f"Milvus: {name}", unit="code"))
        bar.update(done - bar.n)

    try:
        engine = Engine.load(milvus_uri=uri, milvus_progress=progress)
    except GalleryUnavailable as error:
        print(f"hashdemo: {error}", file=sys.stderr)
        return 2
    for bar in bars.values():
        bar.close()
    names = ", ".join(index.name for index in (engine.global_index, engine.local_index, engine.dcoh_index))
    print(f"Milvus at {uri}: {engine.global_index.ntotal:,} gallery codes in {names}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hashdemo gallery-codes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--milvus", metavar="URI", help="build the app gallery's Milvus collections")
    parser.add_argument("--million", type=int, nargs="?", const=MILLION, metavar="SIZE")
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    add_device_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        apply_device_option(args)
    except DeviceError as error:
        print(f"hashdemo gallery-codes: {error}", file=sys.stderr)
        return 2
    if args.milvus:
        return build_milvus(args.milvus)
    if args.million:
        models = tuple(args.models) if args.models != list(DEFAULT_MODELS) else MILLION_MODELS
        dataset = open_dataset()
        try:
            directory = encode_million(
                dataset,
                models,
                dataset.checkpoints,
                args.million,
                worker=args.worker,
                workers=args.workers,
                progress=True,
            )
        except (ValueError, CheckpointError) as error:
            print(f"hashdemo gallery-codes: {error}", file=sys.stderr)
            return 2
        print(f"{args.million:,} images of {', '.join(models)} under {directory}")
        return 0
    codes, labels, _ = large_gallery_codes(open_dataset(), tuple(args.models), args.size, progress=True)
    print(f"{len(labels):,} images; codes of {', '.join(codes)}")
    return 0
