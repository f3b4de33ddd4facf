"""Milliseconds per query against the gallery's size, and the attention's own time.

Every method is timed at 10k and 100k real codes; at 1M on the million real codes where they are
encoded (`hashdemo.retrieval.million`), at 10M on codes modelled from them, and only where those are
missing on uniform random codes, which are multi-index hashing's best case (real codes cluster, and the
coarse step's cost depends on it): such rows say `"codes": "uniform"`. Each figure is the median of
single queries, all methods timed in the same run. The two-level methods' time includes their bit
selection (the whole attention for hier_cam); the local code is read only for the K candidates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hashdemo.evaluation.codes import Codes
from hashdemo.model.cam import attend_code
from hashdemo.retrieval.index import HammingIndex, hierarchical_search

log = logging.getLogger(__name__)
SCALE_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
EVERY_METHOD_UP_TO = 1_000_000  # beyond this only PLOTTED (the single-level and float copies cost GBs)
PLOTTED = ("global", "local_full", "hier_cam", "hier_random")
SCALE_QUERIES = 200  # single queries timed per (gallery size, method); the median is reported
ATTENTION_QUERIES = 1000
BLOCK = 25
TOP = 100


@dataclass
class Gallery:
    """The indexes a timing searches; the single-level ones and `pooled` only up to 1M codes."""

    global_index: HammingIndex
    local_index: HammingIndex
    single_index: HammingIndex | None = None
    single_local_index: HammingIndex | None = None
    pooled_unit: np.ndarray | None = None  # (N, C) float32, rows of unit length


def real_gallery(codes: Codes) -> Gallery:
    pooled = codes.hier.pooled
    return Gallery(
        HammingIndex(codes.hier.global_bits),
        HammingIndex(codes.hier.local_bits),
        HammingIndex(codes.single),
        HammingIndex(codes.single_local),
        pooled / np.linalg.norm(pooled, axis=1, keepdims=True),
    )


def random_gallery(n: int, like: Codes, every_method: bool, seed: int = 0) -> Gallery:
    """n uniform random codes with the widths of `like`'s, packed from the start (10M x 256 bits)."""
    rng = np.random.default_rng(seed)

    def index(width: int) -> HammingIndex:
        return HammingIndex.from_packed(rng.integers(0, 256, (n, -(-width // 8)), dtype=np.uint8), width)

    gallery = Gallery(index(like.hier.global_bits.shape[1]), index(like.hier.local_bits.shape[1]))
    if every_method:
        gallery.single_index = index(like.single.shape[1])
        gallery.single_local_index = index(like.single_local.shape[1])
        pooled = rng.random((n, like.hier.pooled.shape[1]), dtype=np.float32)
        gallery.pooled_unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return gallery


def median_ms_interleaved(searches: dict[str, Callable[[int], object]], queries: int) -> dict[str, float]:
    """Median ms of each `search(i)` over queries i = 0..queries-1. The methods take turns in blocks of
    BLOCK queries, so each runs warm as a server would while a drift of the machine's speed during
    the run reaches every method alike."""
    times: dict[str, list[float]] = {name: [] for name in searches}
    for start in range(0, queries, BLOCK):
        for name, search in searches.items():
            search(start)  # warm-up: the previous method's data has left the caches
            for i in range(start, min(start + BLOCK, queries)):
                started = time.perf_counter()
                search(i)
                times[name].append(time.perf_counter() - started)
    return {name: round(1e3 * float(np.median(values)), 4) for name, values in times.items()}


def attention_ms(weights: np.ndarray, query: Codes, theta: float, top_l: int) -> dict:
    """The attention for one query (CAM, region, eq. 2.4 scores, selection): median and p90 in ms."""
    times = []
    for conv7, bits in list(zip(query.hier.conv7, query.hier.global_bits, strict=True))[:ATTENTION_QUERIES]:
        started = time.perf_counter()
        attend_code(conv7, weights, bits, theta, top_l)
        times.append(time.perf_counter() - started)
    return {
        "median": round(1e3 * float(np.median(times)), 4),
        "p90": round(1e3 * float(np.percentile(times, 90)), 4),
        "queries": len(times),
        "channels": int(query.hier.conv7.shape[1]),
    }


def searches(
    weights: np.ndarray, query: Codes, gallery: Gallery, theta: float, top_l: int, n_coarse: int
) -> dict[str, Callable[[int], object]]:
    """Each method as `search(i)`: query i's top 100 against `gallery` (only the methods it can serve)."""
    rng = np.random.default_rng(0)
    channels = query.hier.local_bits.shape[1]

    def two_level(select: Callable[[int], np.ndarray]) -> Callable[[int], object]:
        def run(i: int):
            return hierarchical_search(
                gallery.global_index,
                gallery.local_index,
                query.hier.global_bits[i : i + 1],
                query.hier.local_bits[i : i + 1],
                select(i)[None],
                n_coarse,
            )[0][:, :TOP]

        return run

    def cam(i: int) -> np.ndarray:
        return attend_code(query.hier.conv7[i], weights, query.hier.global_bits[i], theta, top_l).selected

    found = {
        "global": lambda i: gallery.global_index.search(query.hier.global_bits[i : i + 1], TOP),
        "local_full": lambda i: gallery.local_index.search(query.hier.local_bits[i : i + 1], TOP),
        "hier_cam": two_level(cam),
        "hier_activation": two_level(lambda i: np.argsort(-query.hier.pooled[i], kind="stable")[:top_l]),
        "hier_random": two_level(lambda i: rng.permutation(channels)[:top_l]),
    }
    if gallery.single_index is not None:
        found["single_level"] = lambda i: gallery.single_index.search(query.single[i : i + 1], TOP)
        found["single_level_local"] = lambda i: gallery.single_local_index.search(
            query.single_local[i : i + 1], TOP
        )
    if gallery.pooled_unit is not None:

        def cosine(i: int):
            similarity = gallery.pooled_unit @ (query.hier.pooled[i] / np.linalg.norm(query.hier.pooled[i]))
            return np.argpartition(-similarity, TOP)[:TOP]

        found["float_cosine"] = cosine
    return found


GalleryAt = Callable[[], tuple[Gallery, str, int]]  # builds (gallery, its codes' kind, K) when timed


def scale_rows(
    weights: np.ndarray,
    query: Codes,
    galleries: dict[int, GalleryAt],
    theta: float,
    top_l: int,
) -> list[dict]:
    """ms per single query for every method each gallery can serve, by size; a gallery is built only
    when its turn comes (ten million codes are large). Each row: n, method, ms_per_query, codes
    ("real", "modelled from real codes", or "uniform": multi-index hashing's best case) and K."""
    rows = []
    for n, build in sorted(galleries.items()):
        gallery, kind, n_coarse = build()
        timed = median_ms_interleaved(
            searches(weights, query, gallery, theta, top_l, n_coarse), SCALE_QUERIES
        )
        for method, ms in timed.items():
            rows.append({"n": n, "method": method, "ms_per_query": ms, "codes": kind, "K": n_coarse})
            log.info("scale %s", rows[-1])
        del gallery
    return rows


def two_level_ratios(scale: list[dict], bits_global: int, bits_local: int, top_l: int) -> list:
    """Per size: hier_cam's time over local_full's (same run) beside the bits-compared ratio
    (H + L * K / N) / C and the bytes-read ratio (H / 8 per image and C / 8 per candidate, over C / 8 per
    image), the floors when time follows the bits compared or the bytes read."""
    ms = {(row["n"], row["method"]): row["ms_per_query"] for row in scale}
    ks = {row["n"]: row["K"] for row in scale}
    kinds = {row["n"]: row["codes"] for row in scale}
    return [
        {
            "n": n,
            "codes": kinds[n],
            "K": ks[n],
            "hier_cam_over_local_full": round(ms[n, "hier_cam"] / ms[n, "local_full"], 3),
            "hier_random_over_local_full": round(ms[n, "hier_random"] / ms[n, "local_full"], 3),
            "bits_ratio": round((bits_global + top_l * min(ks[n], n) / n) / bits_local, 4),
            "bytes_ratio": round((bits_global + bits_local * min(ks[n], n) / n) / bits_local, 4),
        }
        for n in sorted({row["n"] for row in scale})
    ]
