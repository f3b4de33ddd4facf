"""Retrieval evaluation shared by training (selection on val) and `hashdemo.evaluate` (query vs gallery).

Relevance follows the evaluation protocol (docs/methods.md): "shares a label" for single-image
retrieval (plus exact label set), "label set equals the target T" for composed queries.
"""

from __future__ import annotations

import numpy as np

from hashdemo.data.label_ops import OPERATORS, compose_chain, jaccard
from hashdemo.data.split import Split
from hashdemo.model.code_ops import operator_bits
from hashdemo.model.networks import CodeOperators, Encoded, HashNet, encode_split
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.metrics import mean_average_precision

VAL_QUERIES = 500  # val is split into 500 queries against the other 1500 for model selection
SUBSET = {"queries": 100, "gallery": 1000}  # what tests recompute from the shipped weights


def hamming_ranking(query_bits: np.ndarray, db_bits: np.ndarray, k: int | None = None) -> np.ndarray:
    """(Q, k) gallery ids by Hamming distance, ties by id; k=None ranks the whole gallery."""
    return HammingIndex(db_bits).search(query_bits, k or len(db_bits))[1]


def coarse_candidates(share: float, n: int) -> int:
    """K, the coarse step's candidates, as its share of a database of n images (at least one)."""
    return max(1, round(share * n))


def bits_per_image(global_bits: int, top_l: int, n_coarse: int, n: int) -> float:
    """Bits the two-level search reads per database image: H for every image, L more for the K candidates."""
    return round(global_bits + top_l * n_coarse / n, 2)


def validation_ids(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint query and database ids within the val split: the first VAL_QUERIES (at most a quarter
    of a small val split, as for an imported folder) against the rest."""
    ids = np.arange(n)
    queries = min(VAL_QUERIES, n // 4)
    return ids[:queries], ids[queries:]


def sample_compositions(
    labels: np.ndarray, operators: tuple[str, ...], n: int, rng: np.random.Generator, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Random operand ids (n, len(operators) + 1), distinct within a row, whose target
    T = ((l_0 op_1 l_1) op_2 l_2) ... is non-empty and one of the `allowed` label sets; and T (n, C).

    Fewer than n rows only if the labels cannot give more (rejection sampling in bulk).
    """
    allowed_keys = {row.tobytes() for row in allowed.astype(np.uint8)}
    ids, targets = [], []
    for _ in range(50):
        draw = np.stack([rng.integers(0, len(labels), 4 * n) for _ in range(len(operators) + 1)], axis=1)
        t = compose_chain(operators, [labels[draw[:, i]] for i in range(len(operators) + 1)]).astype(np.uint8)
        distinct = (np.sort(draw, axis=1)[:, 1:] != np.sort(draw, axis=1)[:, :-1]).all(axis=1)
        ok = distinct & (t.sum(1) > 0) & np.array([row.tobytes() in allowed_keys for row in t])
        ids.append(draw[ok])
        targets.append(t[ok])
        if sum(len(x) for x in ids) >= n:
            break
    return np.concatenate(ids)[:n], np.concatenate(targets)[:n]


def sample_composed_pairs(
    labels: np.ndarray, operator: str, n_pairs: int, rng: np.random.Generator, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random pairs (a, b) whose target T = a (op) b is non-empty and one of the `allowed` label sets:
    ids_a, ids_b (n,) and targets (n, C)."""
    ids, targets = sample_compositions(labels, (operator,), n_pairs, rng, allowed)
    return ids[:, 0], ids[:, 1], targets


def jaccard_at_k(ranked_ids: np.ndarray, targets: np.ndarray, db_labels: np.ndarray, k: int = 10) -> float:
    """Mean Jaccard between each target label set and the labels of its top-k results.

    A missing result (id -1, gallery smaller than k) counts as Jaccard 0, as precision@k counts a miss.
    """
    top_ids = ranked_ids[:, :k]
    similarity = np.stack(
        [
            jaccard(target[None], db_labels[np.maximum(ids, 0)])[0]
            for target, ids in zip(targets, top_ids, strict=True)
        ]
    )  # (Q, k)
    return float(np.mean(np.where(top_ids >= 0, similarity, 0.0)))


def composed_map(
    generated_bits: np.ndarray, targets: np.ndarray, db_bits: np.ndarray, db_labels: np.ndarray, k: int = 100
) -> dict[str, float]:
    """mAP@k with "label set equals T" relevance, and jaccard@10, for composed queries."""
    ranked = hamming_ranking(generated_bits, db_bits, k)
    return {
        "map@100": mean_average_precision(ranked, targets, db_labels, exact=True, k=k),
        "jaccard@10": jaccard_at_k(ranked, targets, db_labels),
    }


def hier_validation(model: HashNet, split: Split, with_local: bool = True) -> dict[str, float]:
    """Val mAP of the global and the full local code; selection is their mean (global alone for
    the one-level baseline, whose local code is not trained)."""
    encoded = encode_split(model, split)
    q, db = validation_ids(len(split.labels))
    scores = {
        level: mean_average_precision(hamming_ranking(bits[q], bits[db]), split.labels[q], split.labels[db])
        for level, bits in (("global", encoded.global_bits), ("local", encoded.local_bits))
    }
    selection = (scores["global"] + scores["local"]) / 2 if with_local else scores["global"]
    return {**scores, "selection": selection}


def dcoh_validation(
    model: HashNet, operators: CodeOperators, split: Split, n_pairs: int = 300
) -> dict[str, float]:
    """Val single-image mAP and composed mAP@100 per operator; selection is the composed mean."""
    bits = encode_split(model, split).global_bits
    q, db = validation_ids(len(split.labels))
    rng = np.random.default_rng(0)
    scores = {
        "single_map": mean_average_precision(
            hamming_ranking(bits[q], bits[db]), split.labels[q], split.labels[db]
        )
    }
    for operator in OPERATORS:
        a, b, targets = sample_composed_pairs(
            split.labels[q], operator, n_pairs, rng, np.unique(split.labels[db], axis=0)
        )
        generated = operator_bits(operators, operator, bits[q][a], bits[q][b])
        scores[operator] = composed_map(generated, targets, bits[db], split.labels[db])["map@100"]
    return {**scores, "selection": float(np.mean([scores[op] for op in OPERATORS]))}


def hierarchical_ranking(
    query: Encoded,
    db: Encoded,
    selected: np.ndarray,
    n_coarse: int,
    k: int | None = None,
    global_weight: float = 0.0,
) -> np.ndarray:
    """(Q, k) ids: coarse top-K on H_g re-ranked on the selected bits of H_l (eq. 2.5; with a positive
    `global_weight`, on the fused distance, `hierarchical_search`). With k=None, the full ranking: the
    rest of the gallery follows in global-code order, so whole-gallery mAP is defined."""
    n_coarse = min(n_coarse, len(db.global_bits))
    global_index, local_index = HammingIndex(db.global_bits), HammingIndex(db.local_bits)
    reranked = hierarchical_search(
        global_index, local_index, query.global_bits, query.local_bits, selected, n_coarse, global_weight
    )[0]
    if k is not None and k <= n_coarse:
        return reranked[:, :k]
    coarse = global_index.search(query.global_bits, len(db.global_bits))[1]
    return np.concatenate([reranked, coarse[:, n_coarse:]], axis=1)[:, :k]


def subset_scores(
    query: Encoded,
    gallery: Encoded,
    q_labels: np.ndarray,
    g_labels: np.ndarray,
    selected: np.ndarray | None = None,
    n_coarse: int | None = None,
) -> dict:
    """mAP of the first 100 queries against the first 1000 gallery images: small enough for a test
    to recompute from the shipped weights (global code; and the CAM re-rank when `selected` is given).
    A smaller dataset's whole query split and gallery."""
    sizes = {
        "queries": min(SUBSET["queries"], len(q_labels)),
        "gallery": min(SUBSET["gallery"], len(g_labels)),
    }
    q, g = np.arange(sizes["queries"]), np.arange(sizes["gallery"])
    scores = {
        **sizes,
        "global_map": mean_average_precision(
            hamming_ranking(query.global_bits[q], gallery.global_bits[g]), q_labels[q], g_labels[g]
        ),
    }
    if selected is not None:
        ranked = hierarchical_ranking(query.take(q), gallery.take(g), selected[q], min(n_coarse, len(g)))
        scores["hier_cam_map"] = mean_average_precision(ranked, q_labels[q], g_labels[g])
    return scores
