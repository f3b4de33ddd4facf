"""Retrieval metrics over rankings of a gallery with multi-hot labels (docs/methods.md, Evaluation protocol).

Rankings are `ranked_ids` (Q, n) int64 gallery ids, best first, with -1 padding for missing
results (ignored: never relevant). They come from `hashdemo.index`, whose tie rule decides
the order at equal Hamming distance: ascending id. Relevance is "shares at least one label"
or, with `exact=True`, "has the same label set".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashdemo.checks import binary_matrix, positive_int
from hashdemo.data.label_ops import jaccard


def relevance(query_labels: np.ndarray, db_labels: np.ndarray, *, exact: bool = False) -> np.ndarray:
    """Relevance (Q, N) bool: shares at least one label, or the same label set if `exact`."""
    # float32 sends the label overlap through BLAS; counts stay exact far beyond any C.
    q = binary_matrix(query_labels, "query_labels").astype(np.float32)
    db = binary_matrix(db_labels, "db_labels").astype(np.float32)
    if q.shape[1] != db.shape[1]:
        raise ValueError(
            f"query_labels have {q.shape[1]} classes and db_labels {db.shape[1]}; they must match."
        )
    shared = q @ db.T  # (Q, N) number of shared labels
    if not exact:
        return shared > 0
    # Equal sets <=> the overlap is as large as both sets.
    return (shared == q.sum(1)[:, None]) & (shared == db.sum(1)[None, :])


def _ranked_relevance(
    ranked_ids: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    exact: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(relevance of each ranked item (Q, n) bool, relevant items in the gallery (Q,) int)."""
    rel = relevance(query_labels, db_labels, exact=exact)
    ids = np.asarray(ranked_ids)
    if ids.ndim != 2 or ids.shape[0] != rel.shape[0]:
        raise ValueError(f"ranked_ids must have shape ({rel.shape[0]}, n), got {ids.shape}.")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ranked_ids must hold integer ids, got dtype {ids.dtype}.")
    if ids.size and (ids.min() < -1 or ids.max() >= rel.shape[1]):
        raise ValueError(f"ranked_ids must lie in [0, {rel.shape[1]}) or be -1 padding.")
    ranked_rel = np.take_along_axis(rel, np.maximum(ids, 0), axis=1) & (ids >= 0)
    return ranked_rel, rel.sum(axis=1)


def mean_average_precision(
    ranked_ids: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    *,
    exact: bool = False,
    k: int | None = None,
) -> float:
    """mAP of the rankings, cut at `k` if given (mAP@k).

    AP = (1 / R) * sum_i P@i * rel_i over the (cut) ranking, where R is the number of relevant
    items within it (the DeepHash-pytorch mAP@k convention) and AP = 0 when R = 0. When the
    ranking covers the whole gallery and k is None, this is the classic whole-gallery AP.
    The mean runs over all queries.
    """
    ap = average_precisions(ranked_ids, query_labels, db_labels, exact=exact, k=k)
    return float(ap.mean()) if len(ap) else 0.0


def average_precisions(
    ranked_ids: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    *,
    exact: bool = False,
    k: int | None = None,
) -> np.ndarray:
    """Each query's AP (Q,) float, as `mean_average_precision` averages them."""
    rel, _ = _ranked_relevance(ranked_ids, query_labels, db_labels, exact)
    if k is not None:
        rel = rel[:, : positive_int("k", k)]
    return aps_of_relevance(rel)


def aps_of_relevance(ranked_relevance: np.ndarray) -> np.ndarray:
    """Each ranking's AP (Q,) from its results' relevance (Q, k) bool: (1 / R) * sum_i P@i * rel_i with R
    the relevant items within the ranking, 0 when R = 0 (the one definition every mAP here uses)."""
    rel = np.asarray(ranked_relevance, dtype=bool)
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    n_rel = hits[:, -1] if rel.shape[1] else np.zeros(len(rel))
    return np.where(rel, precision, 0.0).sum(axis=1) / np.maximum(n_rel, 1)


def map_of_relevance(ranked_relevance: np.ndarray) -> float:
    """mAP of rankings given as their results' relevance (Q, k) bool (`aps_of_relevance`, averaged)."""
    ap = aps_of_relevance(ranked_relevance)
    return float(ap.mean()) if len(ap) else 0.0


def precision_at_k(
    ranked_ids: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int,
    *,
    exact: bool = False,
) -> float:
    """Mean P@k: relevant items in the top k over k; -1 padding or a short ranking count as misses."""
    k = positive_int("k", k)
    rel, _ = _ranked_relevance(ranked_ids, query_labels, db_labels, exact)
    return float((rel[:, :k].sum(axis=1) / k).mean()) if len(rel) else 0.0


def precision_recall_curve(
    ranked_ids: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    *,
    exact: bool = False,
    cutoffs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean precision and recall at each ranking cutoff: two (len(cutoffs),) float arrays.

    Recall divides by all relevant items in the gallery, so it reaches 1.0 at a cutoff
    covering a full ranking. Queries with no relevant gallery item are left out of both
    means (their recall is undefined). Default cutoffs: ~50 log-spaced ranks from 1 to n.
    """
    rel, n_relevant = _ranked_relevance(ranked_ids, query_labels, db_labels, exact)
    n = rel.shape[1]
    if cutoffs is None:
        # Log spacing keeps detail at the top of the ranking, where users look.
        cutoffs = np.unique(np.geomspace(1, max(n, 1), num=50).round().astype(np.int64))
    cutoffs = np.asarray(cutoffs)
    if cutoffs.ndim != 1 or not np.issubdtype(cutoffs.dtype, np.integer) or (cutoffs < 1).any():
        raise ValueError("cutoffs must be a 1-D array of positive integer ranks.")
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError("No query has a relevant gallery item; the PR curve is undefined.")
    hits = np.cumsum(rel[keep], axis=1)
    hits = np.concatenate([np.zeros((len(hits), 1), dtype=hits.dtype), hits], axis=1)
    at = hits[:, np.minimum(cutoffs, n)]  # (Q', len(cutoffs)): hits within each cutoff
    precision = (at / cutoffs).mean(axis=0)
    recall = (at / n_relevant[keep][:, None]).mean(axis=0)
    return precision, recall


def jaccard_ndcg(
    ranked_ids: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, k: int = 100
) -> float:
    """Mean nDCG@k with graded gains: gain = Jaccard(query labels, result labels), discount log2(rank + 1).

    The ideal DCG ranks the whole gallery by gain, so a ranking that misses better items scores below 1.
    A missing result (id -1) gains 0.
    """
    k = positive_int("k", k)
    ids = np.asarray(ranked_ids)[:, :k]
    q = binary_matrix(query_labels, "query_labels")
    db = binary_matrix(db_labels, "db_labels")
    gains = jaccard(q, db)  # (Q, N)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    got = np.where(ids >= 0, np.take_along_axis(gains, np.maximum(ids, 0), axis=1), 0.0)
    dcg = (got * discount[: got.shape[1]]).sum(axis=1)
    ideal = -np.sort(-gains, axis=1)[:, :k]
    idcg = (ideal * discount[: ideal.shape[1]]).sum(axis=1)
    return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0))) if len(ids) else 0.0


def precision_at_ns(
    ranked_ids: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, ns: Sequence[int]
) -> list[float]:
    """Mean P@N at each N of `ns` (the field's precision@N curve), relevance computed once; -1 padding
    or a short ranking count as misses, as in `precision_at_k`."""
    rel, _ = _ranked_relevance(ranked_ids, query_labels, db_labels, False)
    hits = np.cumsum(rel, axis=1)
    out = []
    for n in ns:
        n = positive_int("N", n)
        within = hits[:, min(n, hits.shape[1]) - 1] if hits.shape[1] else np.zeros(len(hits))
        out.append(float((within / n).mean()) if len(hits) else 0.0)
    return out


def radius_curve(
    distances: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, nbits: int
) -> dict[str, list[float]]:
    """Precision and recall of "every code within Hamming radius r", r = 0..nbits (DeepHash-pytorch's
    precision-recall curve of one code), relevance "shares a label".

    `distances` (Q, N) are each query's Hamming distances to the whole gallery. At each radius,
    precision is the mean over the queries that retrieve something, recall the mean over the queries
    with a relevant gallery item, and `empty` the share of queries that retrieve nothing (ties need no
    rule: a radius takes every code at a distance or none). `precision_zero_empty` counts an empty
    answer as precision 0, the convention of "precision within Hamming radius 2" (thulab/DeepHash).
    """
    dist = np.asarray(distances)
    rel = relevance(query_labels, db_labels)
    if dist.shape != rel.shape:
        raise ValueError(f"distances must have shape {rel.shape}, got {dist.shape}.")
    if dist.size and (dist.min() < 0 or dist.max() > nbits):
        raise ValueError(f"distances must lie in [0, {nbits}].")
    n_q = len(dist)
    offsets = (np.arange(n_q) * (nbits + 1))[:, None]
    size = n_q * (nbits + 1)
    retrieved = np.bincount((dist + offsets).ravel(), minlength=size).reshape(n_q, nbits + 1).cumsum(1)
    hits = (
        np.bincount((dist + offsets)[rel], minlength=size).reshape(n_q, nbits + 1).cumsum(1)
        if rel.any()
        else np.zeros((n_q, nbits + 1), dtype=np.int64)
    )
    n_relevant = rel.sum(1)
    some = retrieved > 0
    per_query = np.where(some, hits / np.maximum(retrieved, 1), 0.0)
    with_relevant = n_relevant > 0
    answered = some.sum(0)
    return {
        "radius": list(range(nbits + 1)),
        "precision": (per_query.sum(0) / np.maximum(answered, 1)).tolist(),
        "recall": (
            (hits[with_relevant] / n_relevant[with_relevant, None]).mean(0)
            if with_relevant.any()
            else np.zeros(nbits + 1)
        ).tolist(),
        "precision_zero_empty": per_query.mean(0).tolist() if n_q else [0.0] * (nbits + 1),
        "empty": (1.0 - answered / max(n_q, 1)).tolist(),
    }


def map_of_ranked_labels(
    ranked_labels: np.ndarray, query_labels: np.ndarray, *, exact: bool = False
) -> float:
    """mAP@k of rankings given by their results' labels (Q, k, C) alone, the DeepHash-pytorch mAP@k
    convention of `mean_average_precision` (R = the relevant items within the cut): what a gallery too
    large for a (Q, N) relevance matrix needs. A missing result's labels are all zero (never relevant)."""
    ranked = binary_matrix(ranked_labels.reshape(-1, ranked_labels.shape[-1]), "ranked_labels").reshape(
        ranked_labels.shape
    )
    q = binary_matrix(query_labels, "query_labels")[:, None, :]
    shared = (ranked & q).sum(-1)
    rel = (shared == q.sum(-1)) & (shared == ranked.sum(-1)) if exact else shared > 0
    return map_of_relevance(rel)
