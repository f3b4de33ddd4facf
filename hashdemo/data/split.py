"""A split of a dataset, and label sets in words: what every dataset, protocol and face shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "query", "gallery")


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value, compare by identity
class Split:
    """One split: images (N, S, S, 3) uint8 RGB, labels (N, C) uint8 multi-hot; items (N, K) int32
    each item's index in its source (the outfits: the Fashion-MNIST item), -1 padding after the real
    items; classes (N, K) int8 and boxes (N, K, 4) int16: each item's class and (top, left, height,
    width) on the image, -1 padding (the object protocols and "point at the object"); K = 0 for a data
    set without boxes."""

    name: str
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N, C) uint8
    items: np.ndarray  # (N, K) int32
    classes: np.ndarray  # (N, K) int8
    boxes: np.ndarray  # (N, K, 4) int16
    # (N, C) float32: a frozen backbone's pooled outputs, attached while a hash head trains on them
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def label_text(labels_row: np.ndarray, class_names: tuple[str, ...]) -> str:
    """Class names of one multi-hot row, in class order, comma-separated; "(empty set)" for none."""
    names = [class_names[c] for c in np.flatnonzero(np.asarray(labels_row))]
    return ", ".join(names) if names else "(empty set)"


def label_sets_of(labels: np.ndarray) -> list[frozenset[int]]:
    """Label set of each multi-hot row of ``labels`` (N, C)."""
    return [frozenset(np.flatnonzero(row).tolist()) for row in np.asarray(labels)]
