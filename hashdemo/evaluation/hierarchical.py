"""`python -m hashdemo.evaluate hier`: hierarchical hashing, query split against the 10k and 100k galleries.

theta, L and K are chosen on val (500 val queries against the other 1,500), by val map@100; then every
method is scored on the query split with three relevance notions (shares a label, exact set, Jaccard
nDCG) and the object-focused protocol, and timed per query at 10k, 100k and 1M gallery codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hashdemo.app.report import frontier
from hashdemo.cam import attend_code
from hashdemo.checkpoints import CHECKPOINT_DIR, Checkpoint, load_checkpoint
from hashdemo.data import Split, load_outfits
from hashdemo.gallery_codes import large_gallery_codes
from hashdemo.models import Encoded
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.metrics import (
    jaccard_ndcg,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
)
from hashdemo.retrieval.novelty import VAL_QUANTILE, novelty, unit_rows
from hashdemo.retrieval.protocol import hamming_ranking, hierarchical_ranking, subset_scores, validation_ids

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parents[2] / "assets"
THETAS = (0.3, 0.4, 0.5, 0.6, 0.7)
TOP_LS = (8, 16, 32, 64, 128)
# K as a share of the database, so a choice made on val's 1,500 images transfers to the 10k gallery
COARSE_SHARES = (0.01, 0.03, 0.1)
TIE = 0.002  # val map@100 within this of the best counts as a tie, broken by fewer bits, then smaller K
RANDOM_SEEDS = 5  # hier_random: this many draws of L random bits per query
LARGE_GALLERY = 100_000
SCALE_SIZES = (10_000, 100_000, 1_000_000)
SCALE_QUERIES = 30  # single queries timed per (gallery size, method); the median is reported
TOP = 100  # results per query for the @100 metrics and the timings


@dataclass
class Codes:
    """One gallery (or query set) as every method sees it."""

    hier: Encoded  # the hierarchical model: H_g, H_l, pooled Conv7 (and Conv7 maps for queries)
    single: np.ndarray  # single-level code at H bits
    single_local: np.ndarray  # single-level code at C bits

    def take(self, ids: np.ndarray) -> Codes:
        return Codes(self.hier.take(ids), self.single[ids], self.single_local[ids])


# ----------------------------------------------------------------------------- bit selections


def cam_orders(checkpoint: Checkpoint, encoded: Encoded, theta: float, largest_only: bool = True):
    """(N, C) each image's Conv7 channels by overlap score, high to low (the first L are Psi_q), and
    (N,) how many channels overlap the attention region at all."""
    weights = checkpoint.model.cam_weights().numpy()
    channels = encoded.conv7.shape[1]
    attentions = [
        attend_code(conv7, weights, bits, theta, channels, largest_only=largest_only)
        for conv7, bits in zip(encoded.conv7, encoded.global_bits, strict=True)
    ]
    return np.stack([a.selected for a in attentions]), np.array([(a.scores > 0).sum() for a in attentions])


def box_orders(checkpoint: Checkpoint, encoded: Encoded, boxes: np.ndarray, theta: float) -> np.ndarray:
    """(N, C) channels by overlap with a given box (top, left, side) instead of the CAM region: what a user
    pointing at the object gets ("point at the object"), at the same theta."""
    weights = checkpoint.model.cam_weights().numpy()
    size, channels = 64, encoded.conv7.shape[1]
    orders = []
    for conv7, bits, (top, left, side) in zip(encoded.conv7, encoded.global_bits, boxes, strict=True):
        region = np.zeros((size, size), bool)
        region[top : top + side, left : left + side] = True
        orders.append(attend_code(conv7, weights, bits, theta, channels, region=region).selected)
    return np.stack(orders)


def activation_orders(encoded: Encoded) -> np.ndarray:
    """(N, C) channels by mean activation, high to low: selection without any attention region."""
    return np.argsort(-encoded.pooled, axis=1, kind="stable")


def random_orders(n: int, channels: int, seed: int) -> np.ndarray:
    return np.argsort(np.random.default_rng(seed).random((n, channels)), axis=1)


# ----------------------------------------------------------------------------- scores


def main_items(split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For images with 2-3 items: their ids, the class of their largest item (by box area) and its box."""
    n_items = (split.classes >= 0).sum(axis=1)
    ids = np.flatnonzero(n_items >= 2)
    area = np.where(split.classes[ids] >= 0, split.boxes[ids, :, 2].astype(np.int64) ** 2, -1)
    main = np.argmax(area, axis=1)
    return ids, split.classes[ids, main].astype(np.int64), split.boxes[ids, main].astype(np.int64)


def top_scores(ranked: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, objects: tuple) -> dict:
    """The @100 metrics of top-100 rankings, and the object-focused map@100."""
    object_ids, object_classes = objects[:2]
    one_hot = np.eye(g_labels.shape[1], dtype=np.uint8)[object_classes]
    return {
        "map@100": mean_average_precision(ranked, q_labels, g_labels, k=TOP),
        "map_exact@100": mean_average_precision(ranked, q_labels, g_labels, exact=True, k=TOP),
        "p@10": precision_at_k(ranked, q_labels, g_labels, 10),
        "jaccard_ndcg@100": jaccard_ndcg(ranked, q_labels, g_labels, k=TOP),
        "object_map@100": mean_average_precision(ranked[object_ids], one_hot, g_labels, k=TOP),
    }


def full_scores(ranked: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, objects: tuple) -> dict:
    return {
        "map": mean_average_precision(ranked, q_labels, g_labels),
        "map_exact": mean_average_precision(ranked, q_labels, g_labels, exact=True),
        **top_scores(ranked[:, :TOP], q_labels, g_labels, objects),
    }


def mean_and_std(runs: list[dict]) -> dict:
    out = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
    out.update({f"{key}_std": float(np.std([r[key] for r in runs])) for key in runs[0]})
    return out


# ----------------------------------------------------------------------------- the rankers


def rankers(query: Codes, gallery: Codes, orders: dict[str, np.ndarray], top_l: int, n_coarse: int) -> dict:
    """Each method as `rank(k) -> (Q, k) ids` (k=None: the whole gallery)."""
    pooled_q = query.hier.pooled / np.linalg.norm(query.hier.pooled, axis=1, keepdims=True)
    pooled_g = gallery.hier.pooled / np.linalg.norm(gallery.hier.pooled, axis=1, keepdims=True)

    def cosine(k):
        similarity = pooled_q @ pooled_g.T
        if k is None:
            return np.argsort(-similarity, axis=1, kind="stable")
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        return np.take_along_axis(
            top, np.argsort(-np.take_along_axis(similarity, top, 1), 1, kind="stable"), 1
        )

    def two_level(order: np.ndarray) -> Callable:
        return lambda k: hierarchical_ranking(query.hier, gallery.hier, order[:, :top_l], n_coarse, k)

    return {
        "global": lambda k: hamming_ranking(query.hier.global_bits, gallery.hier.global_bits, k),
        "local_full": lambda k: hamming_ranking(query.hier.local_bits, gallery.hier.local_bits, k),
        **{name: two_level(order) for name, order in orders.items()},
        "single_level": lambda k: hamming_ranking(query.single, gallery.single, k),
        "single_level_local": lambda k: hamming_ranking(query.single_local, gallery.single_local, k),
        "float_cosine": cosine,
    }


# ----------------------------------------------------------------------------- val tuning


def tune(checkpoint: Checkpoint, val: Encoded, val_labels: np.ndarray) -> dict:
    """Grid over theta, L and K's share of the database for hier_cam, scored by val map@100."""
    q, db = validation_ids(len(val_labels))
    grid = []
    for theta in THETAS:
        orders = cam_orders(checkpoint, val.take(q), theta)[0]
        for top_l in (top_l for top_l in TOP_LS if top_l < val.local_bits.shape[1]):
            for share in COARSE_SHARES:
                n_coarse = (
                    max(TOP, round(share * len(db))) if share * len(db) >= TOP else round(share * len(db))
                )
                ranked = hierarchical_ranking(val.take(q), val.take(db), orders[:, :top_l], n_coarse, TOP)
                grid.append(
                    {
                        "theta": theta,
                        "L": top_l,
                        "K_share": share,
                        "val_map@100": mean_average_precision(ranked, val_labels[q], val_labels[db], k=TOP),
                        "val_map": mean_average_precision(
                            hierarchical_ranking(val.take(q), val.take(db), orders[:, :top_l], n_coarse),
                            val_labels[q],
                            val_labels[db],
                        ),
                    }
                )
    best_score = max(row["val_map@100"] for row in grid)
    near = [row for row in grid if row["val_map@100"] >= best_score - TIE]
    return {"best": min(near, key=lambda row: (row["L"], row["K_share"], -row["val_map@100"])), "grid": grid}


# ----------------------------------------------------------------------------- timing at scale


def scale_rows(
    checkpoint: Checkpoint,
    query: Codes,
    gallery_10k: Codes,
    gallery_100k: Codes,
    theta: float,
    top_l: int,
    n_coarse: int,
    sizes: tuple[int, ...] = SCALE_SIZES,
) -> list[dict]:
    """ms per single query (median of SCALE_QUERIES) for every method at 10k, 100k and 1M gallery codes.

    At 1M the codes are random with the real shapes (search cost does not depend on code content).
    The two-level methods' time includes their bit selection (attention for hier_cam); never a scan of
    the gallery's local code.
    """
    rows = []
    for n in sizes:
        if n == len(gallery_10k.single):
            gallery, kind = gallery_10k, "real"
        elif n == len(gallery_100k.single):
            gallery, kind = gallery_100k, "real"
        else:
            gallery, kind = random_codes(n, gallery_10k), "random"
        for method, ms in time_methods(checkpoint, query, gallery, theta, top_l, n_coarse).items():
            rows.append({"n": n, "method": method, "ms_per_query": ms, "codes": kind})
            log.info("scale %s", rows[-1])
    return rows


def time_methods(
    checkpoint: Checkpoint, query: Codes, gallery: Codes, theta: float, top_l: int, n_coarse: int
) -> dict[str, float]:
    """Median ms of one query's top 100 for each method against `gallery`."""
    weights = checkpoint.model.cam_weights().numpy()
    indexes = {
        "global": HammingIndex(gallery.hier.global_bits),
        "local_full": HammingIndex(gallery.hier.local_bits),
        "single_level": HammingIndex(gallery.single),
        "single_level_local": HammingIndex(gallery.single_local),
    }
    pooled_g = gallery.hier.pooled / np.linalg.norm(gallery.hier.pooled, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    channels = query.hier.local_bits.shape[1]

    def two_level(select: Callable[[int], np.ndarray]) -> Callable[[int], object]:
        def run(i: int):
            return hierarchical_search(
                indexes["global"],
                indexes["local_full"],
                query.hier.global_bits[i : i + 1],
                query.hier.local_bits[i : i + 1],
                select(i)[None],
                n_coarse,
            )[0][:, :TOP]

        return run

    def cosine(i: int):
        similarity = pooled_g @ (query.hier.pooled[i] / np.linalg.norm(query.hier.pooled[i]))
        return np.argpartition(-similarity, TOP)[:TOP]

    def cam(i: int) -> np.ndarray:
        return attend_code(query.hier.conv7[i], weights, query.hier.global_bits[i], theta, top_l).selected

    searches = {
        "global": lambda i: indexes["global"].search(query.hier.global_bits[i : i + 1], TOP),
        "local_full": lambda i: indexes["local_full"].search(query.hier.local_bits[i : i + 1], TOP),
        "hier_cam": two_level(cam),
        "hier_activation": two_level(lambda i: np.argsort(-query.hier.pooled[i], kind="stable")[:top_l]),
        "hier_random": two_level(lambda i: rng.permutation(channels)[:top_l]),
        "single_level": lambda i: indexes["single_level"].search(query.single[i : i + 1], TOP),
        "single_level_local": lambda i: indexes["single_level_local"].search(
            query.single_local[i : i + 1], TOP
        ),
        "float_cosine": cosine,
    }
    timings = {}
    for method, search in searches.items():
        search(0)  # warm-up
        times = []
        for i in range(SCALE_QUERIES):
            started = time.perf_counter()
            search(i)
            times.append(time.perf_counter() - started)
        timings[method] = round(1e3 * float(np.median(times)), 4)
    return timings


def random_codes(n: int, like: Codes) -> Codes:
    """n random gallery codes with the shapes of `like`'s (uniform bits; pooled features in [0, 1))."""
    rng = np.random.default_rng(0)

    def bits(width: int) -> np.ndarray:
        return np.unpackbits(rng.integers(0, 256, (n, -(-width // 8)), dtype=np.uint8), axis=1)[:, :width]

    hier = Encoded(
        bits(like.hier.global_bits.shape[1]),
        bits(like.hier.local_bits.shape[1]),
        rng.random((n, like.hier.pooled.shape[1]), dtype=np.float32),
        np.zeros((n, like.hier.label_probs.shape[1]), np.float32),
    )
    return Codes(hier, bits(like.single.shape[1]), bits(like.single_local.shape[1]))


# ----------------------------------------------------------------------------- out of domain


def far_from_domain_images(kind: str, n: int, seed: int = 0) -> np.ndarray:
    """(n, 64, 64, 3) uint8 images unlike the outfits: uniform noise, flat shapes on flat colour, or a
    page-like screenshot (white, a coloured header, lines of text)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 64, 64, 3), np.uint8)
    for image in images:
        if kind == "noise":
            image[:] = rng.integers(0, 256, image.shape)
        elif kind == "flat_shapes":
            image[:] = rng.integers(0, 256, 3)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            centre, size = tuple(int(c) for c in rng.integers(16, 48, 2)), int(rng.integers(8, 24))
            if rng.random() < 0.5:
                cv2.circle(image, centre, size, colour, -1)
            else:
                cv2.rectangle(
                    image,
                    (centre[0] - size, centre[1] - size),
                    (centre[0] + size, centre[1] + size),
                    colour,
                    -1,
                )
        else:  # screenshot
            image[:] = 255
            image[:10] = rng.integers(0, 256, 3)
            for row in range(16, 64, 8):
                text = "".join(rng.choice(list("abcdefghij klmnop")) for _ in range(12))
                cv2.putText(image, text, (2, row), cv2.FONT_HERSHEY_PLAIN, 0.6, (30, 30, 30), 1)
    return images


def out_of_domain(checkpoint: Checkpoint, val: Encoded, gallery: Encoded) -> dict:
    """The novelty cut-off (99th percentile over val) and how often each far-from-domain kind passes it."""
    gallery_unit = unit_rows(gallery.pooled)
    threshold = float(np.quantile(novelty(val.pooled, gallery_unit), VAL_QUANTILE))
    flagged = {
        kind: float(
            (
                novelty(checkpoint.model.encode(far_from_domain_images(kind, 200)).pooled, gallery_unit)
                > threshold
            ).mean()
        )
        for kind in ("noise", "flat_shapes", "screenshot")
    }
    val_flagged = float((novelty(val.pooled, gallery_unit) > threshold).mean())
    return {"threshold": threshold, "val_flagged": val_flagged, "flagged": flagged, "images_per_kind": 200}


# ----------------------------------------------------------------------------- the evaluation


def evaluate_hier(
    checkpoints: Path = CHECKPOINT_DIR,
    large_size: int = LARGE_GALLERY,
    scale_sizes: tuple[int, ...] = SCALE_SIZES,
) -> dict:
    hier = load_checkpoint("hier", checkpoints)
    single = load_checkpoint("single_level", checkpoints)
    single_local = load_checkpoint("single_level_local", checkpoints)
    splits = load_outfits()
    val = hier.model.encode(splits["val"].images, with_conv7=True)
    tuned = tune(hier, val, splits["val"].labels)
    theta, top_l, share = (tuned["best"][key] for key in ("theta", "L", "K_share"))

    def codes(images: np.ndarray, with_conv7: bool = False) -> Codes:
        return Codes(
            hier.model.encode(images, with_conv7=with_conv7),
            single.model.encode(images).global_bits,
            single_local.model.encode(images).global_bits,
        )

    query, gallery = codes(splits["query"].images, with_conv7=True), codes(splits["gallery"].images)
    n_coarse = round(share * len(splits["gallery"]))
    q_labels, g_labels = splits["query"].labels, splits["gallery"].labels
    objects = main_items(splits["query"])
    n_q, bits_global, bits_local = (
        len(q_labels),
        query.hier.global_bits.shape[1],
        query.hier.local_bits.shape[1],
    )

    cam, positive = cam_orders(hier, query.hier, theta)
    orders = {
        "hier_cam": cam,
        "hier_cam_all_components": cam_orders(hier, query.hier, theta, largest_only=False)[0],
        "hier_activation": activation_orders(query.hier),
    }
    ranks = rankers(query, gallery, orders, top_l, n_coarse)
    two_level_bits = bits_global + top_l
    bits = {
        "global": bits_global,
        "local_full": bits_local,
        **dict.fromkeys(
            ["hier_cam", "hier_cam_all_components", "hier_activation", "hier_random"], two_level_bits
        ),
        "single_level": query.single.shape[1],
        "single_level_local": query.single_local.shape[1],
        "float_cosine": None,
    }
    methods = {name: full_scores(rank(None), q_labels, g_labels, objects) for name, rank in ranks.items()}
    random_runs = [
        full_scores(
            hierarchical_ranking(
                query.hier, gallery.hier, random_orders(n_q, bits_local, seed)[:, :top_l], n_coarse
            ),
            q_labels,
            g_labels,
            objects,
        )
        for seed in range(RANDOM_SEEDS)
    ]
    methods["hier_random"] = mean_and_std(random_runs)

    large_codes, large_labels, _ = large_gallery_codes(
        ("hier", "single_level", "single_level_local"), large_size, checkpoints=checkpoints, progress=True
    )
    large = Codes(
        large_codes["hier"],
        large_codes["single_level"].global_bits,
        large_codes["single_level_local"].global_bits,
    )
    large_ranks = rankers(query, large, orders, top_l, n_coarse)
    large_gallery = {
        name: top_scores(rank(TOP), q_labels, large_labels, objects) for name, rank in large_ranks.items()
    }
    large_gallery["hier_random"] = mean_and_std(
        [
            top_scores(
                hierarchical_ranking(
                    query.hier, large.hier, random_orders(n_q, bits_local, seed)[:, :top_l], n_coarse, TOP
                ),
                q_labels,
                large_labels,
                objects,
            )
            for seed in range(RANDOM_SEEDS)
        ]
    )

    scale = scale_rows(hier, query, gallery, large, theta, top_l, n_coarse, scale_sizes)
    for name, row in methods.items():
        row["bits_compared"] = bits[name]
        # per gallery image: H bits over the whole gallery, L more over the K candidates only
        row["bits_per_gallery_image"] = (
            None
            if bits[name] is None
            else round(bits_global + top_l * n_coarse / len(g_labels), 2)
            if bits[name] == two_level_bits and name.startswith("hier")
            else bits[name]
        )
        row["ms_per_query"] = next(
            (
                r["ms_per_query"]
                for r in scale
                if r["n"] == len(g_labels) and r["method"] == name.replace("_all_components", "")
            ),
            None,
        )
    curves = {}
    for name in ("global", "local_full", "hier_cam", "float_cosine"):
        precision, recall = precision_recall_curve(ranks[name](None), q_labels, g_labels)
        curves[name] = {"precision": precision.tolist(), "recall": recall.tolist()}
    # the main item's own box as the region (a user pointing at it), scored on the object queries only
    object_ids, object_classes, object_boxes = objects
    boxed = box_orders(hier, query.hier.take(object_ids), object_boxes, theta)
    boxed_ranked = hierarchical_ranking(
        query.hier.take(object_ids), gallery.hier, boxed[:, :top_l], n_coarse, TOP
    )
    box_map = mean_average_precision(
        boxed_ranked, np.eye(g_labels.shape[1], dtype=np.uint8)[object_classes], g_labels, k=TOP
    )
    chosen = np.minimum(positive, top_l)
    result = {
        "bits": {"global": bits_global, "local": bits_local},
        "theta": theta,
        "L": top_l,
        "K": n_coarse,
        "K_share": share,
        "methods": methods,
        "object_focused": {
            "hier_box": {"map@100": box_map},  # the main item's box as the region
            **{
                name: {
                    "map@100": row["object_map@100"],
                    **({"std": row["object_map@100_std"]} if "object_map@100_std" in row else {}),
                }
                for name, row in methods.items()
            },
        },
        "object_queries": len(objects[0]),
        "attention": {
            "positive_overlap_median": float(np.median(chosen)),
            "positive_overlap_p10": float(np.percentile(chosen, 10)),
            "positive_overlap_p90": float(np.percentile(chosen, 90)),
            "empty_region_queries": int((positive == 0).sum()),
        },
        "large_gallery": {"n": len(large_labels), "methods": large_gallery},
        "out_of_domain": out_of_domain(hier, val, gallery.hier),
        "scale": scale,
        "val_grid": tuned["grid"],
        "pr_curves": curves,
        "subset": subset_scores(query.hier, gallery.hier, q_labels, g_labels, cam[:, :top_l], n_coarse),
    }
    frontier(result).savefig(ASSETS / "frontier.png", dpi=110)
    return result
