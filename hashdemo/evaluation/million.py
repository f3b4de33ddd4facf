"""Method 1 against a million real gallery codes (`hashdemo.retrieval.million`; docs/results.md, "A real
million"): map@100 of every code the million holds, K chosen by a rule fixed before the query split is
scored, and ms per query on those codes (and on ten million modelled from them).

The K rule: the smallest K of K_GRID whose hier_cam val map@100 (the first 500 val queries against the
million) is within K_TIE of the best; the query split plays no part in it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

from hashdemo.evaluation.objects import ObjectQueries
from hashdemo.evaluation.speed import TOP, Gallery, median_ms_interleaved
from hashdemo.model.cam import attend_code
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.metrics import map_of_ranked_labels
from hashdemo.retrieval.million import MillionCodes
from hashdemo.retrieval.protocol import VAL_QUERIES

log = logging.getLogger(__name__)
K_GRID = (100, 300, 1_000, 3_000, 10_000)
K_TIE = 0.005
RANDOM_DRAWS = 5
TIMED_QUERIES = 200
BATCH = 64
MODELLED_COPIES = 10  # ten million codes modelled from the real million
MODELLED_FLIP = 0.02  # each copy's bits flipped with this probability (seeded), so copies are not equal


@dataclass(frozen=True)
class MillionIndexes:
    """The million's indexes: the two-level model's codes (the global one searched by multi-index
    hashing and, as its peer, by a scan), and each one-level model's code."""

    global_mih: HammingIndex
    global_scan: HammingIndex
    local: HammingIndex
    one_level: dict[str, HammingIndex]

    @classmethod
    def of(cls, codes: MillionCodes, bits: tuple[int, int], one_level_bits: dict[str, int]) -> MillionIndexes:
        return cls.from_packed(codes.packed, bits, one_level_bits)

    @classmethod
    def from_packed(
        cls,
        packed: dict[str, np.ndarray],
        bits: tuple[int, int],
        one_level_bits: dict[str, int] | None = None,
    ) -> MillionIndexes:
        """Indexes over packed codes by "<model>.global|local" (the million's, or modelled from them)."""
        h, c = bits
        global_bits = np.asarray(packed["hier.global"])
        return cls(
            HammingIndex.from_packed(global_bits, h, multi_index=True),
            HammingIndex.from_packed(global_bits, h, multi_index=False),
            HammingIndex.from_packed(np.asarray(packed["hier.local"]), c),
            {
                name: HammingIndex.from_packed(np.asarray(packed[f"{name}.global"]), nbits)
                for name, nbits in (one_level_bits or {}).items()
            },
        )

    @property
    def n(self) -> int:
        return self.local.ntotal

    def gallery(self) -> Gallery:
        """The scale rows' view of these indexes: the global code as the index's rule searches it (multi-
        index hashing from a million codes up) and the local code."""
        return Gallery(self.global_mih, self.local)


def two_level_top(indexes: MillionIndexes, query: Encoded, selected: np.ndarray, n_coarse: int) -> np.ndarray:
    return hierarchical_search(
        indexes.global_mih, indexes.local, query.global_bits, query.local_bits, selected, n_coarse
    )[0][:, :TOP]


def scores(ranked: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, objects: dict) -> dict:
    """map@100 under shares a label, exact label set and each object protocol, from the results' labels."""
    labels = np.where((ranked >= 0)[..., None], g_labels[np.maximum(ranked, 0)], 0)
    one_hot = np.eye(g_labels.shape[1], dtype=np.uint8)
    return {
        "map@100": map_of_ranked_labels(labels, q_labels),
        "map_exact@100": map_of_ranked_labels(labels, q_labels, exact=True),
        **{
            f"{name}_map@100": map_of_ranked_labels(labels[o.ids], one_hot[o.classes])
            for name, o in objects.items()
        },
    }


def choose_k(
    indexes: MillionIndexes, val: Encoded, val_selected: np.ndarray, val_labels: np.ndarray, g_labels
) -> dict:
    """The K rule on val (see the module's doc): each K's val map@100 and the K it picks."""
    q = np.arange(min(VAL_QUERIES, len(val_labels)))
    grid = {}
    for k in K_GRID:
        ranked = two_level_top(indexes, val.take(q), val_selected[q], k)
        grid[str(k)] = scores(ranked, val_labels[q], g_labels, {})["map@100"]  # str keys, as in the JSON
        log.info("million: val map@100 at K = %d: %.4f", k, grid[str(k)])
    best = max(grid.values())
    chosen = min(int(k) for k, score in grid.items() if score >= best - K_TIE)
    return {"rule": f"the smallest K within {K_TIE} of the best val map@100", "val": grid, "K": chosen}


def million_accuracy(
    indexes: MillionIndexes,
    query: Encoded,
    one_level: dict[str, np.ndarray],
    selected: np.ndarray,
    n_coarse: int,
    q_labels: np.ndarray,
    codes: MillionCodes,
    objects: dict[str, ObjectQueries],
) -> dict:
    """Every method's map@100 rows against the million, hier_random over RANDOM_DRAWS draws."""
    g_labels = np.asarray(codes.labels)
    channels, top_l = query.local_bits.shape[1], selected.shape[1]
    rankings = {
        "global": indexes.global_mih.search(query.global_bits, TOP)[1],
        "local_full": indexes.local.search(query.local_bits, TOP)[1],
        "hier_cam": two_level_top(indexes, query, selected, n_coarse),
        **{name: index.search(one_level[name], TOP)[1] for name, index in indexes.one_level.items()},
    }
    methods = {name: scores(ranked, q_labels, g_labels, objects) for name, ranked in rankings.items()}
    draws = []
    for seed in range(RANDOM_DRAWS):
        rng = np.random.default_rng(seed)
        random_bits = np.argsort(rng.random((len(q_labels), channels)), axis=1)[:, :top_l]
        draws.append(
            scores(two_level_top(indexes, query, random_bits, n_coarse), q_labels, g_labels, objects)
        )
    methods["hier_random"] = {
        **{key: float(np.mean([d[key] for d in draws])) for key in draws[0]},
        **{f"{key}_std": float(np.std([d[key] for d in draws])) for key in draws[0]},
    }
    return methods


def k_tradeoff(
    indexes: MillionIndexes,
    query: Encoded,
    selected: np.ndarray,
    q_labels: np.ndarray,
    g_labels: np.ndarray,
    timed: dict[int, float],
    full_ms: float,
) -> list[dict]:
    """Per K: the query split's map@100 at the million and the two-level time over the full scan's."""
    return [
        {
            "K": k,
            "map@100": scores(two_level_top(indexes, query, selected, k), q_labels, g_labels, {})["map@100"],
            "ms_per_query": timed[k],
            "over_local_full": round(timed[k] / full_ms, 3),
        }
        for k in K_GRID
    ]


def modelled_gallery(
    codes: MillionCodes, copies: int = MODELLED_COPIES, seed: int = 0
) -> dict[str, np.ndarray]:
    """`copies` x the million's packed two-level codes, each copy but the first with every bit flipped
    with probability MODELLED_FLIP: a gallery that clusters as the real codes do."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in ("hier.global", "hier.local"):
        real = np.asarray(codes.packed[key])
        parts = [real]
        for _ in range(copies - 1):
            noise = np.packbits(
                rng.random((len(real), 8 * real.shape[1]), dtype=np.float32) < MODELLED_FLIP, axis=1
            )
            parts.append(real ^ noise)
        out[key] = np.concatenate(parts)
    return out


def speed_searches(
    weights: np.ndarray,
    query: Encoded,
    indexes: tuple[HammingIndex, HammingIndex, HammingIndex],
    theta: float,
    top_l: int,
    ks: tuple[int, ...],
) -> dict[str, Callable[[int], object]]:
    """One query's top 100 by each way of searching: the full local scan, the coarse step alone (multi-
    index hashing, scan), and the two-level search with attention (coarse by either) at each K."""
    mih, scan, local = indexes

    def cam(i: int) -> np.ndarray:
        return attend_code(query.conv7[i], weights, query.global_bits[i], theta, top_l).selected[None]

    def two_level(coarse: HammingIndex, k: int) -> Callable[[int], object]:
        return lambda i: hierarchical_search(
            coarse, local, query.global_bits[i : i + 1], query.local_bits[i : i + 1], cam(i), k
        )[0][:, :TOP]

    found = {
        "local_full": lambda i: local.search(query.local_bits[i : i + 1], TOP),
        "attention": cam,
    }
    for k in ks:
        found[f"coarse_mih@{k}"] = lambda i, k=k: mih.search(query.global_bits[i : i + 1], k)
        found[f"coarse_scan@{k}"] = lambda i, k=k: scan.search(query.global_bits[i : i + 1], k)
        found[f"hier_cam@{k}"] = two_level(mih, k)
        found[f"hier_cam_scan@{k}"] = two_level(scan, k)
    return found


def batch_ms(searches: dict[str, Callable], query: Encoded, weights, theta, top_l, indexes, k: int) -> dict:
    """ms per query when BATCH queries are searched together (the attention still one at a time)."""
    mih, scan, local = indexes
    rows = slice(0, BATCH)
    selected = np.stack(
        [
            attend_code(query.conv7[i], weights, query.global_bits[i], theta, top_l).selected
            for i in range(BATCH)
        ]
    )

    def timed(run: Callable[[], object]) -> float:
        run()
        started = time.perf_counter()
        run()
        return round(1e3 * (time.perf_counter() - started) / BATCH, 4)

    def attention() -> None:
        for i in range(BATCH):
            attend_code(query.conv7[i], weights, query.global_bits[i], theta, top_l)

    attention_ms = timed(attention)
    out = {"local_full": timed(lambda: local.search(query.local_bits[rows], TOP))}
    for name, coarse in (("hier_cam", mih), ("hier_cam_scan", scan)):
        search = timed(
            lambda coarse=coarse: hierarchical_search(
                coarse, local, query.global_bits[rows], query.local_bits[rows], selected, k
            )
        )
        out[name] = round(search + attention_ms, 4)
    out["attention"] = attention_ms
    return out


def speed_at(
    gallery: MillionIndexes,
    weights: np.ndarray,
    query: Encoded,
    theta: float,
    top_l: int,
    k: int,
    codes_kind: str,
    ks: tuple[int, ...] = K_GRID,
) -> list[dict]:
    """ms per query at one gallery, one thread and all threads, single queries and batches of BATCH;
    every row with its ratio to the full local scan measured in the same run."""
    indexes = (gallery.global_mih, gallery.global_scan, gallery.local)
    n = gallery.n
    rows = []
    threads_all = os.cpu_count() or 1  # faiss's own count reads back the one thread the index set
    for threads in dict.fromkeys((1, threads_all)):
        faiss.omp_set_num_threads(threads)
        searches = speed_searches(weights, query, indexes, theta, top_l, ks)
        single = median_ms_interleaved(searches, min(TIMED_QUERIES, len(query.global_bits)))
        batch = batch_ms(searches, query, weights, theta, top_l, indexes, k)
        for mode, timed in (("single", single), (f"batch of {BATCH}", batch)):
            full = timed["local_full"]
            for method, ms in timed.items():
                rows.append(
                    {
                        "n": n,
                        "codes": codes_kind,
                        "threads": threads,
                        "mode": mode,
                        "method": method,
                        "ms_per_query": ms,
                        "over_local_full": round(ms / full, 3),
                    }
                )
    faiss.omp_set_num_threads(1)
    log.info("million speed at %d codes (%s) done", n, codes_kind)
    return rows


def bytes_read(h: int, c: int, top_l: int, k: int, n: int) -> dict:
    """What one query reads: bits compared (H per image, L for each candidate) and bytes loaded (H/8 per
    image and the whole C/8 of each candidate's local code), against the full scan's C/8 per image."""
    compared = h + top_l * min(k, n) / n
    loaded = n * h / 8 + min(k, n) * c / 8
    return {
        "bits_compared_per_image": round(compared, 3),
        "bytes_read_per_query": int(loaded),
        "full_scan_bytes": n * c // 8,
        "bytes_ratio": round(loaded / (n * c / 8), 4),  # the floor on the time ratio if time follows bytes
    }
