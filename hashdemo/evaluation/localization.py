"""Where the CAM attention region falls among an image's items, and which item it picks.

Items are a data set's recorded boxes (top, left, height, width) in image pixels. All figures are
over the images with 2 or more items (with one item, every protocol is the same). Definitions, in
docs/results.md too:

- attended item: the item whose box overlaps the region (largest component of B_avg) in the most
  pixels; on a tie (also when the region touches no box) the larger item, then the earlier one.
- touches_item: the region overlaps at least one item box by a pixel.
- attended_is_largest: the attended item is the image's largest item (the largest-item protocol's).
- items_covered: how many images have 0 / 1 / 2 / 3 items with at least 20% of their box inside the
  region.
- pointing_game: the peak of M_avg lies inside an item's box.
- energy_in_boxes: the share of M_avg's mass (normalised to [0, 1], so non-negative) inside the union
  of the item boxes, averaged over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.data.split import Split
from hashdemo.model.cam import ATTENTION_SIZE

COVERED_SHARE = 0.2  # an item counts as covered when this share of its box lies inside the region


@dataclass(frozen=True)
class Items:
    """The items of the multi-item images of a split."""

    ids: np.ndarray  # (M,) image ids within the split
    classes: np.ndarray  # (M, K) int class per item slot, -1 for an empty slot
    boxes: np.ndarray  # (M, K, 4) int (top, left, height, width), -1 for an empty slot

    def masks(self, size: int) -> np.ndarray:
        """(M, K, S, S) bool: each item's box as a mask (all False for an empty slot)."""
        grid = np.arange(size)
        top, left, height, width = (self.boxes[..., k][..., None] for k in range(4))  # (M, K, 1)
        rows = (grid >= top) & (grid < top + height) & (self.classes[..., None] >= 0)
        cols = (grid >= left) & (grid < left + width)
        return rows[..., :, None] & cols[..., None, :]

    @property
    def areas(self) -> np.ndarray:
        """(M, K) box areas, -1 for an empty slot."""
        boxes = self.boxes.astype(np.int64)
        return np.where(self.classes >= 0, boxes[..., 2] * boxes[..., 3], -1)

    def largest(self) -> np.ndarray:
        """(M,) the slot of each image's largest item."""
        return np.argmax(self.areas, axis=1)

    def pick(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The class (M,) and box (M, 4) of one item slot per image."""
        rows = np.arange(len(self.ids))
        return self.classes[rows, slots].astype(np.int64), self.boxes[rows, slots].astype(np.int64)


def multi_item(split: Split) -> Items:
    """The images of `split` with two or more items, their boxes on the attention grid."""
    ids = np.flatnonzero((split.classes >= 0).sum(axis=1) >= 2)
    boxes = on_attention_grid(split.boxes[ids], split.images.shape[1])
    return Items(ids, split.classes[ids].astype(np.int64), boxes)


def on_attention_grid(boxes: np.ndarray, image_size: int, grid: int = ATTENTION_SIZE) -> np.ndarray:
    """Boxes (..., 4) in image pixels -> the cells they touch on a `grid` x `grid` attention map, -1
    padding kept; the identity when the images are `grid` pixels."""
    boxes = np.asarray(boxes, np.int64)
    if image_size == grid:
        return boxes
    scale = grid / image_size
    top, left = np.floor(boxes[..., 0] * scale), np.floor(boxes[..., 1] * scale)
    bottom = np.ceil((boxes[..., 0] + boxes[..., 2]) * scale)
    right = np.ceil((boxes[..., 1] + boxes[..., 3]) * scale)
    grid = np.stack([top, left, bottom - top, right - left], axis=-1).astype(np.int64)
    return np.where(boxes[..., 2:3] >= 0, grid, -1)


def overlaps(items: Items, regions: np.ndarray) -> np.ndarray:
    """(M, K) pixels of each item's box inside the region; regions (M, S, S) bool."""
    return np.einsum(
        "mkij,mij->mk", items.masks(regions.shape[-1]).astype(np.int32), regions.astype(np.int32)
    )


def attended_slots(items: Items, regions: np.ndarray) -> np.ndarray:
    """(M,) the attended item's slot: most overlap, then larger area, then the earlier slot."""
    key = overlaps(items, regions) * (1 << 20) + np.maximum(items.areas, -1)  # areas < 2^20
    key = np.where(items.classes >= 0, key, -1)
    return np.argmax(key, axis=1)


def localization(items: Items, regions: np.ndarray, m_avg: np.ndarray) -> dict:
    """The figures of the module docstring for one theta: regions and m_avg are (M, S, S)."""
    masks = items.masks(regions.shape[-1])  # (M, K, S, S)
    inside = overlaps(items, regions)  # (M, K)
    covered = ((inside >= COVERED_SHARE * np.maximum(items.areas, 1)) & (items.classes >= 0)).sum(axis=1)
    peaks = m_avg.reshape(len(m_avg), -1).argmax(axis=1)
    any_box = masks.any(axis=1).reshape(len(m_avg), -1)  # (M, S*S)
    rows = np.arange(len(m_avg))
    mass = m_avg.reshape(len(m_avg), -1)
    energy = (mass * any_box).sum(axis=1) / np.maximum(mass.sum(axis=1), 1e-12)
    return {
        "images": len(items.ids),
        "touches_item": float((inside.max(axis=1) > 0).mean()),
        "attended_is_largest": float((attended_slots(items, regions) == items.largest()).mean()),
        "items_covered": [int((covered == n).sum()) for n in range(items.classes.shape[1] + 1)],
        "pointing_game": float(any_box[rows, peaks].mean()),
        "energy_in_boxes": float(energy.mean()),
    }
