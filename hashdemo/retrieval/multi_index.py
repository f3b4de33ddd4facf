"""Exact top-k Hamming search over short codes (<= 64 bits) without scanning the whole gallery.

Multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012): the code is cut into m substrings of at
most 16 bits, and each substring value is a bucket of gallery ids. A code at distance d from the query
has some substring within floor(d / m) of the query's (pigeonhole), so after the buckets within
substring radius s have been read, every code at distance <= m (s + 1) - 1 has been seen. The search
widens s until k of the codes seen are that close; then the top k among them are the exact top k,
ties included (every code at the k-th distance has been seen), cut by ascending id as in
`HammingIndex.search`. This is the coarse step of the two-level search on million-code galleries,
where a scan of the global code would cost as much as the scan of the local code it is meant to avoid.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

SUBSTRING_BITS = 16
FIRST_RADII = (
    4  # substring radii 0-3 (697 of 65,536 buckets) in one step per part: a top-1000 needs them at 1M
)


@functools.lru_cache(maxsize=64)
def _masks(width: int, radii: tuple[int, ...] | range) -> np.ndarray:
    """Every `width`-bit value with a number of bits set in `radii` (XOR masks of those weights), int64."""
    return np.array(
        [
            sum(1 << b for b in bits)
            for r in radii
            if r <= width
            for bits in itertools.combinations(range(width), r)
        ],
        dtype=np.int64,
    )


class MultiIndex:
    """Built from codes of `nbits` <= 64 as integers (N,) uint64: any fixed map of the code's bits
    onto the integer's low ceil(nbits / 8) bytes, the rest zero (`HammingIndex` uses its words)."""

    def __init__(self, values: np.ndarray, nbits: int) -> None:
        if not 1 <= nbits <= 64:
            raise ValueError(f"multi-index hashing takes codes of 1 to 64 bits, got {nbits}.")
        self.nbits, self.ntotal = nbits, len(values)
        span = 8 * -(-nbits // 8)  # the bytes the bits occupy; their zero padding adds no distance
        self.parts = [(shift, min(SUBSTRING_BITS, span - shift)) for shift in range(0, span, SUBSTRING_BITS)]
        self.order, self.sorted_values, self.offsets = [], [], []
        dtype = np.uint32 if span <= 32 else np.uint64  # half the memory traffic for the 32-bit code
        for shift, width in self.parts:
            keys = ((values >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
            order = np.argsort(keys, kind="stable").astype(np.int32)  # ids ascending within a bucket
            self.order.append(order)
            self.sorted_values.append(values[order].astype(dtype))  # each bucket's codes contiguous
            self.offsets.append(np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=1 << width))]))

    def _bucket_positions(self, part: int, keys: np.ndarray) -> np.ndarray:
        """Positions in part's sorted arrays of every code whose substring is one of `keys`."""
        starts, ends = self.offsets[part][keys], self.offsets[part][keys + 1]
        lengths = ends - starts
        firsts = np.cumsum(lengths) - lengths
        return np.arange(lengths.sum()) + np.repeat(starts - firsts, lengths)

    def _steps(self):
        """(radii, part, guaranteed) in search order: radii 0..FIRST_RADII-1 of every part as one step
        each (their few buckets are nearly always all needed), then one radius of one part at a time.
        After a step every unseen code is at distance > guaranteed."""
        m = len(self.parts)
        for part in range(m):
            yield range(FIRST_RADII), part, m * FIRST_RADII - 1 if part == m - 1 else -1
        for radius in range(FIRST_RADII, SUBSTRING_BITS + 1):
            for part in range(m):
                # beyond `radius` in parts 0..part, beyond radius - 1 in the rest
                yield (radius,), part, m * radius + part

    def search_one(self, query: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k (distances (k,) int32, ids (k,) int64) of one query, ties by ascending id."""
        k = min(k, self.ntotal)
        query = self.sorted_values[0].dtype.type(query)
        masks = [self.sorted_values[0].dtype.type(((1 << w) - 1) << shift) for shift, w in self.parts]
        ids, dists = [], []
        seen = np.zeros(self.nbits + 1, dtype=np.int64)  # codes kept so far, by distance
        bound = self.nbits  # the k-th smallest distance kept so far: farther codes cannot make the top k
        for radii, part, guaranteed in self._steps():
            shift, width = self.parts[part]
            keys = ((int(query) >> shift) & ((1 << width) - 1)) ^ _masks(width, radii)
            if len(keys):
                positions = self._bucket_positions(part, keys)
                diff = self.sorted_values[part][positions] ^ query
                distance = np.bitwise_count(diff).astype(np.int32)
                own = np.bitwise_count(diff & masks[part])
                new = distance <= bound
                # a code is kept once: in the part where (its substring distance, part) is least
                for mask in masks[:part]:
                    new &= np.bitwise_count(diff & mask) > own
                for mask in masks[part + 1 :]:
                    new &= np.bitwise_count(diff & mask) >= own
                distance, positions = distance[new], positions[new]
                seen += np.bincount(distance, minlength=self.nbits + 1)
                if seen.sum() >= k:
                    bound = int(np.searchsorted(np.cumsum(seen), k))
                    close = distance <= bound  # this step's farther codes cannot make the top k either
                    distance, positions = distance[close], positions[close]
                ids.append(self.order[part][positions])
                dists.append(distance)
            if guaranteed >= 0 and (seen[: guaranteed + 1].sum() >= k or guaranteed >= self.nbits):
                break
        return _top_k(np.concatenate(ids), np.concatenate(dists), k)


def _top_k(ids: np.ndarray, dists: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest (distance, id) pairs, sorted; without sorting the whole candidate list."""
    counts = np.cumsum(np.bincount(dists))
    cut = int(np.searchsorted(counts, k))  # the k-th smallest distance
    below = dists < cut
    at_cut = np.flatnonzero(dists == cut)
    at_cut = at_cut[np.argsort(ids[at_cut], kind="stable")[: k - int(below.sum())]]
    keep = np.concatenate([np.flatnonzero(below), at_cut])
    order = np.lexsort((ids[keep], dists[keep]))
    return dists[keep][order].astype(np.int32), ids[keep][order].astype(np.int64)
