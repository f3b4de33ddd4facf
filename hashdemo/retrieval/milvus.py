"""The gallery in Milvus: the same `search` / `distances` interface as `HammingIndex`, so
`hierarchical_search` and the DCOH search run unchanged on milvus-lite, a standalone server or a cluster.

One collection per code (id, code BINARY_VECTOR under HAMMING, labels ARRAY): Milvus 2.3 servers refuse
two vector fields in one collection, and one layout must serve all three. Milvus answers the top-k
(the coarse step); codes fetched by id are compared in process (the re-rank), as `HammingIndex` does.

Tie rule: Milvus orders and cuts ties arbitrarily, so `search` asks for more than k and widens until the
k-th distance is no longer the last one returned; the kept ids are then re-sorted by (distance, id),
exactly as the in-process index does. Milvus caps a search at 16,384 hits: past that a tie cut at the
k-th distance keeps whichever tied ids Milvus returned (distances still equal).

Every call carries a timeout; a lost server becomes `GalleryUnavailable`, a sentence for the user.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from hashdemo.checks import binary_matrix, positive_int
from hashdemo.retrieval.index import GalleryUnavailable, HammingIndex, candidate_ids

log = logging.getLogger(__name__)
# pymilvus logs a traceback for every failed call; the failure reaches the app's one-line log instead.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
# milvus-lite 2.5.1 imports pkg_resources, which warns on every start; nothing for a user to act on.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
CALL_TIMEOUT = 10.0  # seconds a search or fetch may take before the user is told
BUILD_TIMEOUT = 120.0  # seconds for a write, flush or load while building
TOP_K_MAX = 16_384  # Milvus's cap on hits per search
INSERT_BATCH = 5_000
# Searches read a collection that is complete and visible before the first one (`MilvusGallery.ensure`
# waits for that), so Bounded consistency sees every row; Strong makes every call on a server markedly
# slower (docs/scale-out.md has the figure).
SEARCH_CONSISTENCY = "Bounded"
BUILD_CONSISTENCY = "Strong"  # counts that decide "complete" must see the latest writes


def collection_name(*parts: str) -> str:
    """A valid Milvus collection name (letters, digits, underscores) from a model name and cache key."""
    return "hashdemo_" + "_".join(p.replace("-", "_") for p in parts)


class MilvusGallery:
    """A connection to one Milvus (a `.db` path for milvus-lite, `http://host:19530` for a server)."""

    def __init__(self, uri: str, timeout: float = CALL_TIMEOUT) -> None:
        self.uri, self.timeout = uri, timeout
        try:
            self.client = MilvusClient(uri=uri, timeout=timeout)
            self.client.list_collections(timeout=timeout)
        except Exception as error:  # pymilvus raises several types for an unreachable server
            raise GalleryUnavailable(
                f"Milvus at {uri} is unreachable ({_short(error)}); start it, or unset "
                "HASHDEMO_MILVUS_URI to use the in-process index."
            ) from None

    def call(self, method: str, *args, timeout: float | None = None, **kwargs):
        """One client call with a timeout (default: the search's); a failure becomes GalleryUnavailable."""
        try:
            return getattr(self.client, method)(*args, timeout=timeout or self.timeout, **kwargs)
        except (MilvusException, grpc.RpcError) as error:  # pymilvus lets some gRPC errors through
            raise GalleryUnavailable(
                f"The Milvus gallery at {self.uri} did not answer ({_short(error)}); try again shortly."
            ) from None

    def count(self, name: str, consistency: str = BUILD_CONSISTENCY) -> int:
        rows = self.call("query", name, filter="", output_fields=["count(*)"], consistency_level=consistency)
        return int(rows[0]["count(*)"])

    def ensure(
        self,
        name: str,
        bits: np.ndarray,
        labels: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
        index: dict | None = None,
    ) -> MilvusIndex:
        """The collection `name` holding `bits` (N, nbits) with ids 0..N-1 and their label sets.

        Idempotent: a complete collection is only loaded. Resumable: batches are written in id order,
        so rows [0, count) are there; an interrupted build restarts at its last batch with upsert
        (which never duplicates an id). `progress(done, total)` is called after each batch. `index`:
        Milvus index settings for a new collection (default BIN_FLAT, the exact one the tie rule needs).
        """
        index = index or {"index_type": "BIN_FLAT"}
        bits = binary_matrix(bits, "bits")
        n, nbits = bits.shape
        if nbits % 8:
            raise ValueError(f"Milvus binary vectors need a multiple of 8 bits, got {nbits}.")
        if not self.call("has_collection", name):
            self._create(name, nbits, labels.shape[1], index)
        self.call("load_collection", name, timeout=BUILD_TIMEOUT)  # a count needs it loaded
        done = self.count(name)
        if done != n:
            log.info("Milvus collection %s holds %d of %d codes; writing the rest", name, done, n)
            self._write_rest(name, bits, labels, done, progress)
        self._wait_visible(name, n)
        return MilvusIndex(self, name, nbits, n)

    def _create(self, name: str, nbits: int, max_labels: int, index: dict) -> None:
        """An empty collection: id, code (BINARY_VECTOR under HAMMING, with the `index` settings), labels."""
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("code", DataType.BINARY_VECTOR, dim=nbits)
        schema.add_field("labels", DataType.ARRAY, element_type=DataType.INT16, max_capacity=max_labels)
        index_params = self.client.prepare_index_params()
        index_params.add_index("code", metric_type="HAMMING", **index)
        self.call(
            "create_collection",
            name,
            schema=schema,
            index_params=index_params,
            consistency_level=BUILD_CONSISTENCY,
            timeout=BUILD_TIMEOUT,
        )

    def _write_rest(
        self,
        name: str,
        bits: np.ndarray,
        labels: np.ndarray,
        done: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Upsert every batch from the one holding row `done` on, flush, wait for the index and reload;
        the collection must then hold all the rows."""
        n = len(bits)
        packed = np.packbits(bits, axis=1)
        for start in range((min(done, n) // INSERT_BATCH) * INSERT_BATCH, n, INSERT_BATCH):
            ids = range(start, min(start + INSERT_BATCH, n))
            rows = [
                {"id": i, "code": packed[i].tobytes(), "labels": np.flatnonzero(labels[i]).tolist()}
                for i in ids
            ]
            self.call("upsert", name, rows, timeout=BUILD_TIMEOUT)
            if progress:
                progress(ids.stop, n)
        self.call("flush", name, timeout=BUILD_TIMEOUT)
        self._wait_indexed(name)
        # a new collection is loaded at creation, so its rows sat in growing segments, which are
        # scanned without the index; a reload serves the indexed segments
        self.call("release_collection", name, timeout=BUILD_TIMEOUT)
        self.call("load_collection", name, timeout=BUILD_TIMEOUT)
        done = self.count(name)
        if done != n:
            raise GalleryUnavailable(
                f"Milvus collection {name} at {self.uri} holds {done} rows, expected {n}; drop it and rerun."
            )

    def _wait_indexed(self, name: str) -> None:
        """Wait until the server has indexed every flushed row (an IVF index builds in the background;
        searched before, the rows not yet indexed would be scanned exactly). milvus-lite reports no rows."""
        deadline = time.monotonic() + BUILD_TIMEOUT
        while time.monotonic() < deadline:
            info = self.call("describe_index", name, "code")
            if info.get("state") == "Finished" and info.get("indexed_rows", 0) >= info.get("total_rows", 0):
                return
            time.sleep(0.5)
        log.warning("Milvus collection %s: index still building after %.0f s", name, BUILD_TIMEOUT)

    def _wait_visible(self, name: str, n: int, seconds: float = 30.0) -> None:
        """Wait until a search-consistency count sees all n rows (Bounded lags writes by a few seconds)."""
        deadline = time.monotonic() + seconds
        while self.count(name, SEARCH_CONSISTENCY) != n:
            if time.monotonic() > deadline:
                raise GalleryUnavailable(f"Milvus collection {name} at {self.uri} did not show all {n} rows.")
            time.sleep(0.2)


class MilvusIndex:
    """One collection's codes, with `HammingIndex`'s `ntotal`, `nbits`, `search` and `distances`."""

    def __init__(self, gallery: MilvusGallery, name: str, nbits: int, ntotal: int) -> None:
        self.gallery, self.name, self.nbits, self.ntotal = gallery, name, nbits, ntotal

    def hits(self, packed: np.ndarray, limit: int, **params) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Milvus's own answer for packed query codes (Q, nbits / 8): distances and ids per query, ties in
        Milvus's order. `params`: the index's search parameters (nprobe for BIN_IVF_FLAT)."""
        hits = self.gallery.call(
            "search",
            self.name,
            data=[row.tobytes() for row in packed],
            anns_field="code",
            limit=limit,
            search_params={"metric_type": "HAMMING", "params": params},
            consistency_level=SEARCH_CONSISTENCY,
        )
        dist = [np.array([h["distance"] for h in row], dtype=np.int32) for row in hits]
        ids = [np.array([h["id"] for h in row], dtype=np.int64) for row in hits]
        return dist, ids

    def search(self, query_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k codes per query: (distances (Q, k) int32, ids (Q, k) int64), ties by ascending id."""
        k = positive_int("k", k)
        query_bits = binary_matrix(query_bits, "query_bits", self.nbits)
        nq, kk = len(query_bits), min(k, self.ntotal)
        out_d = np.full((nq, k), -1, dtype=np.int32)
        out_i = np.full((nq, k), -1, dtype=np.int64)
        if kk == 0 or nq == 0:
            return out_d, out_i
        packed = np.packbits(query_bits, axis=1)
        most = min(self.ntotal, TOP_K_MAX)
        limit = min(max(2 * kk, kk + 64), most)
        pending = np.arange(nq)
        while len(pending):
            dist, ids = self.hits(packed[pending], limit)
            still = []
            for row, d, i in zip(pending, dist, ids, strict=True):
                order = np.lexsort((i, d))
                d, i = d[order], i[order]
                # exact when every code came back or the tie at the k-th distance ended before the last hit
                if len(d) < kk or limit >= most or d[kk - 1] < d[-1]:
                    m = min(kk, len(d))
                    out_d[row, :m], out_i[row, :m] = d[:m], i[:m]
                else:
                    still.append(row)
            pending, limit = np.array(still, dtype=np.int64), min(4 * limit, most)
        return out_d, out_i

    def _field(self, ids: np.ndarray, field: str) -> list:
        """`field` of each id, in the order given (ids may repeat)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        unique = np.unique(ids)
        rows = self.gallery.call(
            "query",
            self.name,
            filter=f"id in {unique.tolist()}",
            output_fields=[field],
            consistency_level=SEARCH_CONSISTENCY,
        )
        found = {int(r["id"]): r[field] for r in rows}
        if len(found) != len(unique):
            missing = sorted(set(unique.tolist()) - set(found))[:5]
            raise GalleryUnavailable(f"Milvus collection {self.name} lacks ids {missing}.")
        return [found[int(i)] for i in ids]

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        """The 0/1 codes (len(ids), nbits) of the given gallery ids."""
        codes = [np.frombuffer(_vector_bytes(v), dtype=np.uint8) for v in self._field(ids, "code")]
        packed = np.stack(codes) if codes else np.zeros((0, self.nbits // 8), dtype=np.uint8)
        return np.unpackbits(packed, axis=1)[:, : self.nbits]

    def labels(self, ids: np.ndarray) -> list[list[int]]:
        """The stored label indices of each id (in the order given)."""
        return [[int(x) for x in value] for value in self._field(ids, "labels")]

    def distances(
        self,
        query_bits: np.ndarray,
        *,
        bit_subset: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> np.ndarray:
        """As `HammingIndex.distances`, for given `candidates` only: their codes are fetched by id and
        compared in process (a whole-gallery scan belongs to `search`)."""
        if candidates is None:
            raise ValueError("a Milvus gallery computes distances for given candidate ids only.")
        candidates = candidate_ids(candidates, len(np.atleast_2d(query_bits)), self.ntotal)
        wanted = np.unique(candidates[candidates >= 0])
        if wanted.size == 0:
            return np.full(candidates.shape, -1, dtype=np.int32)
        local = HammingIndex(self.fetch(wanted))
        positions = np.where(candidates >= 0, np.searchsorted(wanted, candidates), -1)
        return local.distances(query_bits, bit_subset=bit_subset, candidates=positions)


def milvus_indexes(
    uri: str,
    codes: dict[str, tuple[str, np.ndarray]],
    labels: np.ndarray,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, MilvusIndex]:
    """One collection per entry of `codes` (name -> (cache key, bits)), built when missing or half-built."""
    gallery = MilvusGallery(uri)
    return {
        name: gallery.ensure(
            collection_name(name, key),
            bits,
            labels,
            None if progress is None else (lambda done, total, name=name: progress(name, done, total)),
        )
        for name, (key, bits) in codes.items()
    }


def _vector_bytes(value) -> bytes:
    """pymilvus returns a binary vector as bytes, or as a one-element list of bytes."""
    return value[0] if isinstance(value, list) else value


def _short(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        return f"{error.code().name}: {error.details()}"[:160]
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.splitlines()[0][:160]
