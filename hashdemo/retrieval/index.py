"""Exact Hamming search over binary codes and the two-level hierarchical search (docs/methods.md, method 1).

Tie rule, relied on by the metrics: results at equal Hamming distance come in ascending id
order, and when `k` cuts through a tie the smallest ids are kept. Missing results (`k` larger
than the number of codes or candidates) have id -1 and distance -1.

Short top-k lists go to faiss (`IndexBinaryFlat`, whose heap wins there); whole-gallery rankings,
bit subsets (eq. 2.5) and candidate lists are a few numpy popcounts over 64-bit words. The
backends are compared in `python -m hashdemo bench search`.
"""

from __future__ import annotations

import faiss
import numpy as np

from hashdemo.checks import binary_matrix, positive_int
from hashdemo.retrieval.multi_index import MultiIndex

# One OpenMP thread, set once: with its default two threads faiss measured several times slower
# on these 2-core machines under load (its team waits at a barrier per block of codes).
faiss.omp_set_num_threads(1)
# A plain top-k goes to faiss when k * FAISS_K_RATIO <= N; a radix sort wins for long rankings.
FAISS_K_RATIO = 64
# Codes of at most 64 bits in galleries of this size or more are searched by multi-index hashing:
# below it a faiss scan of the short code is as fast; above it the scan of the 32-bit global code
# costs as much as a scan of the 256-bit local code (docs/results.md, the speed rows).
MULTI_INDEX_MIN = 1_000_000
# Elements per (queries x codes x words) block in numpy: bounds temporaries to ~32 MB.
_BLOCK = 1 << 22


def to_words(bits: np.ndarray) -> np.ndarray:
    """0/1 bits (N, nbits) -> zero-padded 64-bit words (N, ceil(nbits / 64)) uint64.

    Zero padding is equal in every code, so it never adds to a distance.
    """
    return packed_to_words(np.packbits(bits, axis=1))


def packed_to_words(packed: np.ndarray) -> np.ndarray:
    """Packed codes (N, B) uint8 -> zero-padded 64-bit words (N, ceil(B / 8)) uint64."""
    padded = np.zeros((len(packed), -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def subset_masks(bit_subset: np.ndarray, nq: int, nbits: int) -> np.ndarray:
    """Bit positions (L,) or (Q, L) -> word masks (1 or Q, W) uint64: eq. 2.5 as a mask."""
    subset = np.asarray(bit_subset)
    subset = subset[None] if subset.ndim == 1 else subset
    if subset.ndim != 2 or subset.shape[0] not in (1, nq) or subset.shape[1] == 0:
        raise ValueError(
            f"bit_subset must have shape (L,) or ({nq}, L) with L >= 1, got {np.shape(bit_subset)}."
        )
    if not np.issubdtype(subset.dtype, np.integer) or subset.min() < 0 or subset.max() >= nbits:
        raise ValueError(f"bit_subset must hold integer bit positions in [0, {nbits}).")
    mask = np.zeros((subset.shape[0], nbits), dtype=np.uint8)
    np.put_along_axis(mask, subset, 1, axis=1)
    if (mask.sum(axis=1) != subset.shape[1]).any():
        raise ValueError("bit_subset must not repeat a bit position within a row.")
    return to_words(mask)


def candidate_ids(candidates: np.ndarray, nq: int, ntotal: int) -> np.ndarray:
    """Per-query candidate ids (nq, M) in [0, ntotal), -1 for padding, or a ValueError saying so."""
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or len(candidates) != nq or not np.issubdtype(candidates.dtype, np.integer):
        raise ValueError(f"candidates must be integer ids of shape ({nq}, M).")
    if candidates.size and (candidates.min() < -1 or candidates.max() >= ntotal):
        raise ValueError(f"candidate ids must lie in [0, {ntotal}) or be -1 padding.")
    return candidates


class GalleryUnavailable(RuntimeError):
    """A remote gallery (Milvus) did not answer; the message names it and is fit to show a user."""


class HammingIndex:
    """Exact Hamming search over a fixed set of codes, API after faiss: `search(q, k) -> (D, I)`."""

    def __init__(self, bits: np.ndarray, multi_index: bool | None = None) -> None:
        bits = binary_matrix(bits, "bits")
        self._build(np.packbits(bits, axis=1), bits.shape[1], multi_index)

    @classmethod
    def from_packed(cls, packed: np.ndarray, nbits: int, multi_index: bool | None = None) -> HammingIndex:
        """An index over codes already packed (N, ceil(nbits / 8)) uint8, as np.packbits gives them
        (10M codes unpacked would be 8x the memory). `multi_index` None: multi-index hashing for short
        codes from MULTI_INDEX_MIN codes up; False: always a scan (the peer it is timed against)."""
        packed = np.asarray(packed)
        if packed.ndim != 2 or packed.dtype != np.uint8 or packed.shape[1] != -(-nbits // 8):
            raise ValueError(
                f"packed codes must be uint8 of shape (N, {-(-nbits // 8)}), got {packed.shape}."
            )
        index = cls.__new__(cls)
        index._build(packed, nbits, multi_index)
        return index

    def _build(self, packed: np.ndarray, nbits: int, multi_index: bool | None = None) -> None:
        self.nbits = nbits
        self.words = packed_to_words(packed)  # (N, W)
        self._faiss = faiss.IndexBinaryFlat(8 * packed.shape[1])
        self._faiss.add(np.ascontiguousarray(packed))
        wanted = len(packed) >= MULTI_INDEX_MIN if multi_index is None else multi_index
        self._multi = MultiIndex(self.words[:, 0], nbits) if nbits <= 64 and wanted else None

    @property
    def ntotal(self) -> int:
        return len(self.words)

    def _query_words(self, query_bits: np.ndarray) -> np.ndarray:
        return to_words(binary_matrix(query_bits, "query_bits", self.nbits))

    def distances(
        self,
        query_bits: np.ndarray,
        *,
        bit_subset: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> np.ndarray:
        """(Q, N) int32 distances to every code, or (Q, M) to each query's `candidates`
        (-1 where the id is -1).

        `bit_subset` (L,) or (Q, L) compares only those bit positions (eq. 2.5).
        """
        q = self._query_words(query_bits)
        masks = None if bit_subset is None else subset_masks(bit_subset, len(q), self.nbits)
        if candidates is not None:
            candidates = candidate_ids(candidates, len(q), self.ntotal)
        width = self.ntotal if candidates is None else candidates.shape[1]
        out = np.full((len(q), width), -1, dtype=np.int32)
        step = max(1, _BLOCK // max(width * q.shape[1], 1))
        for s in range(0, len(q) if self.ntotal else 0, step):
            rows = slice(s, s + step)
            db = self.words[None] if candidates is None else self.words[np.maximum(candidates[rows], 0)]
            x = q[rows, None, :] ^ db  # (q, N or M, W)
            if masks is not None:
                x &= (masks if len(masks) == 1 else masks[rows])[:, None, :]
            out[rows] = np.bitwise_count(x).sum(axis=2, dtype=np.int32)
        if candidates is not None:
            out[candidates < 0] = -1
        return out

    def search(self, query_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k codes per query: (distances (Q, k) int32, ids (Q, k) int64), ties by ascending id."""
        k = positive_int("k", k)
        kk = min(k, self.ntotal)
        query_bits = binary_matrix(query_bits, "query_bits", self.nbits)
        nq = len(query_bits)
        out_d = np.full((nq, k), -1, dtype=np.int32)
        out_i = np.full((nq, k), -1, dtype=np.int64)
        if kk == 0 or nq == 0:
            return out_d, out_i
        if self._multi is not None and kk * FAISS_K_RATIO <= self.ntotal:
            for row, query_word in enumerate(self._query_words(query_bits)[:, 0]):
                out_d[row, :kk], out_i[row, :kk] = self._multi.search_one(int(query_word), kk)
        elif kk * FAISS_K_RATIO <= self.ntotal:
            # faiss scans in id order and admits a code only if strictly closer than the k-th, so a
            # cut through a tie keeps the smallest ids (tests/test_index.py); only the order inside
            # a tie needs the lexsort.
            dist, ids = self._faiss.search(np.ascontiguousarray(np.packbits(query_bits, axis=1)), kk)
            order = np.lexsort((ids, dist), axis=1)
            out_d[:, :kk] = np.take_along_axis(dist, order, axis=1)
            out_i[:, :kk] = np.take_along_axis(ids, order, axis=1)
        else:
            dist = self.distances(query_bits).astype(
                np.uint16
            )  # a stable sort of 16-bit keys is a radix sort
            ids = np.argsort(dist, axis=1, kind="stable")[:, :kk]
            out_d[:, :kk], out_i[:, :kk] = np.take_along_axis(dist, ids, axis=1), ids
        return out_d, out_i


def hierarchical_search(
    global_index: HammingIndex,
    local_index: HammingIndex,
    query_global_bits: np.ndarray,
    query_local_bits: np.ndarray,
    selected_bits: np.ndarray,
    n_coarse: int,
    global_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-level search (docs/methods.md, method 1): coarse top-K on H_g, then a re-rank of those K on the
    selected H_l bits.

    The local code is read only for the K candidates. The re-rank orders by the eq. 2.5 distance on
    each query's `selected_bits` (Q, L), then global distance, then id (the seed's method,
    `global_weight` 0). A positive `global_weight` w re-ranks by the fused distance d_L + w d_g instead,
    then global distance, then id. Returns (ids, local distances, global distances), each (Q, K);
    missing results are -1.
    """
    if global_index.ntotal != local_index.ntotal:
        raise ValueError(
            f"the global index holds {global_index.ntotal} codes and the local index {local_index.ntotal}; "
            "both must index the same gallery."
        )
    if np.ndim(selected_bits) != 2:
        raise ValueError("selected_bits must have shape (Q, L): one bit subset per query.")
    global_dist, candidates = global_index.search(query_global_bits, positive_int("K", n_coarse))
    local_dist = local_index.distances(query_local_bits, bit_subset=selected_bits, candidates=candidates)
    # candidates come ordered by (global distance, id), so a stable sort on the local (or fused)
    # distance alone gives the (local, global, id) order; -1 padding sorts last.
    if global_weight < 0:
        raise ValueError(f"global_weight must be at least 0, got {global_weight}.")
    fused = local_dist + global_weight * global_dist if global_weight else local_dist
    key = np.where(candidates >= 0, fused, np.iinfo(np.int32).max)
    order = np.argsort(key, axis=1, kind="stable")
    return (
        np.take_along_axis(candidates, order, axis=1),
        np.take_along_axis(local_dist, order, axis=1),
        np.take_along_axis(global_dist, order, axis=1),
    )
