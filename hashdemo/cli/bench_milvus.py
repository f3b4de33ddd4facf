"""`python -m hashdemo bench milvus`: the gallery in Milvus against the in-process index, in one run.

For each size (100k real H_g codes of the large gallery, queried by 100 query-split images; 1M seeded
random codes and queries) and each backend (the in-process `HammingIndex`; milvus-lite BIN_FLAT; a
Milvus standalone server with BIN_FLAT and BIN_IVF_FLAT, nprobe swept): build time (insert, flush,
index, load), single-query and batch (100 queries in one call) latency of a top-100 search, and
recall@100 against exact search. Recall counts a hit when its true distance is within the exact 100th
distance, so an arbitrary choice among tied codes is not a miss. Needs requirements-test.txt (milvus).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hashdemo.evaluation.markdown import markdown_table
from hashdemo.retrieval.index import HammingIndex
from hashdemo.storage.files import write_atomic
from hashdemo.timing import median_ms

K = 100
N_QUERIES = 100
NLIST = 1024
NPROBES = (8, 32, 128)


def real_codes(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H_g of the first `size` large-gallery images, their labels, and H_g of 100 query images."""
    from hashdemo.data.dataset import open_dataset
    from hashdemo.model.checkpoints import load_checkpoint
    from hashdemo.retrieval.gallery_codes import large_gallery_codes

    outfits = open_dataset()
    codes, labels, _ = large_gallery_codes(outfits, ("hier",), size, progress=True)
    query = outfits.splits["query"].images[:N_QUERIES]
    return codes["hier"].global_bits, labels, load_checkpoint("hier").model.encode(query).global_bits


def random_codes(size: int, nbits: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    draw = lambda n: np.unpackbits(rng.integers(0, 256, (n, nbits // 8), dtype=np.uint8), axis=1)  # noqa: E731
    return draw(size), np.zeros((size, 10), np.uint8), draw(N_QUERIES)


def recall_at_k(found: list[np.ndarray], exact_kth: np.ndarray, true_dist: np.ndarray) -> float:
    """Mean over queries of |hits whose true distance <= the exact k-th distance| / k."""
    per_query = [np.sum(true_dist[q, ids[:K]] <= exact_kth[q]) / K for q, ids in enumerate(found)]
    return round(float(np.mean(per_query)), 4)


def measure(top_ids, queries: np.ndarray, exact_kth: np.ndarray, true_dist: np.ndarray) -> dict:
    """Latency of `top_ids(query_bits) -> ids per query` (one query per call, and all in one call)
    and its recall@100."""
    cycle = iter(range(10**9))
    single = median_ms(lambda: top_ids(queries[next(cycle) % len(queries)][None]), 30)
    started = time.perf_counter()
    ids = top_ids(queries)
    batch = 1e3 * (time.perf_counter() - started) / len(queries)
    return {
        "single_ms": round(single, 3),
        "batch_ms_per_query": round(batch, 3),
        "recall_at_100": recall_at_k(list(ids), exact_kth, true_dist),
    }


def run_milvus_bench(sizes: tuple[int, ...], seed: int = 0, nprobes: tuple[int, ...] = NPROBES) -> dict:
    from hashdemo.harness.milvus_server import StandaloneServer
    from hashdemo.retrieval.milvus import MilvusGallery

    work = Path(tempfile.mkdtemp(prefix="hashdemo-bench-milvus-"))
    server = StandaloneServer(work / "standalone")
    server.start()
    rows = []
    try:
        lite = MilvusGallery(str(work / "lite.db"), timeout=600)
        remote = MilvusGallery(server.uri, timeout=600)
        for size in sizes:
            for row in size_rows(size, seed, milvus_targets(lite, remote, nprobes)):
                rows.append(row)
                print(row, flush=True)
    finally:
        server.stop()
        server.remove()
    return {"k": K, "queries": N_QUERIES, "seed": seed, "cpus": os.cpu_count(), "rows": rows}


def milvus_targets(lite, remote, nprobes: tuple[int, ...]) -> list[tuple]:
    """Each Milvus backend measured: its label, gallery, index settings, and the search parameters swept."""
    return [
        ("milvus-lite BIN_FLAT", lite, {"index_type": "BIN_FLAT"}, [{}]),
        ("server BIN_FLAT", remote, {"index_type": "BIN_FLAT"}, [{}]),
        (
            f"server BIN_IVF_FLAT nlist {NLIST}",
            remote,
            {"index_type": "BIN_IVF_FLAT", "params": {"nlist": NLIST}},
            [{"nprobe": p} for p in nprobes],
        ),
    ]


def size_rows(size: int, seed: int, targets: list[tuple]):
    """The rows of one gallery size, as each is measured: the in-process index, then every target."""
    real = size <= 100_000
    gallery, labels, queries = real_codes(size) if real else random_codes(size, 32, seed)
    exact = HammingIndex(gallery)
    true_dist = exact.distances(queries)
    truth = (queries, np.sort(true_dist, axis=1)[:, K - 1], true_dist)
    common = {"n": size, "codes": "real H_g" if real else "random", "nbits": gallery.shape[1]}
    started = time.perf_counter()
    HammingIndex(gallery)
    build = time.perf_counter() - started
    yield {
        **common,
        "backend": "in-process (faiss IndexBinaryFlat, 1 thread)",
        "build_s": round(build, 2),
        **measure(lambda q: exact.search(q, K)[1], *truth),
    }
    for target in targets:
        yield from target_rows(common, gallery, labels, target, truth)


def target_rows(common: dict, gallery: np.ndarray, labels: np.ndarray, target: tuple, truth: tuple):
    """One Milvus target: the gallery built in a collection of its own, searched with each of its
    parameter sets (one row each), then dropped."""
    label, where, index_settings, sweeps = target
    name = f"bench_{common['n']}_{index_settings['index_type'].lower()}"
    started = time.perf_counter()
    index = where.ensure(name, gallery, labels, index=index_settings)
    build = time.perf_counter() - started
    for params in sweeps:
        suffix = f", nprobe {params['nprobe']}" if params else ""
        yield {
            **common,
            "backend": label + suffix,
            "build_s": round(build, 2),
            **measure(lambda q, params=params: index.hits(np.packbits(q, axis=1), K, **params)[1], *truth),
        }
    where.call("drop_collection", name)


def format_table(result: dict) -> str:
    header = ["N", "codes", "backend", "build s", "1 query ms", "batch ms/query", "recall@100"]
    peers = {row["n"]: row["single_ms"] for row in result["rows"] if row["backend"].startswith("in-process")}
    keys = ("codes", "backend", "build_s", "single_ms", "batch_ms_per_query", "recall_at_100")
    rows = [
        [f"{row['n']:,}", *(row[key] for key in keys), f"{row['single_ms'] / peers[row['n']]:.1f}x"]
        for row in result["rows"]
    ]
    return markdown_table([*header, "1 query vs in-process"], rows, digits=None)


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "milvus", help="the gallery in Milvus (lite and a server) vs the in-process index"
    )
    parser.add_argument("--json", type=str, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=cmd_milvus)


def cmd_milvus(args: argparse.Namespace) -> None:
    result = run_milvus_bench(tuple(args.sizes), args.seed)
    print(f"top-{K} search, {N_QUERIES} queries, median of 30 single calls, {result['cpus']} CPUs")
    print(format_table(result))
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
