"""The hierarchical evaluation (issue 18): the query split against the 10k and 100k galleries.

theta, L and K are chosen on val (500 val queries against the other 1,500), by val map@100; then every
method is scored on the query split with three relevance notions (shares a label, exact set, Jaccard
nDCG) and two object protocols over the queries with 2-3 items (see `hashdemo.evaluation.localization`):

- largest item (`object_map@100`, `object_focused`): relevant = holds the class of the query's
  largest item, whatever the attention looks at;
- attended object (`attended_map@100`, `attended_object`): relevant = holds the class of the item the
  CAM region covers most, the object the method itself picked.

It also reports where the CAM region falls (`localization`), the attention's own time and ms per
query from 10k to 10M codes (`hashdemo.evaluation.speed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hashdemo.data.outfits import load_outfits
from hashdemo.evaluation.codes import Codes
from hashdemo.evaluation.localization import Items, attended_slots, localization, multi_item
from hashdemo.evaluation.speed import SCALE_SIZES, attention_ms, scale_rows, two_level_ratios
from hashdemo.model.cam import attend_code
from hashdemo.model.checkpoints import Checkpoint, load_checkpoint
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.gallery_codes import large_gallery_codes
from hashdemo.retrieval.metrics import (
    jaccard_ndcg,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
)
from hashdemo.retrieval.novelty import VAL_QUANTILE, detail, detail_threshold, novelty, unit_rows
from hashdemo.retrieval.protocol import hamming_ranking, hierarchical_ranking, subset_scores, validation_ids
from hashdemo.storage.locations import CHECKPOINT_DIR

log = logging.getLogger(__name__)
THETAS = (0.3, 0.4, 0.5, 0.6, 0.7)
TOP_LS = (8, 16, 32, 64, 128)
# K as a share of the database, so a choice made on val's 1,500 images transfers to the 10k gallery
COARSE_SHARES = (0.01, 0.03, 0.1)
TIE = 0.002  # val map@100 within this of the best counts as a tie, broken by fewer bits, then smaller K
RANDOM_SEEDS = 5  # hier_random: this many draws of L random bits per query
LARGE_GALLERY = 100_000
TOP = 100  # results per query for the @100 metrics
IMAGE_SIZE = 64
PROTOCOLS = {
    "object_focused": "largest item: queries with 2-3 items; relevant = holds the class of the query's "
    "largest item (by box area)",
    "attended_object": "attended object: queries with 2-3 items; relevant = holds the class of the item "
    "whose box the CAM region (largest component at the chosen theta) overlaps most (tie: the larger)",
    "hier_box_any_item": "every item of every query with 2-3 items in turn as the user's box; relevant = "
    "holds that item's class",
}


@dataclass(frozen=True)
class ObjectQueries:
    """Which queries an object protocol scores, and the class each must retrieve."""

    ids: np.ndarray  # (M,) query ids
    classes: np.ndarray  # (M,) the class a relevant gallery image holds


# ----------------------------------------------------------------------------- bit selections


@dataclass(frozen=True)
class CamAttention:
    """The CAM attention of a batch of images at one theta."""

    orders: np.ndarray  # (N, C) channels by overlap score, high to low: the first L are Psi_q
    positive: np.ndarray  # (N,) channels that overlap the region at all
    regions: np.ndarray  # (N, S, S) bool, the attention region
    m_avg: np.ndarray  # (N, S, S) float32, the averaged bit CAM in [0, 1]


def cam_attention(checkpoint: Checkpoint, encoded: Encoded, theta: float, largest_only: bool = True):
    """SPEC section 1 steps 1-3 for every image of `encoded` (its Conv7 maps)."""
    weights = checkpoint.model.cam_weights().numpy()
    channels = encoded.conv7.shape[1]
    attentions = [
        attend_code(conv7, weights, bits, theta, channels, largest_only=largest_only)
        for conv7, bits in zip(encoded.conv7, encoded.global_bits, strict=True)
    ]
    return CamAttention(
        np.stack([a.selected for a in attentions]),
        np.array([(a.scores > 0).sum() for a in attentions]),
        np.stack([a.region for a in attentions]),
        np.stack([a.m_avg for a in attentions]),
    )


def box_orders(checkpoint: Checkpoint, encoded: Encoded, boxes: np.ndarray, theta: float) -> np.ndarray:
    """(N, C) channels by overlap with a given box (top, left, side) instead of the CAM region: what a user
    pointing at the object gets ("point at the object"), at the same theta."""
    weights = checkpoint.model.cam_weights().numpy()
    channels = encoded.conv7.shape[1]
    orders = []
    for conv7, bits, (top, left, side) in zip(encoded.conv7, encoded.global_bits, boxes, strict=True):
        region = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
        region[top : top + side, left : left + side] = True
        orders.append(attend_code(conv7, weights, bits, theta, channels, region=region).selected)
    return np.stack(orders)


def activation_orders(encoded: Encoded) -> np.ndarray:
    """(N, C) channels by mean activation, high to low: selection without any attention region."""
    return np.argsort(-encoded.pooled, axis=1, kind="stable")


def random_orders(n: int, channels: int, seed: int) -> np.ndarray:
    return np.argsort(np.random.default_rng(seed).random((n, channels)), axis=1)


# ----------------------------------------------------------------------------- scores


def top_scores(ranked: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, objects: dict) -> dict:
    """The @100 metrics of top-100 rankings, and map@100 under each object protocol in `objects`
    ({"object": largest item, "attended": attended object})."""
    one_hot = np.eye(g_labels.shape[1], dtype=np.uint8)
    return {
        "map@100": mean_average_precision(ranked, q_labels, g_labels, k=TOP),
        "map_exact@100": mean_average_precision(ranked, q_labels, g_labels, exact=True, k=TOP),
        "p@10": precision_at_k(ranked, q_labels, g_labels, 10),
        "jaccard_ndcg@100": jaccard_ndcg(ranked, q_labels, g_labels, k=TOP),
        **{
            f"{name}_map@100": mean_average_precision(ranked[o.ids], one_hot[o.classes], g_labels, k=TOP)
            for name, o in objects.items()
        },
    }


def full_scores(ranked: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, objects: dict) -> dict:
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
        **(
            {}
            if query.single is None  # an imported set trains the single-level baselines only if asked to
            else {
                "single_level": lambda k: hamming_ranking(query.single, gallery.single, k),
                "single_level_local": lambda k: hamming_ranking(query.single_local, gallery.single_local, k),
            }
        ),
        "float_cosine": cosine,
    }


# ----------------------------------------------------------------------------- val tuning


def tune(checkpoint: Checkpoint, val: Encoded, val_labels: np.ndarray) -> dict:
    """Grid over theta, L and K's share of the database for hier_cam, scored by val map@100."""
    q, db = validation_ids(len(val_labels))
    grid = []
    for theta in THETAS:
        orders = cam_attention(checkpoint, val.take(q), theta).orders
        for top_l in (top_l for top_l in TOP_LS if top_l < val.local_bits.shape[1]):
            for share in COARSE_SHARES:
                n_coarse = (  # at least one candidate on a small val split (an imported folder's)
                    max(TOP, round(share * len(db)))
                    if share * len(db) >= TOP
                    else max(1, round(share * len(db)))
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


# ----------------------------------------------------------------------------- out of domain


FAR_FROM_DOMAIN = ("noise", "flat_shapes", "screenshot", "gradient")


def far_from_domain_images(kind: str, n: int, seed: int = 0, size: int = IMAGE_SIZE) -> np.ndarray:
    """(n, 64, 64, 3) uint8 images unlike the outfits: uniform noise, flat shapes on flat colour, a
    page-like screenshot (white, a coloured header, lines of text), or a smooth two-colour gradient."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 64, 64, 3), np.uint8)
    for image in images:
        if kind == "noise":
            image[:] = rng.integers(0, 256, image.shape)
        elif kind == "gradient":  # from one random colour to another along a random direction
            angle = rng.uniform(0, np.pi)
            rows, cols = np.mgrid[0:64, 0:64] / 63.0
            t = np.cos(angle) * cols + np.sin(angle) * rows
            t = ((t - t.min()) / (t.max() - t.min()))[..., None]
            image[:] = (rng.integers(0, 256, 3) * (1 - t) + rng.integers(0, 256, 3) * t).astype(np.uint8)
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
    if size != IMAGE_SIZE:  # drawn at 64 px, then brought to the model's input size
        images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in images])
    return images


def out_of_domain(checkpoint: Checkpoint, val_images: np.ndarray, val: Encoded, gallery: Encoded) -> dict:
    """The two cut-offs, both calibrated on val (novelty above its 99th percentile; detail below its 1st),
    and how often each far-from-domain kind is flagged by either."""
    gallery_unit = unit_rows(gallery.pooled)
    threshold = float(np.quantile(novelty(val.pooled, gallery_unit), VAL_QUANTILE))
    smooth_below = detail_threshold(val_images)

    def flagged(images: np.ndarray, pooled: np.ndarray) -> float:
        return float(((novelty(pooled, gallery_unit) > threshold) | (detail(images) < smooth_below)).mean())

    rates = {}
    for kind in FAR_FROM_DOMAIN:
        images = far_from_domain_images(kind, 200, size=checkpoint.config.image_size)
        rates[kind] = flagged(images, checkpoint.model.encode(images).pooled)
    return {
        "threshold": threshold,
        "smooth_below": smooth_below,
        "val_flagged": flagged(val_images, val.pooled),
        "flagged": rates,
        "images_per_kind": 200,
    }


# ----------------------------------------------------------------------------- object protocols


def object_protocols(items: Items, attention: CamAttention) -> dict[str, ObjectQueries]:
    """The largest-item and attended-object protocols over the multi-item queries."""
    regions = attention.regions[items.ids]
    return {
        "object": ObjectQueries(items.ids, items.pick(items.largest())[0]),
        "attended": ObjectQueries(items.ids, items.pick(attended_slots(items, regions))[0]),
    }


def protocol_table(methods: dict[str, dict], key: str) -> dict:
    """{method: {"map@100", "std"?}} for one protocol's key out of the method rows."""
    return {
        name: {"map@100": row[key], **({"std": row[f"{key}_std"]} if f"{key}_std" in row else {})}
        for name, row in methods.items()
    }


def boxed_scores(
    checkpoint: Checkpoint,
    query: Codes,
    galleries: dict[str, tuple[Codes, np.ndarray]],
    items: Items,
    slots: dict[str, np.ndarray | None],
    theta: float,
    top_l: int,
    n_coarse: int,
) -> dict[str, dict[str, float]]:
    """map@100 with an item's box as the region, per gallery: {"hier_box_<name>": ...} for one slot per
    query (`slots[name]`), or every item of every query in turn (`slots[name]` None)."""
    rows = {}
    for name, chosen in slots.items():
        if chosen is None:  # every item in turn
            image, slot = np.nonzero(items.classes >= 0)
        else:
            image, slot = np.arange(len(items.ids)), chosen
        boxes, classes = items.boxes[image, slot], items.classes[image, slot]
        encoded = query.hier.take(items.ids[image])
        orders = box_orders(checkpoint, encoded, boxes, theta)[:, :top_l]
        for gallery_name, (gallery, g_labels) in galleries.items():
            ranked = hierarchical_ranking(encoded, gallery.hier, orders, n_coarse, TOP)
            one_hot = np.eye(g_labels.shape[1], dtype=np.uint8)[classes]
            rows.setdefault(gallery_name, {})[name] = mean_average_precision(ranked, one_hot, g_labels, k=TOP)
    return rows


def localization_by_theta(
    checkpoint: Checkpoint, query: Codes, items: Items, theta: float, chosen: CamAttention
) -> list[dict]:
    """The localization figures at every theta of the grid (`chosen` is the attention at `theta`)."""
    multi = query.hier.take(items.ids)
    m_avg = chosen.m_avg[items.ids]  # M_avg does not depend on theta
    rows = []
    for grid_theta in THETAS:
        regions = (
            chosen.regions[items.ids]
            if grid_theta == theta
            else cam_attention(checkpoint, multi, grid_theta).regions
        )
        rows.append({"theta": grid_theta, **localization(items, regions, m_avg)})
    return rows


# ----------------------------------------------------------------------------- the evaluation


@dataclass(frozen=True)
class Setup:
    """What every part of the evaluation shares: the chosen parameters and the query split's codes,
    attention, object protocols and bit selections."""

    hier: Checkpoint
    theta: float
    top_l: int
    k_share: float  # K as a share of the database, as chosen on val
    n_coarse: int  # K on the 10k gallery (also at every other size)
    query: Codes
    q_labels: np.ndarray
    items: Items
    cam: CamAttention
    objects: dict[str, ObjectQueries]
    orders: dict[str, np.ndarray]  # (Q, C) channel orders of the two-level methods but hier_random
    random_draws: list[np.ndarray]  # RANDOM_SEEDS draws of (Q, L) random bits


def encode_codes(models: tuple[Checkpoint, Checkpoint, Checkpoint], images: np.ndarray, conv7=False) -> Codes:
    """Images under the hierarchical model and the two single-level baselines."""
    hier, single, single_local = models
    return Codes(
        hier.model.encode(images, with_conv7=conv7),
        single.model.encode(images).global_bits,
        single_local.model.encode(images).global_bits,
    )


def score_gallery(setup: Setup, gallery: Codes, g_labels: np.ndarray, whole: bool) -> dict:
    """Every method's row against one gallery: whole-gallery and @100 metrics (`whole`), else @100 only."""
    q, draws = setup.query, setup.random_draws
    k = None if whole else TOP

    def scores(ranked):
        return (full_scores if whole else top_scores)(ranked, setup.q_labels, g_labels, setup.objects)

    ranks = rankers(q, gallery, setup.orders, setup.top_l, setup.n_coarse)
    methods = {name: scores(rank(k)) for name, rank in ranks.items()}
    methods["hier_random"] = mean_and_std(
        [scores(hierarchical_ranking(q.hier, gallery.hier, draw, setup.n_coarse, k)) for draw in draws]
    )
    return methods


def evaluate_hier(
    checkpoints: Path = CHECKPOINT_DIR,
    large_size: int = LARGE_GALLERY,
    scale_sizes: tuple[int, ...] = SCALE_SIZES,
) -> dict:
    models = tuple(
        load_checkpoint(name, checkpoints) for name in ("hier", "single_level", "single_level_local")
    )
    hier, splits = models[0], load_outfits()
    val = hier.model.encode(splits["val"].images, with_conv7=True)
    tuned = tune(hier, val, splits["val"].labels)
    theta, top_l, share = (tuned["best"][key] for key in ("theta", "L", "K_share"))
    query = encode_codes(models, splits["query"].images, conv7=True)
    gallery, g_labels = encode_codes(models, splits["gallery"].images), splits["gallery"].labels
    items, cam = multi_item(splits["query"]), cam_attention(hier, query.hier, theta)
    bits_local = query.hier.local_bits.shape[1]
    setup = Setup(
        hier,
        theta,
        top_l,
        share,
        round(share * len(g_labels)),
        query,
        splits["query"].labels,
        items,
        cam,
        object_protocols(items, cam),
        {
            "hier_cam": cam.orders,
            "hier_cam_all_components": cam_attention(hier, query.hier, theta, largest_only=False).orders,
            "hier_activation": activation_orders(query.hier),
        },
        [random_orders(len(query.single), bits_local, seed)[:, :top_l] for seed in range(RANDOM_SEEDS)],
    )
    large_codes, large_labels, _ = large_gallery_codes(
        ("hier", "single_level", "single_level_local"), large_size, checkpoints=checkpoints, progress=True
    )
    large = Codes(
        large_codes["hier"],
        large_codes["single_level"].global_bits,
        large_codes["single_level_local"].global_bits,
    )
    methods = score_gallery(setup, gallery, g_labels, whole=True)
    large_methods = score_gallery(setup, large, large_labels, whole=False)
    boxes = {
        "hier_box_largest": items.largest(),
        "hier_box": attended_slots(items, cam.regions[items.ids]),
        "hier_box_any_item": None,  # every item in turn
    }
    galleries = {"gallery": (gallery, g_labels), "large_gallery": (large, large_labels)}
    boxed = boxed_scores(hier, query, galleries, items, boxes, theta, top_l, setup.n_coarse)
    weights = hier.model.cam_weights().numpy()
    real = {len(g_labels): gallery, len(large_labels): large}
    scale = scale_rows(weights, query, real, theta, top_l, setup.n_coarse, scale_sizes)
    add_costs(methods, scale, setup, len(g_labels))
    return {
        **report_parts(setup, methods, boxed, scale),
        "large_gallery": {
            "n": len(large_labels),
            "methods": large_methods,
            "attended_object": {
                **protocol_table(large_methods, "attended_map@100"),
                "hier_box": {"map@100": boxed["large_gallery"]["hier_box"]},
                "hier_box_any_item": {"map@100": boxed["large_gallery"]["hier_box_any_item"]},
            },
        },
        "out_of_domain": out_of_domain(hier, splits["val"].images, val, gallery.hier),
        "attention_ms": (timing := attention_ms(weights, query, theta, top_l))["median"],
        "attention_timing": timing,
        "val_grid": tuned["grid"],
        "pr_curves": pr_curves(setup, gallery, g_labels),
        "subset": subset_scores(
            query.hier, gallery.hier, setup.q_labels, g_labels, cam.orders[:, :top_l], setup.n_coarse
        ),
    }


def report_parts(setup: Setup, methods: dict, boxed: dict, scale: list[dict]) -> dict:
    """The 10k gallery's tables: parameters, methods, both object protocols, localization, speed."""
    chosen = np.minimum(setup.cam.positive, setup.top_l)
    by_theta = localization_by_theta(setup.hier, setup.query, setup.items, setup.theta, setup.cam)
    bits = setup.query.hier
    return {
        "bits": {"global": bits.global_bits.shape[1], "local": bits.local_bits.shape[1]},
        "theta": setup.theta,
        "L": setup.top_l,
        "K": setup.n_coarse,
        "K_share": setup.k_share,
        "protocols": PROTOCOLS,
        "methods": methods,
        "object_focused": {
            "hier_box": {"map@100": boxed["gallery"]["hier_box_largest"]},  # the largest item's box
            **protocol_table(methods, "object_map@100"),
        },
        "attended_object": {
            **protocol_table(methods, "attended_map@100"),
            "hier_box": {"map@100": boxed["gallery"]["hier_box"]},  # the attended item's box
            "hier_box_any_item": {"map@100": boxed["gallery"]["hier_box_any_item"]},
        },
        "object_queries": len(setup.items.ids),
        "box_queries_any_item": int((setup.items.classes >= 0).sum()),
        "localization": {**next(r for r in by_theta if r["theta"] == setup.theta), "by_theta": by_theta},
        "attention": {
            "positive_overlap_median": float(np.median(chosen)),
            "positive_overlap_p10": float(np.percentile(chosen, 10)),
            "positive_overlap_p90": float(np.percentile(chosen, 90)),
            "empty_region_queries": int((setup.cam.positive == 0).sum()),
        },
        "scale": scale,
        "two_level_ratio": two_level_ratios(
            scale, bits.global_bits.shape[1], bits.local_bits.shape[1], setup.top_l, setup.n_coarse
        ),
    }


def pr_curves(setup: Setup, gallery: Codes, g_labels: np.ndarray) -> dict:
    ranks = rankers(setup.query, gallery, setup.orders, setup.top_l, setup.n_coarse)
    curves = {}
    for name in ("global", "local_full", "hier_cam", "float_cosine"):
        precision, recall = precision_recall_curve(ranks[name](None), setup.q_labels, g_labels)
        curves[name] = {"precision": precision.tolist(), "recall": recall.tolist()}
    return curves


def add_costs(methods: dict, scale: list[dict], setup: Setup, n: int) -> None:
    """Each method row's bits compared, bits read per gallery image and ms per query at the 10k gallery."""
    query, top_l, n_coarse = setup.query, setup.top_l, setup.n_coarse
    bits_global, bits_local = query.hier.global_bits.shape[1], query.hier.local_bits.shape[1]
    two_level = bits_global + top_l
    bits = {
        "global": bits_global,
        "local_full": bits_local,
        "single_level": query.single.shape[1],
        "single_level_local": query.single_local.shape[1],
        "float_cosine": None,
    }
    for name, row in methods.items():
        row["bits_compared"] = bits.get(name, two_level)
        # two-level: H bits over the whole gallery, L more over the K candidates only
        row["bits_per_gallery_image"] = (
            round(bits_global + top_l * n_coarse / n, 2) if name.startswith("hier") else bits[name]
        )
        row["ms_per_query"] = next(
            (
                r["ms_per_query"]
                for r in scale
                if r["n"] == n and r["method"] == name.replace("_all_components", "")
            ),
            None,
        )
