"""What makes a search's result relevant: the rules the page offers, each one registry entry. A rule
names the label set a result is judged against (the query's own, or one item's class) and whether the
result must share a label with it or hold exactly that set. Every rule is defined by the labels and
the recorded items alone, never by a method's codes, so it scores every row alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Judged:
    """What a rule may look at for one query."""

    labels: np.ndarray | None  # the query's multi-hot labels (None: not a dataset image)
    attended: int | None  # the class of the recorded item the CAM region sits on (None: items unknown)
    boxed: int | None  # the class of the recorded item the user's box sits on (None: no box, or unknown)
    n_classes: int


@dataclass(frozen=True)
class Relevance:
    words: str  # the control's choice and the headers' wording
    exact: bool  # relevant = the result's set equals the wanted set (else: shares a label with it)
    wanted: Callable[[Judged], np.ndarray | None]  # the set a result is judged against
    unknown: str  # why the rule cannot judge, when `wanted` gives None

    @property
    def key(self) -> str:
        """The rule as a field name in exports and JSON answers ("shares_a_label")."""
        return self.words.replace(" ", "_")


def _one_hot(index: int | None, n_classes: int) -> np.ndarray | None:
    return None if index is None else np.eye(n_classes, dtype=np.uint8)[index]


UNLABELLED = "the query's labels are unknown (an uploaded image, not a dataset image)"
RELEVANCE = {  # the link's `rel` value -> its rule; the first is the default
    "label": Relevance("shares a label", False, lambda q: q.labels, UNLABELLED),
    "exact": Relevance("exact label set", True, lambda q: q.labels, UNLABELLED),
    "attended": Relevance(
        "holds the attended item",
        False,
        lambda q: _one_hot(q.attended, q.n_classes),
        "the query's items are not recorded (only a data set with boxes records them)",
    ),
    "boxed": Relevance(
        "holds the boxed item",
        False,
        lambda q: _one_hot(q.boxed, q.n_classes),
        "box an item first (two clicks on panel 1) on a dataset image whose items are recorded",
    ),
}
DEFAULT_RELEVANCE = next(iter(RELEVANCE))


def relevance_rule(name: str) -> Relevance:
    """The rule named `name`, or a sentence naming the valid ones."""
    if name not in RELEVANCE:
        raise ValueError(f"relevance is one of {', '.join(RELEVANCE)} (got {name!r})")
    return RELEVANCE[name]
