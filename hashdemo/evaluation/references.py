"""What a composed query is measured against (docs/results.md, method 2), each named for what it is:

- the majority code: the bitwise majority of every gallery code whose label set is T, a reference;
- the best exemplar: for each target set T, the one gallery code of that set whose own results (itself
  left out) score the highest AP@100. An empirical upper reference for one-code search, chosen on the
  gallery itself with the answer known; not a proof of a ceiling, since no search over all 2^K codes
  was made;
- the LaSO-style peer at equal bits: its composed float features and the gallery's features binarised
  to as many bits as DCOH's codes, by a threshold rule chosen on val.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hashdemo.data.label_ops import OPERATORS, label_keys
from hashdemo.model.laso import FeatureOperators, compose_features
from hashdemo.retrieval.metrics import average_precisions, mean_average_precision
from hashdemo.retrieval.protocol import (
    composed_map,
    hamming_ranking,
    jaccard_at_k,
    sample_composed_pairs,
    validation_ids,
)

TOP = 100
VAL_PAIRS = 300  # per operator, val queries against the rest of val, as in DCOH's own selection
# A feature dimension's bit is 1 above its threshold; the threshold is a statistic of val's features
# (pooled features are non-negative after the ReLU, so the sign would set every bit).
THRESHOLD_RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "median": lambda features: np.median(features, axis=0),
    "mean": lambda features: features.mean(axis=0),
}


def majority_code(targets: np.ndarray, gallery_bits: np.ndarray, g_labels: np.ndarray) -> dict[str, float]:
    """Query with the bitwise majority of every gallery code whose label set is T (the code nearest to
    all of them in summed Hamming distance): a reference, beaten by single real codes (best exemplar)."""
    keys, wanted = label_keys(g_labels), label_keys(targets)
    sets, inverse = np.unique(wanted, return_inverse=True)
    majority = np.stack([gallery_bits[keys == key].mean(axis=0) > 0.5 for key in sets]).astype(np.uint8)
    return composed_map(majority[inverse], targets, gallery_bits, g_labels)


@dataclass(frozen=True)
class Exemplars:
    """Every gallery code as a query for its own label set, itself left out of its results."""

    ranked: np.ndarray  # (N, TOP) each gallery code's results without itself
    best: dict[int, int]  # label-set key -> the gallery id whose results score the highest AP@100

    @classmethod
    def of(cls, gallery_bits: np.ndarray, g_labels: np.ndarray) -> Exemplars:
        n = len(gallery_bits)
        ranked = hamming_ranking(gallery_bits, gallery_bits, min(TOP + 1, n))
        # a stable sort puts every other result first, in rank order: itself goes when it is among the
        # results, else the last one, so TOP remain
        keep = np.argsort(ranked == np.arange(n)[:, None], axis=1, kind="stable")[:, : min(TOP, n - 1)]
        ranked = np.take_along_axis(ranked, keep, axis=1)
        ap = average_precisions(ranked, g_labels, g_labels, exact=True, k=TOP)
        keys = label_keys(g_labels)
        best: dict[int, int] = {}
        for image in np.lexsort((-ap, keys)):  # by set, best AP first (ties: the smaller id)
            best.setdefault(int(keys[image]), int(image))
        return cls(ranked, best)

    def score(self, targets: np.ndarray, g_labels: np.ndarray) -> dict[str, float]:
        """map@100 and jaccard@10 when each target's query is its set's best exemplar."""
        chosen = np.array([self.best[int(key)] for key in label_keys(targets)])
        ranked = self.ranked[chosen]
        return {
            "map@100": mean_average_precision(ranked, targets, g_labels, exact=True, k=TOP),
            "jaccard@10": jaccard_at_k(ranked, targets, g_labels),
        }


def binarise(features: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return (features > thresholds).astype(np.uint8)


def laso_threshold_rule(operators: FeatureOperators, val_pooled: np.ndarray, val_labels: np.ndarray) -> dict:
    """The binarisation rule of the LaSO-style peer at equal bits, chosen on val (val queries composed
    against the rest of val, mean composed map@100 over the operators); its thresholds come from val's
    features, so the gallery and the query split play no part."""
    q, db = validation_ids(len(val_labels))
    allowed = np.unique(val_labels[db], axis=0)
    grid = {}
    for name, rule in THRESHOLD_RULES.items():
        thresholds = rule(val_pooled)
        rng = np.random.default_rng(0)
        scores = []
        for operator in OPERATORS:
            a, b, targets = sample_composed_pairs(val_labels[q], operator, VAL_PAIRS, rng, allowed)
            if len(targets) == 0:
                continue
            composed = compose_features(operators, (operator,), [val_pooled[q][a], val_pooled[q][b]])
            db_bits = binarise(val_pooled[db], thresholds)
            score = composed_map(binarise(composed, thresholds), targets, db_bits, val_labels[db])
            scores.append(score["map@100"])
        grid[name] = float(np.mean(scores)) if scores else 0.0
    rule = max(grid, key=lambda name: (grid[name], name == "median"))
    return {"rule": rule, "thresholds": THRESHOLD_RULES[rule](val_pooled), "val_grid": grid}
