"""A split of a dataset, and label sets in words: what every dataset, protocol and face shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "query", "gallery")


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value, compare by identity
class Split:
    """One split: images (N, S, S, 3) uint8 RGB, labels (N, 10) uint8 multi-hot,
    items (N, 3) int32 source item indices (FMNIST train for train/val, test for
    query/gallery), -1 padding after the real items; classes (N, 3) int8 and boxes (N, 3, 3)
    int16: each item's class and (top, left, side) on the canvas, -1 padding (for the
    object-focused evaluation and "point at the object")."""

    name: str
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N, 10) uint8
    items: np.ndarray  # (N, 3) int32
    classes: np.ndarray  # (N, 3) int8
    boxes: np.ndarray  # (N, 3, 3) int16
    # (N, C) float32: a frozen backbone's pooled outputs, attached while a hash head trains on them
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def label_text(labels_row: np.ndarray, class_names: tuple[str, ...]) -> str:
    """Class names of one multi-hot row, in class order, comma-separated; "(empty set)" for none."""
    names = [class_names[c] for c in np.flatnonzero(np.asarray(labels_row))]
    return ", ".join(names) if names else "(empty set)"


def label_sets_of(labels: np.ndarray) -> list[frozenset[int]]:
    """Label set of each multi-hot row of ``labels`` (N, 10)."""
    return [frozenset(np.flatnonzero(row).tolist()) for row in np.asarray(labels)]
