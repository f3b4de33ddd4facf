"""HammingIndex and hierarchical_search against plain brute force and faiss.IndexBinaryFlat."""

import faiss
import numpy as np
import pytest

import hashdemo.index as index_module
from hashdemo.index import HammingIndex, hamming_distances, hierarchical_search, pack_bits


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


@pytest.mark.parametrize("backend", ["numpy", "auto", "faiss"])
@pytest.mark.parametrize("nbits", [12, 37, 64, 100])
def test_search_matches_brute_force(backend: str, nbits: int) -> None:
    rng = np.random.default_rng(nbits)
    db, q = random_bits(rng, 300, nbits), random_bits(rng, 9, nbits)
    index = HammingIndex(nbits, backend=backend)
    index.add(db[:120])  # two adds: ids continue across calls
    index.add(db[120:])
    assert index.ntotal == 300
    for k in (1, 7, 300):
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
    ref.add(pack_bits(db))
    ref_d, ref_i = ref.search(pack_bits(q), 50)
    for backend in ("numpy", "auto", "faiss"):
        index = HammingIndex(nbits, backend=backend)
        index.add(db)
        dist, ids = index.search(q, 50)
        np.testing.assert_array_equal(dist, ref_d)
        # Below the k-th distance the sets must agree; at it, both keep the smallest ids.
        for row in range(len(q)):
            assert set(ids[row]) == set(ref_i[row])


def test_faiss_thread_pool_path_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_POOL_MIN_WORK", 1)  # force the batched faiss path
    rng = np.random.default_rng(11)
    db, q = random_bits(rng, 3000, 32), random_bits(rng, 7, 32)
    results = []
    for backend in ("numpy", "faiss"):
        index = HammingIndex(32, backend=backend)
        index.add(db)
        results.append(index.search(q, 40))
    threads = faiss.omp_get_max_threads()
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    index.search(q[:1], 40)  # the single-query path turns OpenMP off only for its call
    assert faiss.omp_get_max_threads() == threads


def test_faiss_backend_keeps_smallest_ids_in_boundary_tie() -> None:
    rng = np.random.default_rng(2)
    db = random_bits(rng, 50, 16)
    db = np.concatenate([db, np.repeat(db[:1], 500, axis=0)])  # 501 copies of code 0
    index = HammingIndex(16, backend="faiss")
    index.add(db)
    dist, ids = index.search(db[:1], 10)
    np.testing.assert_array_equal(dist, np.zeros((1, 10)))
    np.testing.assert_array_equal(ids[0], [0, *range(50, 59)])


def test_full_ranking_and_distances() -> None:
    rng = np.random.default_rng(3)
    db, q = random_bits(rng, 500, 24), random_bits(rng, 40, 24)
    index = HammingIndex(24)
    index.add(db)
    _, ids = index.search(q, index.ntotal)
    np.testing.assert_array_equal(ids, brute_force(q, db, 500)[1])
    ref = (q[:, None, :] != db[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(index.distances(q), ref)
    np.testing.assert_array_equal(hamming_distances(q, db), ref)


@pytest.mark.parametrize("nbits", [12, 37, 70])
def test_bit_subset_shared_and_per_query(nbits: int) -> None:
    rng = np.random.default_rng(4)
    db, q = random_bits(rng, 200, nbits), random_bits(rng, 6, nbits)
    index = HammingIndex(nbits)
    index.add(db)
    shared = rng.choice(nbits, size=5, replace=False)
    dist, ids = index.search(q, 20, bit_subset=shared)
    ref_d, ref_i = brute_force(q[:, shared], db[:, shared], 20)
    np.testing.assert_array_equal(dist, ref_d)
    np.testing.assert_array_equal(ids, ref_i)

    per_query = np.stack([rng.choice(nbits, size=8, replace=False) for _ in range(len(q))])
    dist, ids = index.search(q, 20, bit_subset=per_query)
    for row, subset in enumerate(per_query):
        ref_d, ref_i = brute_force(q[row : row + 1, subset], db[:, subset], 20)
        np.testing.assert_array_equal(dist[row], ref_d[0])
        np.testing.assert_array_equal(ids[row], ref_i[0])
    np.testing.assert_array_equal(
        hamming_distances(q, db, per_query)[2], (q[2, per_query[2]] != db[:, per_query[2]]).sum(1)
    )


def test_candidates_restrict_results() -> None:
    rng = np.random.default_rng(5)
    db, q = random_bits(rng, 100, 20), random_bits(rng, 3, 20)
    index = HammingIndex(20)
    index.add(db)
    cand = np.array([[42, 7, -1, 99, 7], [-1, -1, -1, -1, -1], [5, 4, 3, 2, 1]], dtype=np.int64)
    dist, ids = index.search(q, 4, candidates=cand)
    for row in range(3):
        members = sorted({c for c in cand[row] if c >= 0})  # duplicates count once
        ref_d, ref_i = brute_force(q[row : row + 1], db[members], 4)
        expect_ids = [members[j] if j >= 0 else -1 for j in ref_i[0]]
        np.testing.assert_array_equal(ids[row], expect_ids)
        np.testing.assert_array_equal(dist[row], ref_d[0])
    assert (ids[1] == -1).all() and (dist[1] == -1).all()
    local = index.distances(q, candidates=cand)
    assert local[0, 2] == -1 and local[0, 0] == (q[0] != db[42]).sum()


def test_empty_index_and_k_beyond_ntotal() -> None:
    rng = np.random.default_rng(6)
    q = random_bits(rng, 2, 16)
    index = HammingIndex(16)
    dist, ids = index.search(q, 5)
    assert (dist == -1).all() and (ids == -1).all() and dist.shape == (2, 5)
    index.add(random_bits(rng, 3, 16))
    for backend in ("numpy", "faiss"):
        small = HammingIndex(16, backend=backend)
        small.add(random_bits(np.random.default_rng(7), 3, 16))
        dist, ids = small.search(q, 5)
        assert (ids[:, 3:] == -1).all() and (dist[:, 3:] == -1).all()
        assert sorted(ids[0, :3]) == [0, 1, 2]


def test_pack_bits() -> None:
    bits = np.array([[1, 0, 0, 0, 0, 0, 0, 1, 1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(pack_bits(bits), [[0b10000001, 0b11000000]])
    with pytest.raises(ValueError, match="0/1"):
        pack_bits(np.array([[1, -1]]))
    with pytest.raises(ValueError, match="2-D"):
        pack_bits(np.array([1, 0]))


def test_bad_input_raises() -> None:
    rng = np.random.default_rng(8)
    index = HammingIndex(16)
    index.add(random_bits(rng, 10, 16))
    q = random_bits(rng, 2, 16)
    bad_calls = [
        lambda: HammingIndex(0),
        lambda: HammingIndex(8, backend="gpu"),
        lambda: index.add(random_bits(rng, 2, 15)),
        lambda: index.search(random_bits(rng, 2, 17), 3),
        lambda: index.search(q[0], 3),
        lambda: index.search(q * 2, 3),
        lambda: index.search(q.astype(float) / 2, 3),
        lambda: index.search(q, 0),
        lambda: index.search(q, 1.5),
        lambda: index.search(q, 3, bit_subset=[0, 16]),
        lambda: index.search(q, 3, bit_subset=[-1, 2]),
        lambda: index.search(q, 3, bit_subset=[1, 1]),
        lambda: index.search(q, 3, bit_subset=np.zeros((3, 2), dtype=int)),
        lambda: index.search(q, 3, bit_subset=[0.0, 1.0]),
        lambda: index.search(q, 3, candidates=[[0, 10]] * 2),
        lambda: index.search(q, 3, candidates=[[0, 1]]),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
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


@pytest.mark.parametrize(("K", "k"), [(10, None), (10, 4), (60, 60), (80, 5)])
def test_hierarchical_search_matches_reference(K: int, k: int | None) -> None:
    rng = np.random.default_rng(9)
    gdb, ldb = random_bits(rng, 60, 8), random_bits(rng, 60, 24)  # 8 global bits: many ties
    gq, lq = random_bits(rng, 5, 8), random_bits(rng, 5, 24)
    selected = np.stack([rng.choice(24, size=6, replace=False) for _ in range(5)])
    g_index, l_index = HammingIndex(8), HammingIndex(24)
    g_index.add(gdb)
    l_index.add(ldb)
    ids, local_d, global_d = hierarchical_search(g_index, l_index, gq, lq, selected, K, k)
    width = K if k is None else k
    assert ids.shape == local_d.shape == global_d.shape == (5, width)
    for row, (ref_ids, ref_loc, ref_glob) in enumerate(
        hierarchical_reference(gdb, ldb, gq, lq, selected, K, width)
    ):
        n = len(ref_ids)  # K > gallery size pads with -1
        np.testing.assert_array_equal(ids[row, :n], ref_ids)
        np.testing.assert_array_equal(local_d[row, :n], ref_loc)
        np.testing.assert_array_equal(global_d[row, :n], ref_glob)
        assert (ids[row, n:] == -1).all() and (local_d[row, n:] == -1).all()


def test_hierarchical_search_rejects_bad_input() -> None:
    rng = np.random.default_rng(10)
    g_index, l_index = HammingIndex(8), HammingIndex(16)
    g_index.add(random_bits(rng, 5, 8))
    l_index.add(random_bits(rng, 5, 16))
    gq, lq = random_bits(rng, 2, 8), random_bits(rng, 2, 16)
    sel = np.array([[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="k must"):
        hierarchical_search(g_index, l_index, gq, lq, sel, K=3, k=4)
    with pytest.raises(ValueError, match="K must"):
        hierarchical_search(g_index, l_index, gq, lq, sel, K=0)
    with pytest.raises(ValueError, match="selected_bits"):
        hierarchical_search(g_index, l_index, gq, lq, np.array([0, 1]), K=3)
    l_index.add(random_bits(rng, 1, 16))
    with pytest.raises(ValueError, match="same gallery"):
        hierarchical_search(g_index, l_index, gq, lq, sel, K=3)
