"""`python -m hashdemo bench million`: the two-level search on the million real gallery codes (and ten
million modelled from them) against a full scan of the local code (faiss `IndexBinaryFlat`), measured
in the same run: single queries and batches, one thread and all threads, the coarse step by multi-index
hashing and by a scan. theta, L and K are the evaluation's (`checkpoints/hier/metrics.json`, K by its
val rule); run `python -m hashdemo gallery-codes --million` first."""

from __future__ import annotations

import argparse
import json
import sys

from hashdemo.data.dataset import open_dataset
from hashdemo.evaluation import million as million_eval
from hashdemo.evaluation.tables import speed_table
from hashdemo.model.checkpoints import CheckpointError, load_checkpoint
from hashdemo.retrieval.million import MILLION, MILLION_MODELS, MillionIncomplete, load_million
from hashdemo.storage.files import write_atomic


def add_parser(sub) -> None:
    bench = sub.add_parser("million", help="the two-level search on a million real codes vs a full scan")
    bench.add_argument("--json", type=str, default=None)
    bench.add_argument("--size", type=int, default=MILLION)
    bench.add_argument("--no-modelled", action="store_true", help="skip the ten million modelled codes")
    bench.set_defaults(func=cmd_million)


def run(size: int = MILLION, modelled: bool = True) -> dict:
    dataset = open_dataset()
    hier = load_checkpoint("hier", dataset.checkpoints)
    tested = hier.metrics.get("test", {})
    theta, top_l = tested.get("theta", 0.4), tested.get("L", 32)
    k = tested.get("million", {}).get("K_rule", {}).get("K", 1000)
    codes = load_million(dataset, MILLION_MODELS, dataset.checkpoints, size)
    query = hier.model.encode(dataset.splits["query"].images, with_conv7=True)
    weights = hier.model.cam_weights().numpy()
    bits = (query.global_bits.shape[1], query.local_bits.shape[1])
    galleries = {"real": million_eval.MillionIndexes.of(codes, bits, {})}
    if modelled:
        packed = million_eval.modelled_gallery(codes)
        galleries["modelled from real codes"] = million_eval.MillionIndexes.from_packed(packed, bits)
    rows = []
    for kind, gallery in galleries.items():
        rows += million_eval.speed_at(gallery, weights, query, theta, top_l, k, kind, ks=(k,))
    return {"bench": "million", "theta": theta, "L": top_l, "K": k, "rows": rows}


def format_table(result: dict) -> str:
    return f"theta={result['theta']} L={result['L']} K={result['K']:,}\n\n" + speed_table(result["rows"])


def cmd_million(args: argparse.Namespace) -> None:
    try:
        result = run(args.size, not args.no_modelled)
    except (MillionIncomplete, CheckpointError) as error:
        print(f"hashdemo bench million: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
    print(format_table(result))
