"""`python -m hashdemo data [--describe] [--montage PATH] [--<recipe field> V ...]`: build the outfit splits,
describe them, draw a montage."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

from hashdemo.data import imported as datasets
from hashdemo.data.fashion_mnist import CLASS_NAMES, DatasetMissingError
from hashdemo.data.field_sets import CIFAR_PROTOCOLS, ImportOptions
from hashdemo.data.kinds import IMPORTABLE, KINDS, read_source
from hashdemo.data.outfits import OutfitRecipe, describe, load_outfits

logger = logging.getLogger(__name__)


DATASET_VERBS = ("import", "describe", "export-outfits")


def dataset_main(argv: list[str]) -> int:
    """`data import NAME ...`, `data describe NAME`, `data export-outfits DIR` (your own images)."""
    parser = argparse.ArgumentParser(
        prog="python -m hashdemo data",
        description=datasets.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    load = sub.add_parser(
        "import",
        help="import a data set into the cache",
        description="kinds: " + "; ".join(f"{k.name}: {k.about}" for k in KINDS.values() if k.read),
    )
    load.add_argument("name")
    load.add_argument("--from", dest="kind", default="folder", choices=IMPORTABLE, help="the set's kind")
    load.add_argument(
        "--csv", type=Path, help="folder: CSV with the columns path,labels (labels joined by '|')"
    )
    load.add_argument("--list", type=Path, help="folder: DeepHash-pytorch list: path b_1 ... b_C per line")
    load.add_argument("--classes", type=Path, help="folder, lists: the class names, one a line")
    load.add_argument("--root", type=Path, help="the set's folder (folder: default the CSV's or list's)")
    load.add_argument(
        "--images", type=Path, help="lists: the folder the paths are relative to (default --root)"
    )
    load.add_argument("--protocol", choices=CIFAR_PROTOCOLS, help="cifar10: DeepHash-pytorch's protocol")
    load.add_argument(
        "--cutoff", help="the mAP cut-off, a number or 'all' (default: the field's for the set)"
    )
    load.add_argument("--query-size", type=int, help="coco: query images (default 5000)")
    load.add_argument("--train-size", type=int, help="coco: train images (default 10000)")
    load.add_argument("--download", action="store_true", help="cifar10, voc2007: download with torchvision")
    load.add_argument(
        "--size", type=int, default=64, help="image side in pixels, 16-448 (default 64; for ImageNet: 224)"
    )
    show = sub.add_parser("describe", help="print an imported dataset's summary JSON")
    show.add_argument("name")
    export = sub.add_parser("export-outfits", help="write outfit images and labels.csv (the worked example)")
    export.add_argument("directory", type=Path)
    export.add_argument("--count", type=int, default=3000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.verb == "import":
            datasets.dataset_dir(args.name)  # the name is checked before any file is read
            options = ImportOptions(
                args.root,
                args.csv,
                args.list,
                args.classes,
                args.images,
                args.protocol,
                args.cutoff,
                args.query_size,
                args.train_size,
                args.download,
                args.name,
            )
            source = read_source(args.kind, options)
            meta = datasets.import_source(args.name, source, args.size, progress=sys.stderr.isatty())
            print(
                json.dumps(
                    {
                        "name": meta["name"],
                        "splits": meta["splits"],
                        "classes": meta["classes"],
                        "kind": meta["kind"],
                        "cutoff": meta["cutoff"],
                        "counts": meta["counts"],
                        "bad_rows_skipped": len(meta["bad_rows"]),
                    },
                    indent=2,
                )
            )
        elif args.verb == "describe":
            print(json.dumps(datasets.describe_dataset(datasets.load_dataset(args.name)), indent=2))
        else:
            print(f"wrote {datasets.export_outfits(args.directory, args.count)}")
    except (datasets.DatasetError, DatasetMissingError) as error:
        print(f"hashdemo data {args.verb}: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m hashdemo data [--describe] [--montage PATH] [--<recipe field> V ...]``, or one of
    the dataset verbs (`import`, `describe NAME`, `export-outfits`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DATASET_VERBS:
        return dataset_main(argv)
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
        from hashdemo.evaluation.figures import save_montage  # here: it loads torch; an import needs none

        save_montage(splits["gallery"], CLASS_NAMES, args.montage)
        logger.info("montage written to %s", args.montage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
