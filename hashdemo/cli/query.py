"""Query the shipped models from the command line; prints JSON.

    python -m hashdemo query search IMAGE [--theta 0.4] [--L 16] [--K 200] [--top 10]
    python -m hashdemo query compose IMAGE_A IMAGE_B {union,intersection,difference} [--top 20]
        [--then {union,intersection,difference} --image-c IMAGE_C]

Bad input (not an image, out-of-range parameters, missing checkpoints) gets one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from hashdemo.data.fashion_mnist import DatasetMissingError
from hashdemo.data.images import ImageError
from hashdemo.data.label_ops import OPERATORS
from hashdemo.model.checkpoints import CheckpointError
from hashdemo.retrieval.index import GalleryUnavailable
from hashdemo.service.documents import ranking_rows, search_document
from hashdemo.service.engine import Engine
from hashdemo.service.relevance import DEFAULT_RELEVANCE, RELEVANCE


def run(args: argparse.Namespace) -> dict:
    engine = Engine.load()
    if args.command == "search":
        theta, top_l, n_coarse = engine.check_params(
            engine.defaults["theta"] if args.theta is None else args.theta,
            engine.defaults["L"] if args.L is None else args.L,
            engine.defaults["K"] if args.K is None else args.K,
        )
        image = engine.read_image(args.image)
        result = engine.search(image, theta, top_l, n_coarse, relevance=args.relevance)
        return search_document(engine, result, (theta, top_l, n_coarse), args.top)
    if (args.then is None) != (args.image_c is None):
        raise ValueError("a chain needs both --then OPERATOR and --image-c IMAGE")
    image_c = None if args.image_c is None else engine.read_image(args.image_c)
    result = engine.compose(
        engine.read_image(args.image_a),
        engine.read_image(args.image_b),
        args.operator,
        k=args.top,
        image_c=image_c,
        then=args.then,
    )
    return {
        "operator": args.operator if args.then is None else [args.operator, args.then],
        "predicted_labels": engine.label_text(result.predicted_probs > 0.5),
        "results": ranking_rows(engine, result.composed, args.top, "is_the_target_set"),
        "bitwise": ranking_rows(engine, result.bitwise, args.top, "is_the_target_set"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hashdemo query",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="two-level search with CAM-selected bits")
    search.add_argument("image")
    search.add_argument("--theta", type=float)
    search.add_argument("--L", type=int)
    search.add_argument("--K", type=int)
    search.add_argument("--top", type=int, default=10)
    search.add_argument(
        "--relevance",
        choices=[name for name in RELEVANCE if name != "boxed"],  # the command line takes no box
        default=DEFAULT_RELEVANCE,
        help="what makes a result relevant in the figures (default: shares a label)",
    )
    compose = sub.add_parser("compose", help="DCOH: compose two images' codes with an operator")
    compose.add_argument("image_a")
    compose.add_argument("image_b")
    compose.add_argument("operator", choices=OPERATORS)
    compose.add_argument("--then", choices=OPERATORS, help="chain: (A op B) THEN C, with --image-c")
    compose.add_argument("--image-c", help="the third image of a chain")
    compose.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be at least 1")
    try:
        print(json.dumps(run(args), indent=2))
    except (ImageError, ValueError, CheckpointError, DatasetMissingError, GalleryUnavailable) as error:
        print(f"hashdemo: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
