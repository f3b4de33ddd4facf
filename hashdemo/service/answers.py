"""What the search service answers: a query as later actions need it, result rows, and one answer type
per user action (search, compare, why, compose). Plain values, no behaviour beyond reading them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.model.cam import Attention
from hashdemo.model.networks import Encoded
from hashdemo.service.relevance import DEFAULT_RELEVANCE


@dataclass(frozen=True)
class Query:
    """A query image as every later action on it needs it (a new theta, L, K or box; a click)."""

    image: np.ndarray  # (S, S, 3) uint8, the models' input
    labels: np.ndarray | None  # (n_classes,) multi-hot for a dataset image, None for any other
    encoded: Encoded  # H_g, H_l and the Conv7 maps (batch of one)


@dataclass(frozen=True)
class Ranking:
    """One result row: gallery ids best first, their distances, and how each relates to the query."""

    ids: np.ndarray  # (k,) gallery ids
    distances: np.ndarray  # (k,) Hamming distances that ordered them
    relevant: (
        np.ndarray | None
    )  # (k,) bool: the search's relevance rule, or exactly T (compose); None: unknown
    global_distances: np.ndarray | None = None  # (k,) re-rank only: the global distance breaking ties
    jaccard: np.ndarray | None = None  # (k,) compose only: Jaccard of each result's set with T

    def precision_at(self, k: int) -> float | None:
        """Share of relevant results among the first k, None when relevance is unknown."""
        return None if self.relevant is None else float(np.mean(self.relevant[:k]))

    def top(self, k: int) -> Ranking:
        cut = slice(0, k)
        return Ranking(*(None if v is None else v[cut] for v in vars(self).values()))


@dataclass(frozen=True)
class RowFigures:
    """One row's retrieval figures for one query (its relevance: shares a label, or exactly T)."""

    shown: int  # the tiles P@k counts over: 10, or fewer when the row holds fewer
    precision: float  # P@shown
    ap_at_100: float  # AP of the first 100 (this query's term of map@100)
    ap: float  # AP of the whole row
    length: int  # the row's length (K for a search)


@dataclass(frozen=True)
class Comparison:
    """Every method's top results for one query, side by side (`rows` in `Engine.compare`'s order)."""

    rows: dict[str, Ranking]
    attended: int | None  # the class of the item the CAM region sits on; None: the image's items are unknown
    holds_attended: dict[str, np.ndarray | None]  # per row, (k,) bool: the result holds that class


@dataclass(frozen=True)
class SearchAnswer:
    """Everything one search shows: the attention, both rows and the out-of-domain check."""

    query: Query
    attention: Attention  # of the CAM region, or of the user's box when one is given
    cam_selected: np.ndarray  # (L,) the bits the CAM region selects (equal to attention.selected unboxed)
    coarse: Ranking  # the global code alone, top K by (global distance, id)
    reranked: Ranking  # the same K re-ranked on the L selected local bits (eq. 2.5)
    novelty: float  # the query's out-of-domain score
    out_of_domain: bool  # novelty above the cut-off calibrated on val, or the picture too smooth
    smooth: bool = False  # less fine detail than 99% of val images: no items in the picture
    relevance: str = DEFAULT_RELEVANCE  # the rule both rows are judged by (service.relevance.RELEVANCE)
    wanted: np.ndarray | None = None  # (n_classes,) the set that rule judges against; None: it cannot
    attended: int | None = None  # the class of the recorded item the CAM region sits on; None: unknown

    @property
    def global_bits(self) -> np.ndarray:
        return self.query.encoded.global_bits[0]

    @property
    def local_bits(self) -> np.ndarray:
        return self.query.encoded.local_bits[0]


@dataclass(frozen=True)
class ComposeAnswer:
    """A composed query's answer: the sets involved, the composed code's reading and both rows."""

    operators: tuple[str, ...]
    input_labels: tuple[np.ndarray | None, ...]  # each slot's labels, None when not a dataset image
    target: np.ndarray | None  # T, None when an input's labels are unknown
    predicted_probs: np.ndarray  # (n_classes,) the code classifier on the composed code
    composed: Ranking  # the gallery by distance to the composed code
    bitwise: Ranking  # the bitwise OR / AND / AND-NOT baseline
    label_route: Ranking | None = None  # predicted labels, the set operations, a label search
    sources: tuple[tuple[str, int] | None, ...] = ()  # each slot's (split, id), None when not a dataset image
    composed_bits: np.ndarray | None = None  # (K,) the composed code the gallery is searched with
    input_bits: np.ndarray | None = None  # (slots, K) each slot's code h(x)

    def exact_in_top(self, ranking: Ranking, k: int = 10) -> int | None:
        return None if ranking.relevant is None else int(ranking.relevant[:k].sum())


@dataclass(frozen=True)
class WhyAnswer:
    """A result explained: where the query's selected bits fire in it, its own attention region and the
    selected bits it shares."""

    gallery_id: int
    labels: np.ndarray
    region: np.ndarray  # (S, S) bool, the result's own attention region
    query_region: np.ndarray  # (S, S) bool, the query's region the bits were selected on (CAM or box)
    fired_map: np.ndarray  # (S, S) in [0, 1], the query's selected maps averaged in the result
    fired: np.ndarray  # (S, S) bool, fired_map binarised at theta, largest component
    agree: list[int]  # the query's selected bits on which the result has the query's value
    selected: int  # L
    local_distance: int  # eq. 2.5 distance on the selected bits (L - len(agree))
    local_agree: int  # bits of the whole local code on which the two agree
    local_bits: int  # C
    global_distance: int  # Hamming distance of the global codes
    relevant: bool | None  # shares a label with the query (None: the query's labels are unknown)
    shared: np.ndarray | None  # the labels both hold
