"""Benchmarks. `python -m hashdemo.bench search --json PATH` times top-k Hamming search.

The search bench runs hashdemo's index (numpy path, and the default backend) against
faiss.IndexBinaryFlat in one process on seeded random codes, checks that they agree, prints
a markdown table and writes JSON. One function per subcommand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import faiss
import numpy as np

from hashdemo.index import HammingIndex, pack_bits

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
NBITS = (32, 64, 128)
BATCHES = (1, 100)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` in ms, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _agree(ours: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> dict:
    """Distances equal, and id sets equal per query (ties may only reorder ids)."""
    (d, i), (rd, ri) = ours, ref
    return {
        "distances_equal": bool(np.array_equal(d, rd)),
        "ids_equal": bool(np.array_equal(np.sort(i, axis=1), np.sort(ri, axis=1))),
    }


def run_search_bench(
    sizes: Sequence[int] = SIZES,
    nbits_list: Sequence[int] = NBITS,
    batches: Sequence[int] = BATCHES,
    k: int = 100,
    seed: int = 0,
) -> dict:
    """Time top-k search for each (N, nbits, batch); returns the JSON-ready results."""
    rng = np.random.default_rng(seed)
    # faiss's OpenMP threads stall when other processes hold the cores: record the load.
    load_average = os.getloadavg()[0]
    rows = []
    for n in sizes:
        repeats = 3 if n >= 1_000_000 else 7  # keeps the full bench within a few minutes
        for nbits in nbits_list:
            # Random bytes unpacked are uniform random bits, 8x cheaper to draw.
            db_bits = np.unpackbits(rng.integers(0, 256, (n, nbits // 8), dtype=np.uint8), axis=1)
            numpy_index = HammingIndex(nbits, backend="numpy")
            numpy_index.add(db_bits)
            default_index = HammingIndex(nbits)
            default_index.add(db_bits)
            faiss_index = faiss.IndexBinaryFlat(nbits)
            faiss_index.add(pack_bits(db_bits))
            del db_bits
            for batch in batches:
                q_bits = np.unpackbits(rng.integers(0, 256, (batch, nbits // 8), dtype=np.uint8), axis=1)
                q_packed = pack_bits(q_bits)
                timings = {
                    "numpy_ms": _median_ms(partial(numpy_index.search, q_bits, k), repeats),
                    "default_ms": _median_ms(partial(default_index.search, q_bits, k), repeats),
                    "faiss_ms": _median_ms(partial(faiss_index.search, q_packed, k), repeats),
                }
                ref = faiss_index.search(q_packed, k)
                rows.append(
                    {
                        "n": n,
                        "nbits": nbits,
                        "queries": batch,
                        "k": k,
                        "repeats": repeats,
                        **timings,
                        "numpy_over_faiss": timings["numpy_ms"] / timings["faiss_ms"],
                        "default_over_faiss": timings["default_ms"] / timings["faiss_ms"],
                        "numpy_vs_faiss": _agree(numpy_index.search(q_bits, k), ref),
                        "default_vs_faiss": _agree(default_index.search(q_bits, k), ref),
                    }
                )
    return {
        "bench": "search",
        "seed": seed,
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "cpus": os.cpu_count(),
        "load_average": load_average,
        "rows": rows,
    }


def format_table(result: dict) -> str:
    """The search bench as a markdown table (times in ms, ratio = ours / faiss)."""
    lines = [
        "| N | bits | queries | numpy path | default backend | faiss | numpy/faiss "
        "| default/faiss | same results |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in result["rows"]:
        same = all(
            r[pair][check]
            for pair in ("numpy_vs_faiss", "default_vs_faiss")
            for check in ("distances_equal", "ids_equal")
        )
        lines.append(
            f"| {r['n']:,} | {r['nbits']} | {r['queries']} | {r['numpy_ms']:.2f} "
            f"| {r['default_ms']:.2f} | {r['faiss_ms']:.2f} | {r['numpy_over_faiss']:.2f} "
            f"| {r['default_over_faiss']:.2f} | {'yes' if same else 'NO'} |"
        )
    return "\n".join(lines)


def cmd_search(args: argparse.Namespace) -> None:
    """`search` subcommand: run, print the table, write JSON."""
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)
    result = run_search_bench(sizes=sizes, k=args.k, seed=args.seed)
    print(
        f"top-{args.k} Hamming search, median ms; numpy {result['numpy']}, "
        f"faiss {result['faiss']} ({result['faiss_threads']} threads), {result['cpus']} CPUs, "
        f"load average at start {result['load_average']:.2f}"
    )
    print(format_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hashdemo.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="hashdemo's Hamming index vs faiss IndexBinaryFlat")
    search.add_argument("--json", type=str, default=None, help="write results to this path")
    search.add_argument("--quick", action="store_true", help="N = 10k only (smoke test)")
    search.add_argument("--sizes", type=int, nargs="+", default=None, help="override N values")
    search.add_argument("--k", type=int, default=100, help="results per query")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument(
        "--faiss-threads", type=int, default=0, help="faiss OpenMP threads (default: faiss's own)"
    )
    search.set_defaults(func=cmd_search)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
