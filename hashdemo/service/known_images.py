"""Known dataset images, recognised by their pixels: a picked example or a gallery image sent back as a
file is the same array, so its labels, its (split, id) and its recorded items are known."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from hashdemo.evaluation.localization import Items as Recorded
from hashdemo.evaluation.localization import attended_slots, on_attention_grid

Items = tuple[np.ndarray, np.ndarray]  # one image's item classes (3,) and boxes (3, 3)


def pixel_digest(image: np.ndarray) -> bytes:
    """The image's identity: the SHA-1 of its pixels (C order, whatever the array's layout)."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest()


class KnownImages:
    """Dataset images by pixel digest: their labels, their (split, id) and their recorded items."""

    def __init__(
        self,
        splits: Sequence[tuple[str, np.ndarray, np.ndarray]],
        items: Items | None = None,
    ):
        """`splits`: (name, images, labels) in order. An image held twice keeps its first (split, id) but
        the labels and items of its last occurrence. `items`: the recorded item classes (N, 3) and boxes
        (N, 3, 3) of every split's images, in the same order; None: no image's items are known."""
        self._labels: dict[bytes, np.ndarray] = {}
        self._sources: dict[bytes, tuple[str, int]] = {}
        self._items: dict[bytes, Items] = {}
        total = sum(len(images) for _, images, _ in splits)
        if items is not None and not len(items[0]) == len(items[1]) == total:
            raise ValueError(f"items for {len(items[0])} images, but the splits hold {total}")
        position = 0
        for split, images, labels in splits:
            for index, (image, lab) in enumerate(zip(images, labels, strict=True)):
                digest = pixel_digest(image)
                self._labels[digest] = lab
                self._sources.setdefault(digest, (split, index))
                if items is not None:
                    self._items[digest] = (items[0][position], items[1][position])
                position += 1

    def labels(self, image: np.ndarray) -> np.ndarray | None:
        """The label set of a dataset image, None for any other image."""
        return self._labels.get(pixel_digest(image))

    def source(self, image: np.ndarray) -> tuple[str, int] | None:
        """(split, id) of a dataset image (the first split holding it), None for any other image."""
        return self._sources.get(pixel_digest(image))

    def items(self, image: np.ndarray) -> Items | None:
        """The recorded item classes and boxes of a dataset image, None when unknown."""
        return self._items.get(pixel_digest(image))

    def attended_class(self, image: np.ndarray, region: np.ndarray) -> int | None:
        """The class of the recorded item an (S, S) attention region sits on (docs/results.md's attended
        item); None for an image without recorded items."""
        known = self.items(image)
        if known is None or (known[0] < 0).all():
            return None
        classes, boxes = (np.asarray(a, np.int64)[None] for a in known)
        boxes = on_attention_grid(boxes, image.shape[0], region.shape[-1])
        slot = attended_slots(Recorded(np.zeros(1, np.int64), classes, boxes), region[None])[0]
        return int(classes[0, slot])
