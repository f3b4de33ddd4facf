"""The query split as a whole at the page's settings: each query's AP@100 on the global code alone and
re-ranked on its own CAM bits, so the queries where the attention bits help or hurt most can be browsed
and opened. The queries are encoded once (their Conv7 maps kept, within a memory budget: a larger split
is a seeded sample); each setting's answer is kept for the next look."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from hashdemo.model.networks import Encoded
from hashdemo.retrieval.index import hierarchical_search
from hashdemo.retrieval.metrics import aps_of_relevance, relevance
from hashdemo.service.relevance import Judged, relevance_rule

MAPS_BUDGET = 128 * 2**20  # bytes of kept Conv7 maps: past it, a seeded sample of the split
SAMPLE_SEED = 0
ENCODE_BATCH = 128
KEPT_SETTINGS = 8  # answers kept, most recent first
CUT = 100  # AP@100: each query's term of map@100, as the rows' headers give it


@dataclass(frozen=True)
class SplitGains:
    """Each (sampled) query's AP@100 without and with the re-rank, for one setting and one rule."""

    ids: np.ndarray  # (Q,) query-split ids
    global_ap: np.ndarray  # (Q,) AP@100 of the global code's top K
    reranked_ap: np.ndarray  # (Q,) AP@100 of the same K re-ranked on the query's CAM bits
    judged: np.ndarray  # (Q,) bool: the rule could judge the query (its labels or items are known)
    split_size: int  # queries in the split (more than len(ids) when sampled)

    @property
    def gain(self) -> np.ndarray:
        return self.reranked_ap - self.global_ap


class QuerySplit:
    """The engine's query split, encoded on first use; `gains` per (theta, L, K, rule)."""

    def __init__(self, engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._encoded: tuple[np.ndarray, Encoded] | None = None
        self._answers: OrderedDict[tuple, SplitGains] = OrderedDict()

    def encoded(self) -> tuple[np.ndarray, Encoded]:
        """(ids, their codes and Conv7 maps): the whole split, or a seeded sample within MAPS_BUDGET."""
        with self._lock:
            if self._encoded is None:
                images, model = self.engine.query_images, self.engine.hier.model
                one = model.encode(images[:1], with_conv7=True).conv7.nbytes
                ids = np.arange(len(images))
                if one * len(images) > MAPS_BUDGET:
                    sample = np.random.default_rng(SAMPLE_SEED).choice(
                        len(images), MAPS_BUDGET // one, replace=False
                    )
                    ids = np.sort(sample)
                parts = [
                    model.encode(images[ids[i : i + ENCODE_BATCH]], with_conv7=True)
                    for i in range(0, len(ids), ENCODE_BATCH)
                ]
                merged = Encoded(
                    **{name: np.concatenate([vars(p)[name] for p in parts]) for name in vars(parts[0])}
                )
                self._encoded = ids, merged
            return self._encoded

    def gains(self, theta: float, top_l: int, n_coarse: int, relevance_name: str) -> SplitGains:
        key = (theta, top_l, n_coarse, relevance_name)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        answer = self._compute(theta, top_l, n_coarse, relevance_name)
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > KEPT_SETTINGS:
                self._answers.popitem(last=False)
        return answer

    def _compute(self, theta: float, top_l: int, n_coarse: int, relevance_name: str) -> SplitGains:
        rule, engine = relevance_rule(relevance_name), self.engine
        ids, encoded = self.encoded()
        n_coarse = min(n_coarse, len(engine.gallery_labels))
        attention = [engine.attention(encoded.take(np.array([i])), theta, top_l) for i in range(len(ids))]
        selected = np.stack([a.selected for a in attention])
        ranked, _, global_d = hierarchical_search(
            engine.global_index,
            engine.local_index,
            encoded.global_bits,
            encoded.local_bits,
            selected,
            n_coarse,
        )
        coarse = np.take_along_axis(ranked, np.lexsort((ranked, global_d), axis=-1), axis=-1)
        wanted = [
            rule.wanted(
                Judged(
                    engine.query_labels[q],
                    engine.known.attended_class(engine.query_images[q], a.region),
                    None,
                    len(engine.classes),
                )
            )
            for q, a in zip(ids, attention, strict=True)
        ]
        judged = np.array([w is not None for w in wanted])
        filler = np.zeros(len(engine.classes), np.uint8)
        targets = np.stack([filler if w is None else w for w in wanted])

        def aps(rows: np.ndarray) -> np.ndarray:
            rel = np.stack(
                [
                    relevance(t[None], engine.gallery_labels[r[:CUT]], exact=rule.exact)[0]
                    for t, r in zip(targets, rows, strict=True)
                ]
            )
            return np.where(judged, aps_of_relevance(rel), np.nan)

        return SplitGains(ids, aps(coarse), aps(ranked), judged, len(engine.query_images))
