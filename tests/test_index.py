"""HammingIndex and hierarchical_search against plain brute force and faiss.IndexBinaryFlat."""

import faiss
import numpy as np
import pytest

from hashdemo.retrieval.index import FAISS_K_RATIO, HammingIndex, hierarchical_search


def random_bits(rng: np.random.Generator, n: int, nbits: int) -> np.ndarray:
    return rng.integers(0, 2, size=(n, nbits), dtype=np.uint8)


def brute_force(q: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Popcount of XOR, ranked by (distance, id), padded with -1: the documented contract."""
    dist = (q[:, None, :] != db[None, :, :]).sum(axis=2)
    out_d = np.full((len(q), k), -1, dtype=np.int32)
    out_i = np.full((len(q), k), -1, dtype=np.int64)
    for row in range(len(q)):
        ranked = sorted(range(len(db)), key=lambda j: (dist[row, j], j))[:k]
        out_d[row, : len(ranked)] = dist[row, ranked]
        out_i[row, : len(ranked)] = ranked
    return out_d, out_i


def brute_distances(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    return (q[:, None, :] != db[None, :, :]).sum(axis=2)


@pytest.mark.parametrize("nbits", [12, 37, 64, 100, 512])
def test_search_matches_brute_force_on_both_paths(nbits: int) -> None:
    rng = np.random.default_rng(nbits)
    n = 4 * FAISS_K_RATIO  # k = 1 and 4 go to faiss, k = 7 and n to the numpy sort
    db, q = random_bits(rng, n, nbits), random_bits(rng, 9, nbits)
    index = HammingIndex(db)
    assert index.ntotal == n
    for k in (1, 4, 7, n):
        dist, ids = index.search(q, k)
        assert dist.dtype == np.int32 and ids.dtype == np.int64 and dist.shape == (9, k)
        ref_d, ref_i = brute_force(q, db, k)
        np.testing.assert_array_equal(dist, ref_d)
        np.testing.assert_array_equal(ids, ref_i)  # includes the ascending-id tie rule


@pytest.mark.parametrize("nbits", [32, 64, 128])
def test_search_matches_faiss(nbits: int) -> None:
    # 4000 codes at 32 bits give many ties at the k-th distance.
    rng = np.random.default_rng(1)
    db, q = random_bits(rng, 4000, nbits), random_bits(rng, 20, nbits)
    ref = faiss.IndexBinaryFlat(nbits)
    ref.add(np.packbits(db, axis=1))
    ref_d, ref_i = ref.search(np.packbits(q, axis=1), 50)
    dist, ids = HammingIndex(db).search(q, 50)
    np.testing.assert_array_equal(dist, ref_d)
    for row in range(len(q)):  # below the k-th distance the sets agree; at it, both keep the smallest ids
        assert set(ids[row]) == set(ref_i[row])


def test_faiss_path_keeps_smallest_ids_in_boundary_tie() -> None:
    rng = np.random.default_rng(2)
    db = random_bits(rng, 50, 16)
    db = np.concatenate([db, np.repeat(db[:1], 1000, axis=0)])  # 1001 copies of code 0
    dist, ids = HammingIndex(db).search(db[:1], 10)  # 10 * 64 <= 1050: the faiss path
    np.testing.assert_array_equal(dist, np.zeros((1, 10)))
    np.testing.assert_array_equal(ids[0], [0, *range(50, 59)])


@pytest.mark.parametrize("nbits", [12, 37, 70])
def test_distances_on_bit_subsets(nbits: int) -> None:
    rng = np.random.default_rng(4)
    db, q = random_bits(rng, 200, nbits), random_bits(rng, 6, nbits)
    index = HammingIndex(db)
    np.testing.assert_array_equal(index.distances(q), brute_distances(q, db))
    shared = rng.choice(nbits, size=5, replace=False)
    np.testing.assert_array_equal(
        index.distances(q, bit_subset=shared), brute_distances(q[:, shared], db[:, shared])
    )
    per_query = np.stack([rng.choice(nbits, size=8, replace=False) for _ in range(len(q))])
    dist = index.distances(q, bit_subset=per_query)
    for row, subset in enumerate(per_query):
        np.testing.assert_array_equal(dist[row], brute_distances(q[row : row + 1, subset], db[:, subset])[0])


def test_distances_to_candidates() -> None:
    rng = np.random.default_rng(5)
    db, q = random_bits(rng, 100, 20), random_bits(rng, 3, 20)
    cand = np.array([[42, 7, -1, 99], [-1, -1, -1, -1], [5, 4, 3, 2]], dtype=np.int64)
    subset = np.array([1, 5, 9])
    dist = HammingIndex(db).distances(q, bit_subset=subset, candidates=cand)
    for row in range(3):
        for col, c in enumerate(cand[row]):
            expected = -1 if c < 0 else (q[row, subset] != db[c, subset]).sum()
            assert dist[row, col] == expected


def test_k_beyond_ntotal_pads_with_minus_one() -> None:
    rng = np.random.default_rng(6)
    q = random_bits(rng, 2, 16)
    dist, ids = HammingIndex(random_bits(rng, 3, 16)).search(q, 5)
    assert (ids[:, 3:] == -1).all() and (dist[:, 3:] == -1).all()
    assert sorted(ids[0, :3]) == [0, 1, 2]


def test_bad_input_raises() -> None:
    rng = np.random.default_rng(8)
    index = HammingIndex(random_bits(rng, 10, 16))
    q = random_bits(rng, 2, 16)
    bad_calls = {
        "columns": lambda: index.search(random_bits(rng, 2, 17), 3),
        "2-D": lambda: index.search(q[0], 3),
        "0/1": lambda: index.search(q * 2, 3),
        "0/1 ": lambda: index.search(q.astype(float) / 2, 3),
        "positive integer": lambda: index.search(q, 0),
        "positive integer ": lambda: index.search(q, 1.5),
        "bit positions": lambda: index.distances(q, bit_subset=[0, 16]),
        "bit positions ": lambda: index.distances(q, bit_subset=[-1, 2]),
        "repeat": lambda: index.distances(q, bit_subset=[1, 1]),
        "shape": lambda: index.distances(q, bit_subset=np.zeros((3, 2), dtype=int)),
        "integer bit": lambda: index.distances(q, bit_subset=[0.0, 1.0]),
        "lie in": lambda: index.distances(q, candidates=np.array([[0, 10]] * 2)),
        "candidates must": lambda: index.distances(q, candidates=np.array([[0, 1]])),
    }
    for message, call in bad_calls.items():
        with pytest.raises(ValueError, match=message.strip()):
            call()


def hierarchical_reference(gdb, ldb, gq, lq, selected, K, k):
    """SPEC sec. 1 in plain Python: coarse top-K by (global, id), fine by (local, global, id)."""
    out = []
    for row in range(len(gq)):
        g = [int((gq[row] != gdb[j]).sum()) for j in range(len(gdb))]
        coarse = sorted(range(len(gdb)), key=lambda j: (g[j], j))[:K]
        sel = list(selected[row])
        loc = {j: int((lq[row, sel] != ldb[j, sel]).sum()) for j in coarse}
        fine = sorted(coarse, key=lambda j: (loc[j], g[j], j))[:k]
        out.append(([j for j in fine], [loc[j] for j in fine], [g[j] for j in fine]))
    return out


@pytest.mark.parametrize("K", [10, 60, 80])
def test_hierarchical_search_matches_reference(K: int) -> None:
    rng = np.random.default_rng(9)
    gdb, ldb = random_bits(rng, 60, 8), random_bits(rng, 60, 24)  # 8 global bits: many ties
    gq, lq = random_bits(rng, 5, 8), random_bits(rng, 5, 24)
    selected = np.stack([rng.choice(24, size=6, replace=False) for _ in range(5)])
    ids, local_d, global_d = hierarchical_search(HammingIndex(gdb), HammingIndex(ldb), gq, lq, selected, K)
    assert ids.shape == local_d.shape == global_d.shape == (5, K)
    for row, (ref_ids, ref_loc, ref_glob) in enumerate(
        hierarchical_reference(gdb, ldb, gq, lq, selected, K, K)
    ):
        n = len(ref_ids)  # K > gallery size pads with -1
        np.testing.assert_array_equal(ids[row, :n], ref_ids)
        np.testing.assert_array_equal(local_d[row, :n], ref_loc)
        np.testing.assert_array_equal(global_d[row, :n], ref_glob)
        assert (ids[row, n:] == -1).all() and (local_d[row, n:] == -1).all()


def test_hierarchical_search_rejects_bad_input() -> None:
    rng = np.random.default_rng(10)
    g_index, l_index = HammingIndex(random_bits(rng, 5, 8)), HammingIndex(random_bits(rng, 5, 16))
    gq, lq = random_bits(rng, 2, 8), random_bits(rng, 2, 16)
    sel = np.array([[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="K must"):
        hierarchical_search(g_index, l_index, gq, lq, sel, 0)
    with pytest.raises(ValueError, match="selected_bits"):
        hierarchical_search(g_index, l_index, gq, lq, np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="same gallery"):
        hierarchical_search(g_index, HammingIndex(random_bits(rng, 6, 16)), gq, lq, sel, 3)


def stable_top_k(q: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The contract by a stable sort of all distances (brute_force is too slow at these sizes)."""
    dist = np.stack([(row[None] != db).sum(axis=1) for row in q])
    ids = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, ids, axis=1).astype(np.int32), ids


@pytest.mark.parametrize(
    ("nbits", "n", "k", "duplicated"),
    [
        (32, 30_000, 300, False),
        (32, 20_000, 500, True),
        (20, 30_000, 400, True),
        (64, 20_000, 50, False),
        (9, 5_000, 60, False),
        (40, 10_000, 100, True),
    ],
)
def test_multi_index_path_matches_a_full_sort(monkeypatch, nbits, n, k, duplicated) -> None:
    """Multi-index hashing (the path for >= 1M short codes) forced on smaller galleries: exact top k,
    ties at the cut by ascending id; `duplicated` galleries repeat codes so ties are everywhere."""
    monkeypatch.setattr("hashdemo.retrieval.index.MULTI_INDEX_MIN", 1)
    monkeypatch.setattr("hashdemo.retrieval.index.FAISS_K_RATIO", 1)
    rng = np.random.default_rng(nbits + n)
    db = random_bits(rng, n, nbits)
    if duplicated:
        db = db[rng.integers(0, n // 20, n)]
    q = np.concatenate([random_bits(rng, 4, nbits), db[:2]])
    index = HammingIndex(db)
    assert index._multi is not None
    dist, ids = index.search(q, k)
    ref_d, ref_i = stable_top_k(q, db, k)
    np.testing.assert_array_equal(dist, ref_d)
    np.testing.assert_array_equal(ids, ref_i)


def test_index_from_packed_codes_equals_index_from_bits() -> None:
    rng = np.random.default_rng(11)
    db, q = random_bits(rng, 500, 37), random_bits(rng, 3, 37)
    packed = HammingIndex.from_packed(np.packbits(db, axis=1), 37)
    for k in (5, 500):
        np.testing.assert_array_equal(packed.search(q, k)[1], HammingIndex(db).search(q, k)[1])
    with pytest.raises(ValueError, match="packed codes"):
        HammingIndex.from_packed(np.packbits(db, axis=1)[:, :3], 37)
