"""Evaluation helpers on hand-made data and against brute force (SPEC secs. 1 and 3)."""

import numpy as np
import pytest

from hashdemo.data.label_ops import OPERATORS
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.protocol import (
    composed_map,
    hierarchical_ranking,
    jaccard_at_k,
    sample_composed_pairs,
)

# ----------------------------------------------------------------------------- jaccard@k

# gallery label sets over 3 classes: id0 {0}, id1 {0,1}, id2 {2}, id3 {1,2}
JACCARD_DB = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=np.uint8)


def test_jaccard_at_k_by_hand() -> None:
    targets = np.array([[1, 1, 0], [0, 0, 1]], dtype=np.uint8)  # q0 T={0,1}, q1 T={2}
    ranked = np.array([[1, 0, 2, 3], [3, 0, 1, 2]])
    # k=1: q0 id1 {0,1} vs {0,1} -> 1; q1 id3 {1,2} vs {2} -> 1/2.  mean (1 + 1/2) / 2 = 3/4
    assert jaccard_at_k(ranked, targets, JACCARD_DB, k=1) == pytest.approx(0.75)
    # k=2 adds q0 id0 {0} vs {0,1} -> 1/2 and q1 id0 {0} vs {2} -> 0.  mean (1 + 1/2 + 1/2 + 0) / 4 = 1/2
    assert jaccard_at_k(ranked, targets, JACCARD_DB, k=2) == pytest.approx(0.5)
    # k=4 adds q0: id2 -> 0, id3 {1,2} vs {0,1} -> 1/3; q1: id1 -> 0, id2 -> 1.
    # sum = 1 + 1/2 + 0 + 1/3 + 1/2 + 0 + 0 + 1 = 10/3 over 8 pairs = 5/12
    assert jaccard_at_k(ranked, targets, JACCARD_DB, k=4) == pytest.approx(5 / 12)


def test_jaccard_at_k_ignores_columns_beyond_k() -> None:
    targets = np.array([[0, 0, 1]], dtype=np.uint8)
    a = jaccard_at_k(np.array([[2, 0, 1]]), targets, JACCARD_DB, k=1)
    b = jaccard_at_k(np.array([[2, 1, 0]]), targets, JACCARD_DB, k=1)
    assert a == b == pytest.approx(1.0)


# ----------------------------------------------------------------------------- composed mAP

# Five gallery codes (4 bits) and label sets (3 classes).
COMPOSED_DB_BITS = np.array(
    [
        [0, 0, 0, 0],  # id0 {0}
        [1, 1, 0, 0],  # id1 {0,1}
        [1, 1, 1, 0],  # id2 {0,1}
        [0, 0, 1, 1],  # id3 {2}
        [1, 1, 1, 1],  # id4 {0,1,2}
    ],
    dtype=np.uint8,
)
COMPOSED_DB_LABELS = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.uint8)
# q0 = 0111 with T = {0,1}: distances id0 3, id1 3, id2 2, id3 1, id4 1
#   ranking (distance, then id): id3, id4, id2, id0, id1; exact-set relevant: id2 (rank 3), id1 (rank 5)
# q1 = 0000 with T = {2}: distances id0 0, id1 2, id2 3, id3 2, id4 4
#   ranking: id0, id1, id3, id2, id4; relevant: id3 only (rank 3) -- id4 {0,1,2} is not the set {2}
COMPOSED_QUERY_BITS = np.array([[0, 1, 1, 1], [0, 0, 0, 0]], dtype=np.uint8)
COMPOSED_TARGETS = np.array([[1, 1, 0], [0, 0, 1]], dtype=np.uint8)
# Jaccard(T, labels) along each ranking:
#   q0 T={0,1}: id3 0, id4 2/3, id2 1, id0 1/2, id1 1
#   q1 T={2}:   id0 0, id1 0, id3 1, id2 0, id4 1/3


@pytest.mark.parametrize(
    "k, expected_map, expected_jaccard",
    [
        # q0 AP = (P@3 + P@5) / 2 = (1/3 + 2/5) / 2 = 11/30; q1 AP = P@3 / 1 = 1/3
        (5, (11 / 30 + 1 / 3) / 2, (0 + 2 / 3 + 1 + 1 / 2 + 1 + 0 + 0 + 1 + 0 + 1 / 3) / 10),
        # cut at 3 (DeepHash: divide by the relevant items inside the cut): q0 1/3 / 1, q1 1/3 / 1
        (3, 1 / 3, (0 + 2 / 3 + 1 + 0 + 0 + 1) / 6),
        # cut at 2: neither query has a relevant item in its top 2, so both APs are 0
        (2, 0.0, (0 + 2 / 3 + 0 + 0) / 4),
    ],
)
def test_composed_map_by_hand(k: int, expected_map: float, expected_jaccard: float) -> None:
    got = composed_map(COMPOSED_QUERY_BITS, COMPOSED_TARGETS, COMPOSED_DB_BITS, COMPOSED_DB_LABELS, k=k)
    assert got["map@100"] == pytest.approx(expected_map)
    assert got["jaccard@10"] == pytest.approx(expected_jaccard)


def test_composed_map_gallery_smaller_than_k() -> None:
    got = composed_map(COMPOSED_QUERY_BITS, COMPOSED_TARGETS, COMPOSED_DB_BITS, COMPOSED_DB_LABELS)  # k=100
    # mAP@100 covers the whole 5-item gallery: as k=5 above
    assert got["map@100"] == pytest.approx((11 / 30 + 1 / 3) / 2)
    # jaccard@10 has 5 real results per query (sum 19/6 for q0, 4/3 for q1 = 27/6 in all). A missing
    # result counts as Jaccard 0, as precision_at_k counts a miss (jaccard_at_k's contract): 27/6 / 20.
    # Ignoring the padding would give 0.45; reading id -1 as id 4 would give 0.475.
    assert got["jaccard@10"] == pytest.approx(0.225)


# ----------------------------------------------------------------------------- composed pairs


def brute_target(operator: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """SPEC sec. 2 label rule on Python sets, back to a multi-hot row."""
    a, b = set(np.flatnonzero(left)), set(np.flatnonzero(right))
    if operator == "union":
        out = a | b
    elif operator == "intersection":
        out = a & b
    else:
        out = a - (a & b) if len(a) > len(a & b) else a
    row = np.zeros_like(left)
    row[sorted(out)] = 1
    return row


def pair_labels() -> np.ndarray:
    rng = np.random.default_rng(5)
    return (rng.random((30, 5)) < 0.35).astype(np.uint8)


@pytest.mark.parametrize("operator", OPERATORS)
def test_sample_composed_pairs_targets_are_allowed_non_empty_and_correct(operator: str) -> None:
    labels = pair_labels()
    allowed = np.unique(labels[:15], axis=0)  # a proper subset of the producible label sets
    allowed_rows = {tuple(row) for row in allowed}
    ids_a, ids_b, targets = sample_composed_pairs(labels, operator, 40, np.random.default_rng(1), allowed)
    assert len(ids_a) == len(ids_b) == len(targets) == 40
    assert targets.shape == (40, labels.shape[1])
    for a, b, t in zip(ids_a, ids_b, targets, strict=True):
        assert 0 <= a < len(labels) and 0 <= b < len(labels) and a != b
        assert t.sum() > 0
        assert tuple(t) in allowed_rows
        np.testing.assert_array_equal(t, brute_target(operator, labels[a], labels[b]))


@pytest.mark.parametrize("operator", OPERATORS)
def test_sample_composed_pairs_is_deterministic_for_a_seed(operator: str) -> None:
    labels = pair_labels()
    allowed = np.unique(labels, axis=0)
    first = sample_composed_pairs(labels, operator, 25, np.random.default_rng(7), allowed)
    second = sample_composed_pairs(labels, operator, 25, np.random.default_rng(7), allowed)
    other = sample_composed_pairs(labels, operator, 25, np.random.default_rng(8), allowed)
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], other[0]) or not np.array_equal(first[1], other[1])


def test_sample_composed_pairs_returns_nothing_when_no_target_is_allowed() -> None:
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.uint8)
    allowed = np.array([[0, 0, 1]], dtype=np.uint8)  # class 2 appears in no image
    ids_a, ids_b, targets = sample_composed_pairs(labels, "union", 10, np.random.default_rng(0), allowed)
    assert len(ids_a) == len(ids_b) == len(targets) == 0


# ----------------------------------------------------------------------------- hierarchical ranking


def brute_hierarchical(query: Encoded, db: Encoded, selected: np.ndarray, n_coarse: int) -> list[list[int]]:
    """Coarse top-K by (global distance, id), re-ranked by (distance on the selected local bits,
    global distance, id); then the rest of the gallery by (global distance, id)."""
    rankings = []
    n = len(db.global_bits)
    for q in range(len(query.global_bits)):
        gd = [int((query.global_bits[q] != db.global_bits[i]).sum()) for i in range(n)]
        cols = list(selected[q])
        ld = [int((query.local_bits[q, cols] != db.local_bits[i, cols]).sum()) for i in range(n)]
        coarse = sorted(range(n), key=lambda i, gd=gd: (gd[i], i))
        top = sorted(coarse[:n_coarse], key=lambda i, gd=gd, ld=ld: (ld[i], gd[i], i))
        rest = sorted(set(range(n)) - set(coarse[:n_coarse]), key=lambda i, gd=gd: (gd[i], i))
        rankings.append(top + rest)
    return rankings


def random_encoded(rng: np.random.Generator, n: int, h: int, c: int) -> Encoded:
    return Encoded(
        global_bits=rng.integers(0, 2, (n, h), dtype=np.uint8),
        local_bits=rng.integers(0, 2, (n, c), dtype=np.uint8),
        pooled=np.zeros((n, c), np.float32),
        label_probs=np.zeros((n, 10), np.float32),
    )


@pytest.mark.parametrize(
    "n, n_coarse, seed",
    [
        (30, 10, 0),
        (30, 10, 1),
        (30, 1, 2),
        (30, 50, 3),  # K beyond the gallery: everything is re-ranked
        (700, 10, 4),  # K * 64 <= N: the coarse search takes the faiss path
    ],
)
def test_hierarchical_ranking_matches_brute_force(n: int, n_coarse: int, seed: int) -> None:
    h, c, top_l, n_queries = 8, 16, 5, 4
    rng = np.random.default_rng(seed)
    db = random_encoded(rng, n, h, c)
    query = random_encoded(rng, n_queries, h, c)
    selected = np.stack([rng.permutation(c)[:top_l] for _ in range(n_queries)])
    got = hierarchical_ranking(query, db, selected, n_coarse)
    assert got.shape == (n_queries, n)
    for row in got:
        assert sorted(row.tolist()) == list(range(n))  # a permutation of the gallery
    assert got.tolist() == brute_hierarchical(query, db, selected, n_coarse)
    # with 8-bit global codes ties are everywhere, so the re-rank must actually have changed the order
    coarse_only = brute_hierarchical(query, db, np.zeros((n_queries, 0), int), n_coarse)
    if n_coarse > 1:
        assert got.tolist() != coarse_only
