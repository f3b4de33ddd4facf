"""Metrics on tiny rankings computed by hand."""

import numpy as np
import pytest

from hashdemo.retrieval.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    relevance,
)

# Gallery of 5 items over 3 classes.
DB = np.array(
    [
        [1, 0, 0],  # id 0
        [0, 1, 0],  # id 1
        [1, 1, 0],  # id 2
        [0, 0, 1],  # id 3
        [1, 0, 0],  # id 4
    ],
    dtype=np.uint8,
)
# Query A = {0}: shares a label with ids 0, 2, 4; same set as ids 0, 4.
# Query B = {1, 2}: shares a label with ids 1, 2, 3; same set as none.
QUERIES = np.array([[1, 0, 0], [0, 1, 1]], dtype=np.uint8)
# A ranks the whole gallery; B's ranking is cut after 3 results and padded with -1.
RANKED = np.array([[3, 0, 1, 2, 4], [1, 3, 0, -1, -1]], dtype=np.int64)


def test_relevance_shared_vs_exact() -> None:
    np.testing.assert_array_equal(relevance(QUERIES, DB), [[1, 0, 1, 0, 1], [0, 1, 1, 1, 0]])
    np.testing.assert_array_equal(relevance(QUERIES, DB, exact=True), [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    assert relevance(QUERIES.astype(bool), DB.astype(bool)).dtype == np.bool_


def test_mean_average_precision_by_hand() -> None:
    # Shared. A: rel [0,1,0,1,1] -> (P@2 + P@4 + P@5) / 3 = (1/2 + 2/4 + 3/5) / 3 = 1.6 / 3.
    #         B: rel [1,1,0,-,-] -> (P@1 + P@2) / 2 = 1 (R counts relevant items in the list).
    assert mean_average_precision(RANKED, QUERIES, DB) == pytest.approx((1.6 / 3 + 1.0) / 2)
    # Exact. A: rel [0,1,0,0,1] -> (1/2 + 2/5) / 2 = 0.45.  B: nothing relevant -> AP 0.
    assert mean_average_precision(RANKED, QUERIES, DB, exact=True) == pytest.approx(0.45 / 2)


def test_map_at_k_convention() -> None:
    # @2. A: top [3, 0] rel [0,1] -> R_2 = 1, AP = P@2 / 1 = 1/2.  B: rel [1,1] -> 1.
    assert mean_average_precision(RANKED, QUERIES, DB, k=2) == pytest.approx(0.75)
    # @1. A: top [3] not relevant -> AP 0 (still averaged in).  B: 1.
    assert mean_average_precision(RANKED, QUERIES, DB, k=1) == pytest.approx(0.5)
    # k beyond the ranking length is the whole list.
    assert mean_average_precision(RANKED, QUERIES, DB, k=50) == mean_average_precision(RANKED, QUERIES, DB)


def test_precision_at_k_by_hand() -> None:
    # @2: A 1/2, B 2/2.  @5: A 3/5, B 2/5 (the two -1 pads count as misses).
    assert precision_at_k(RANKED, QUERIES, DB, 2) == pytest.approx(0.75)
    assert precision_at_k(RANKED, QUERIES, DB, 5) == pytest.approx(0.5)
    # Exact @4: A top [3,0,1,2] -> 1/4, B 0.
    assert precision_at_k(RANKED, QUERIES, DB, 4, exact=True) == pytest.approx(0.125)


def test_precision_recall_curve_by_hand() -> None:
    # Cutoffs 1..5. Hits A: [0,1,1,2,3] of 3 relevant; B: [1,2,2,2,2] of 3 relevant.
    precision, recall = precision_recall_curve(RANKED, QUERIES, DB, cutoffs=np.arange(1, 6))
    np.testing.assert_allclose(precision, [(0 + 1) / 2, (1 / 2 + 1) / 2, (1 / 3 + 2 / 3) / 2, 0.5, 0.5])
    np.testing.assert_allclose(recall, [1 / 6, 1 / 2, 1 / 2, 2 / 3, 5 / 6])


def test_precision_recall_curve_full_ranking_ends_at_one() -> None:
    rng = np.random.default_rng(0)
    db = rng.integers(0, 2, size=(200, 5), dtype=np.uint8)
    queries = rng.integers(0, 2, size=(30, 5), dtype=np.uint8)
    ranked = np.argsort(rng.random((30, 200)), axis=1)
    for exact in (False, True):
        precision, recall = precision_recall_curve(ranked, queries, db, exact=exact)
        assert len(precision) == len(recall) > 10
        assert (np.diff(recall) >= 0).all()
        assert recall[-1] == pytest.approx(1.0)


def test_padding_is_ignored() -> None:
    # Padding never counts as relevant, wherever it sits.
    padded = np.array([[3, -1, 0, 1, 2, 4, -1]], dtype=np.int64)
    # rel [0,-,1,0,1,1,-] -> (P@3 + P@5 + P@6) / 3 = (1/3 + 2/5 + 3/6) / 3.
    expected = (1 / 3 + 2 / 5 + 3 / 6) / 3
    assert mean_average_precision(padded, QUERIES[:1], DB) == pytest.approx(expected)
    all_padding = np.full((2, 4), -1, dtype=np.int64)
    assert mean_average_precision(all_padding, QUERIES, DB) == 0.0
    assert precision_at_k(all_padding, QUERIES, DB, 3) == 0.0


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError):
        mean_average_precision(np.array([[0, 5]]), QUERIES[:1], DB)  # id beyond the gallery
    with pytest.raises(ValueError):
        mean_average_precision(RANKED, QUERIES[:1], DB)  # rows do not match queries
    with pytest.raises(ValueError):
        mean_average_precision(RANKED, QUERIES, DB, k=0)
    with pytest.raises(ValueError):
        relevance(QUERIES * 2, DB)
    with pytest.raises(ValueError):
        relevance(QUERIES, DB[:, :2])
    with pytest.raises(ValueError):
        precision_recall_curve(RANKED, QUERIES, DB, cutoffs=np.array([0, 1]))


def test_jaccard_ndcg_by_hand() -> None:
    from hashdemo.retrieval.metrics import jaccard_ndcg

    query = np.array([[1, 1, 0]])
    db = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])  # gains 1, 1/2, 0
    # ideal order 0, 1, 2: IDCG@2 = 1 + 0.5 / log2(3)
    idcg = 1 + 0.5 / np.log2(3)
    assert jaccard_ndcg(np.array([[0, 1, 2]]), query, db, k=2) == pytest.approx(1.0)
    assert jaccard_ndcg(np.array([[1, 0, 2]]), query, db, k=2) == pytest.approx((0.5 + 1 / np.log2(3)) / idcg)
    assert jaccard_ndcg(np.array([[2, -1, 1]]), query, db, k=2) == pytest.approx(0.0)
    assert jaccard_ndcg(np.array([[2, 1]]), np.array([[0, 0, 0]]), db, k=2) == 0.0  # no gain anywhere


def test_novelty_is_one_minus_the_nearest_cosine() -> None:
    from hashdemo.retrieval.novelty import novelty, unit_rows

    gallery = unit_rows(np.array([[1.0, 0.0], [0.0, 2.0]]))
    query = np.array([[3.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(novelty(query, gallery), [0.0, 1 - np.sqrt(0.5), 1.0])
