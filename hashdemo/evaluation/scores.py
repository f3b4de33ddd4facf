"""Scoring rankings of the query split: every relevance notion, and each single-image method as a ranker."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hashdemo.evaluation.codes import Codes
from hashdemo.retrieval.metrics import jaccard_ndcg, mean_average_precision, precision_at_k
from hashdemo.retrieval.protocol import hamming_ranking, hierarchical_ranking

TOP = 100  # results per query for the @100 metrics


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


def spread(values: list[float]) -> dict:
    """Mean, standard deviation and count of one metric over seeds."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}


def mean_and_std(runs: list[dict]) -> dict:
    out = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
    out.update({f"{key}_std": float(np.std([r[key] for r in runs])) for key in runs[0]})
    return out


def rankers(
    query: Codes,
    gallery: Codes,
    orders: dict[str, np.ndarray],
    top_l: int,
    n_coarse: int,
    fused_weight: float | None = None,
) -> dict:
    """Each method as `rank(k) -> (Q, k) ids` (k=None: the whole gallery); with a `fused_weight`, also
    `hier_cam_fused`, the CAM bits re-ranked on the fused distance d_L + w d_g."""
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

    def one_level(name: str) -> Callable:
        return lambda k: hamming_ranking(query.one_level[name], gallery.one_level[name], k)

    def two_level(order: np.ndarray, weight: float = 0.0) -> Callable:
        return lambda k: hierarchical_ranking(query.hier, gallery.hier, order[:, :top_l], n_coarse, k, weight)

    fused = {} if fused_weight is None else {"hier_cam_fused": two_level(orders["hier_cam"], fused_weight)}

    return {
        "global": lambda k: hamming_ranking(query.hier.global_bits, gallery.hier.global_bits, k),
        "local_full": lambda k: hamming_ranking(query.hier.local_bits, gallery.hier.local_bits, k),
        **{name: two_level(order) for name, order in orders.items()},
        **fused,
        **{name: one_level(name) for name in query.one_level},
        "float_cosine": cosine,
    }
