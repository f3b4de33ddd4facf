"""Set algebra on multi-hot label vectors: the labels of composed codes (docs/methods.md, method 2).

Works row-wise on 0/1 integer arrays, numpy or torch alike (only operators both libraries share).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

Labels = TypeVar("Labels")  # a numpy array or a torch tensor of 0/1 integers

OPERATORS = ("union", "intersection", "difference")


def union(labels_a: Labels, labels_b: Labels) -> Labels:
    """l1 | l2 (eq. 3.3)."""
    return labels_a | labels_b


def intersection(labels_a: Labels, labels_b: Labels) -> Labels:
    """l1 & l2 (eq. 3.4)."""
    return labels_a & labels_b


def difference(labels_a: Labels, labels_b: Labels) -> Labels:
    """l1 - (l1 & l2) if |l1| > |l1 & l2|, otherwise l1 (eq. 3.5's label rule)."""
    removed = labels_a * (1 - labels_b)
    keeps_something = removed.sum(-1)[..., None] > 0
    return removed * keeps_something + labels_a * ~keeps_something


LABEL_OPS = dict(zip(OPERATORS, (union, intersection, difference), strict=True))


def jaccard(labels_a: Labels, labels_b: Labels) -> Labels:
    """(B, C), (M, C) multi-hot -> (B, M) |a & b| / |a | b|, 0 where both sets are empty.

    The similarity graded by shared labels: training targets (eq. multi-level similarity),
    composed-query metrics and the app's captions all use this one definition.
    """
    a, b = labels_a * 1.0, labels_b * 1.0
    inter = a @ b.T
    union_size = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return inter / (union_size + (union_size == 0))


def compose_chain(operators: tuple[str, ...], operands: list[Labels]) -> Labels:
    """The label sets of ((l_0 op_1 l_1) op_2 l_2)... row-wise, for one operand array more than operators."""
    if len(operands) != len(operators) + 1:
        raise ValueError(
            f"{len(operators)} operators need {len(operators) + 1} operands, got {len(operands)}"
        )
    labels = operands[0]
    for operator, other in zip(operators, operands[1:], strict=True):
        labels = compose_labels(operator, labels, other)
    return labels


def compose_labels(operator: str, labels_a: Labels, labels_b: Labels) -> Labels:
    """The label set of `operator` applied to two codes with these labels."""
    if operator not in LABEL_OPS:
        raise ValueError(f"unknown operator {operator!r}; expected one of {OPERATORS}")
    return LABEL_OPS[operator](labels_a, labels_b)


def label_route_ranking(
    operators: tuple[str, ...], operand_probs: list[np.ndarray], gallery_probs: np.ndarray, k: int = 100
) -> np.ndarray:
    """The label-route baseline (docs/methods.md, Evaluation protocol): each operand's predicted labels
    (probability > 0.5), the set operations on them, then the gallery ranked by Jaccard with its own
    predicted labels, ties by id.
    `operand_probs`: one (n, C) array per operand; returns (n, k) gallery ids and their Jaccard."""
    predicted = compose_chain(operators, [(probs > 0.5).astype(np.uint8) for probs in operand_probs])
    similarity = jaccard(predicted, (gallery_probs > 0.5).astype(np.uint8))
    ids = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(similarity, ids, axis=1)


def label_keys(labels: np.ndarray) -> np.ndarray:
    """(N, C) multi-hot -> (N,) int: each label set as one integer (bit c = class c)."""
    return (labels.astype(np.int64) << np.arange(labels.shape[1])).sum(axis=1)


def keys_to_labels(keys: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) int -> (N, n_classes) multi-hot, the inverse of `label_keys`."""
    return ((keys[:, None] >> np.arange(n_classes)) & 1).astype(np.uint8)
