"""Packed Hamming index (faiss-like) and the two-level hierarchical search (SPEC sec. 1).

Tie rule, relied on by the metrics: results at equal Hamming distance come in ascending id
order, and when `k` cuts through a tie the smallest ids are kept. Missing results (empty
index, `k` larger than the number of candidates) have id -1 and distance -1.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

try:
    import faiss
except ImportError:  # the numpy path is complete on its own
    faiss = None

# Elements per (queries x codes) block in the numpy path: bounds temporaries to ~32 MB.
_BLOCK = 1 << 22
# Plain searches with k * _FAISS_K_RATIO <= ntotal go to faiss: its heap wins for short
# top-k lists, while a numpy radix sort wins for long rankings (see hashdemo.bench).
_FAISS_K_RATIO = 64
# Threads for batched faiss searches (faiss's own default), and the query x code pairs
# below which one thread beats starting a thread pool.
_FAISS_THREADS = faiss.omp_get_max_threads() if faiss is not None else 1
_POOL_MIN_WORK = 1 << 20


def _check_bits(bits: np.ndarray, name: str, nbits: int | None = None) -> np.ndarray:
    """Return `bits` as a 2-D uint8 array of 0/1 values, or raise ValueError."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (rows, nbits), got shape {bits.shape}; "
            "wrap a single code as bits[None]."
        )
    if nbits is not None and bits.shape[1] != nbits:
        raise ValueError(f"{name} has {bits.shape[1]} bits per row, the index has {nbits}.")
    # min/max is cheap on the hot path; the equality check only runs for float input.
    if bits.dtype != np.bool_ and (
        (bits.size and (bits.min() < 0 or bits.max() > 1))
        or (not np.issubdtype(bits.dtype, np.integer) and not np.array_equal(bits, bits.astype(np.uint8)))
    ):
        raise ValueError(f"{name} must contain only 0/1 values (bits, not ±1 signs).")
    return bits.astype(np.uint8, copy=False)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 bits (N, nbits) into bytes (N, ceil(nbits / 8)) uint8, big-endian bit order."""
    return np.packbits(_check_bits(bits, "bits"), axis=1)


def _to_words(bits: np.ndarray) -> np.ndarray:
    """Checked 0/1 bits (N, nbits) -> zero-padded 64-bit words (N, ceil(nbits / 64)) uint64."""
    packed = np.packbits(bits, axis=1)
    if packed.shape[1] % 8:
        # Zero padding bits are equal in every code, so they never add to a distance.
        padded = np.zeros((len(packed), -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
        padded[:, : packed.shape[1]] = packed
        packed = padded
    return packed.view(np.uint64)


def _subset_masks(bit_subset: np.ndarray, nq: int, nbits: int) -> np.ndarray:
    """Bit positions (L,) or (Q, L) -> word masks (1 or Q, W) uint64 (eq. 2.5 as a mask)."""
    subset = np.asarray(bit_subset)
    if subset.ndim == 1:
        subset = subset[None]
    if subset.ndim != 2 or subset.shape[0] not in (1, nq):
        raise ValueError(f"bit_subset must have shape (L,) or ({nq}, L), got {np.shape(bit_subset)}.")
    if subset.shape[1] == 0:
        raise ValueError("bit_subset must select at least one bit.")
    if not np.issubdtype(subset.dtype, np.integer):
        raise ValueError(f"bit_subset must hold integer bit positions, got dtype {subset.dtype}.")
    if subset.min() < 0 or subset.max() >= nbits:
        raise ValueError(f"bit_subset positions must lie in [0, {nbits}).")
    mask = np.zeros((subset.shape[0], nbits), dtype=np.uint8)
    np.put_along_axis(mask, subset, 1, axis=1)
    if (mask.sum(axis=1) != subset.shape[1]).any():
        raise ValueError("bit_subset must not repeat a bit position within a row.")
    return _to_words(mask)


class HammingIndex:
    """Exact Hamming search over `nbits`-bit codes, API after faiss.IndexBinaryFlat.

    Codes go in as 0/1 bits and are stored packed in 64-bit words. `backend="auto"` answers
    plain short top-k searches with faiss.IndexBinaryFlat (ties re-sorted by id) and
    everything else with numpy; `"numpy"` forces the reference path.
    """

    def __init__(self, nbits: int, backend: str = "auto") -> None:
        if int(nbits) != nbits or nbits < 1:
            raise ValueError(f"nbits must be a positive integer, got {nbits!r}.")
        if backend not in ("auto", "numpy", "faiss"):
            raise ValueError(f"backend must be 'auto', 'numpy' or 'faiss', got {backend!r}.")
        if backend == "faiss" and faiss is None:
            raise ValueError("backend='faiss' needs the faiss-cpu package.")
        self.nbits = int(nbits)
        self.nwords = -(-self.nbits // 64)
        self._nbytes = -(-self.nbits // 8)
        self.backend = backend
        # Smallest dtype holding every distance and the "invalid" sentinel nbits + 1: the
        # stable argsort is a radix sort for 8/16-bit keys.
        self._dist_dtype = np.uint8 if self.nbits < 255 else np.uint16 if self.nbits < 65535 else np.int32
        self._chunks: list[np.ndarray] = []
        self._words = np.empty((self.nwords, 0), dtype=np.uint64)  # (W, N): one row per word
        self._faiss = (
            # Byte-padded codes, not word-padded: a 32-bit code scans 4 bytes, not 8.
            faiss.IndexBinaryFlat(8 * self._nbytes) if backend != "numpy" and faiss is not None else None
        )

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._words.shape[1] + sum(len(c) for c in self._chunks)

    def add(self, bits: np.ndarray) -> None:
        """Append codes (N, nbits) of 0/1; they get ids ntotal .. ntotal + N - 1."""
        words = _to_words(_check_bits(bits, "bits", self.nbits))
        self._chunks.append(words)
        if self._faiss is not None:
            self._faiss.add(self._faiss_codes(words))

    def _db(self) -> np.ndarray:
        """The stored words (W, N), concatenating pending adds once."""
        if self._chunks:
            self._words = np.ascontiguousarray(np.concatenate([self._words.T, *self._chunks]).T)
            self._chunks = []
        return self._words

    def _check_candidates(self, candidates: np.ndarray, nq: int) -> np.ndarray:
        """Validate (Q, M) ids (-1 = padding); return them as int64."""
        cand = np.asarray(candidates)
        if cand.ndim != 2 or cand.shape[0] != nq:
            raise ValueError(f"candidates must have shape ({nq}, M), got {cand.shape}.")
        if not np.issubdtype(cand.dtype, np.integer):
            raise ValueError(f"candidates must hold integer ids, got dtype {cand.dtype}.")
        if cand.size and (cand.min() < -1 or cand.max() >= self.ntotal):
            raise ValueError(f"candidate ids must lie in [0, {self.ntotal}) or be -1 padding.")
        return cand.astype(np.int64, copy=False)

    def _block_distances(
        self, qwords: np.ndarray, mask: np.ndarray | None, cand: np.ndarray | None
    ) -> np.ndarray:
        """Distances (c, N) to every code, or (c, M) to `cand` with nbits + 1 for -1 entries."""
        db = self._db()
        dist = None
        for w in range(self.nwords):
            col = db[w][None] if cand is None else db[w][np.maximum(cand, 0)]
            x = qwords[:, w, None] ^ col
            if mask is not None:
                x &= mask[:, w, None]
            count = np.bitwise_count(x)
            dist = count.astype(self._dist_dtype) if dist is None else dist + count
        if cand is not None:
            dist[cand < 0] = self.nbits + 1
        return dist

    def _prepare(
        self,
        query_bits: np.ndarray,
        bit_subset: np.ndarray | None,
        candidates: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Validate a query batch; return (query words, subset masks, candidate ids)."""
        q = _check_bits(query_bits, "query_bits", self.nbits)
        masks = None if bit_subset is None else _subset_masks(bit_subset, len(q), self.nbits)
        cand = None if candidates is None else self._check_candidates(candidates, len(q))
        return _to_words(q), masks, cand

    def _blocks(
        self, qwords: np.ndarray, masks: np.ndarray | None, cand: np.ndarray | None
    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray | None]]:
        """Yield (query rows, distance block, candidate block) in memory-bounded blocks."""
        if self.ntotal == 0:
            return
        width = self.ntotal if cand is None else max(cand.shape[1], 1)
        step = max(1, _BLOCK // width)
        for s in range(0, len(qwords), step):
            rows = slice(s, s + step)
            mask = None if masks is None else masks if len(masks) == 1 else masks[rows]
            c = None if cand is None else cand[rows]
            yield rows, self._block_distances(qwords[rows], mask, c), c

    def distances(
        self,
        query_bits: np.ndarray,
        *,
        bit_subset: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> np.ndarray:
        """Unranked distances: (Q, ntotal) int32, or (Q, M) to `candidates` (-1 where id is -1).

        `bit_subset` restricts the comparison to those bit positions (eq. 2.5).
        """
        qwords, masks, cand = self._prepare(query_bits, bit_subset, candidates)
        width = self.ntotal if cand is None else cand.shape[1]
        out = np.full((len(qwords), width), -1, dtype=np.int32)
        for rows, dist, _ in self._blocks(qwords, masks, cand):
            out[rows] = dist
        out[out > self.nbits] = -1
        return out

    def search(
        self,
        query_bits: np.ndarray,
        k: int,
        *,
        bit_subset: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k codes per query: (distances (Q, k) int32, ids (Q, k) int64).

        Ties at equal distance are ordered by ascending id (the cut at k keeps the smallest
        ids); missing results are id -1, distance -1. `bit_subset` (L,) or (Q, L) compares only
        those bit positions (eq. 2.5); `candidates` (Q, M) ids, -1 = padding, restricts each
        query to its own candidate list (the re-rank stage).
        """
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        k = int(k)
        qwords, masks, cand = self._prepare(query_bits, bit_subset, candidates)
        out_d = np.full((len(qwords), k), -1, dtype=np.int32)
        out_i = np.full((len(qwords), k), -1, dtype=np.int64)
        if masks is None and cand is None and len(qwords) and self._use_faiss(k):
            kk = min(k, self.ntotal)
            out_d[:, :kk], out_i[:, :kk] = self._faiss_search(qwords, kk)
            return out_d, out_i
        if cand is not None:
            # Sorting makes position order equal id order, which the tie rule needs;
            # a repeated candidate is kept once.
            cand = np.sort(cand, axis=1)
            cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1
        for rows, dist, c in self._blocks(qwords, masks, cand):
            d, pos = _smallest(dist, k)
            kk = d.shape[1]
            if c is None:
                out_d[rows, :kk], out_i[rows, :kk] = d, pos
            else:  # -1 candidates carry the sentinel distance nbits + 1
                valid = d <= self.nbits
                out_d[rows, :kk] = np.where(valid, d.astype(np.int32), -1)
                out_i[rows, :kk] = np.where(valid, np.take_along_axis(c, pos, axis=1), -1)
        return out_d, out_i

    def _use_faiss(self, k: int) -> bool:
        if self._faiss is None or self.ntotal == 0:
            return False
        return self.backend == "faiss" or k * _FAISS_K_RATIO <= self.ntotal

    def _faiss_search(self, qwords: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss.IndexBinaryFlat top-k with ties re-sorted by id.

        faiss scans codes in id order and admits a code only if strictly closer than the
        current k-th, so a cut through a tie keeps the smallest ids, like the numpy path
        (checked in tests/test_index.py); only the order inside a tie needs fixing.
        """
        big = len(qwords) * self.ntotal >= _POOL_MIN_WORK
        parts = min(len(qwords), _FAISS_THREADS) if big else 1
        if parts == 1:
            dist, ids = self._faiss_one_thread(qwords, k)
        else:
            with ThreadPoolExecutor(parts) as pool:
                results = list(pool.map(partial(self._faiss_one_thread, k=k), np.array_split(qwords, parts)))
            dist, ids = (np.concatenate(r) for r in zip(*results, strict=True))
        order = np.lexsort((ids, dist), axis=1)
        return (
            np.take_along_axis(dist, order, axis=1).astype(np.int32),
            np.take_along_axis(ids, order, axis=1).astype(np.int64),
        )

    def _faiss_codes(self, words: np.ndarray) -> np.ndarray:
        """Words (N, W) -> the (N, ceil(nbits / 8)) bytes faiss stores."""
        return np.ascontiguousarray(words.view(np.uint8)[:, : self._nbytes])

    def _faiss_one_thread(self, qwords: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss search with OpenMP off for the calling thread (the setting is per thread).

        faiss's OpenMP team waits at a barrier per block of codes, and stalls for scheduler
        ticks whenever another process holds a core (measured at N=10k: 24 ms instead of
        0.03 ms for one query); Python threads (faiss releases the GIL) degrade gracefully.
        """
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._faiss.search(self._faiss_codes(qwords), k)
        finally:
            faiss.omp_set_num_threads(threads)


def _smallest(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the min(k, M) smallest distances and their positions, ties by position.

    Callers copy the results into typed output arrays, so no dtype conversion happens here.
    """
    m = dist.shape[1]
    k = min(k, m)
    if 8 * k >= m:
        # Stable argsort of 8/16-bit keys is a radix sort: cheapest for long rankings.
        pos = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(dist, pos, axis=1), pos
    # (distance, position) packed in one int64 key makes the selection exact under ties.
    key = (dist.astype(np.int64) << 32) | np.arange(m, dtype=np.int64)
    key = np.partition(key, k - 1, axis=1)[:, :k]
    key.sort(axis=1)
    return key >> 32, key & 0xFFFFFFFF


def hamming_distances(
    query_bits: np.ndarray, db_bits: np.ndarray, bit_subset: np.ndarray | None = None
) -> np.ndarray:
    """All pairwise Hamming distances (Q, N) int32, optionally on a bit subset (eq. 2.5)."""
    db_bits = _check_bits(db_bits, "db_bits")
    index = HammingIndex(db_bits.shape[1], backend="numpy")
    index.add(db_bits)
    return index.distances(query_bits, bit_subset=bit_subset)


def hierarchical_search(
    global_index: HammingIndex,
    local_index: HammingIndex,
    query_global_bits: np.ndarray,
    query_local_bits: np.ndarray,
    selected_bits: np.ndarray,
    K: int,
    k: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-level search (SPEC sec. 1): coarse top-K on H_g, fine re-rank on selected H_l bits.

    Coarse ties go by id; the re-rank orders by the eq. 2.5 distance on each query's
    `selected_bits` (Q, L), then global distance, then id. Returns (ids (Q, k) int64,
    local distances (Q, k) int32, global distances (Q, k) int32); missing results are -1.
    """
    if global_index.ntotal != local_index.ntotal:
        raise ValueError(
            f"The global index holds {global_index.ntotal} codes and the local index "
            f"{local_index.ntotal}; both must index the same gallery."
        )
    if int(K) != K or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}.")
    k = int(K) if k is None else k
    if int(k) != k or not 1 <= k <= K:
        raise ValueError(f"k must be an integer in [1, K={K}], got {k!r}.")
    if np.ndim(selected_bits) != 2:
        raise ValueError("selected_bits must have shape (Q, L): one bit subset per query.")
    global_dist, cand = global_index.search(query_global_bits, int(K))
    local_dist = local_index.distances(query_local_bits, bit_subset=selected_bits, candidates=cand)
    # cand is already ordered by (global distance, id), so a stable sort on the local
    # distance alone yields the (local, global, id) order; -1 padding sorts last.
    key = np.where(cand >= 0, local_dist, np.iinfo(np.int32).max)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return (
        np.take_along_axis(cand, order, axis=1),
        np.take_along_axis(local_dist, order, axis=1),
        np.take_along_axis(global_dist, order, axis=1),
    )
