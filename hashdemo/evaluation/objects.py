"""The object protocols of method 1, on a dataset that records its items (definitions: docs/results.md):

- largest item (`object_map@100`, `object_focused`): relevant = holds the class of the query's largest
  item, whatever the attention looks at;
- attended object (`attended_map@100`, `attended_object`): relevant = holds the class of the item the
  CAM region covers most, the object the method itself picked;
- a box as the region (`hier_box*`): what a user pointing at the object gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.evaluation.codes import Codes
from hashdemo.evaluation.localization import Items, attended_slots, localization
from hashdemo.evaluation.scores import TOP
from hashdemo.evaluation.tuning import THETAS
from hashdemo.model.checkpoints import Checkpoint
from hashdemo.retrieval.metrics import mean_average_precision
from hashdemo.retrieval.protocol import hierarchical_ranking
from hashdemo.retrieval.selection import CamAttention, box_orders, cam_attention

PROTOCOLS = {
    "object_focused": "largest item: queries with 2-3 items; relevant = holds the class of the query's "
    "largest item (by box area)",
    "each_item": "each item: queries with 2-3 items, every item in turn; relevant = holds that item's "
    "class; the same ranking scored once per item and averaged over items",
    "attended_object": "attended object (a check within method 1): queries with 2-3 items; relevant = "
    "holds the class of the item "
    "whose box the CAM region (largest component at the chosen theta) overlaps most (tie: the larger)",
    "hier_box_any_item": "every item of every query with 2-3 items in turn as the user's box; relevant = "
    "holds that item's class",
}


@dataclass(frozen=True)
class ObjectQueries:
    """Which queries an object protocol scores, and the class each must retrieve."""

    ids: np.ndarray  # (M,) query ids
    classes: np.ndarray  # (M,) the class a relevant gallery image holds


FIELD_PROTOCOLS = ("object", "each")  # relevance from the boxes alone: these compare methods


def object_protocols(items: Items, attention: CamAttention) -> dict[str, ObjectQueries]:
    """The largest-item, each-item and attended-object protocols over the multi-item queries."""
    regions = attention.regions[items.ids]
    image, slot = np.nonzero(items.classes >= 0)
    return {
        "object": ObjectQueries(items.ids, items.pick(items.largest())[0]),
        "each": ObjectQueries(items.ids[image], items.classes[image, slot].astype(np.int64)),
        "attended": ObjectQueries(items.ids, items.pick(attended_slots(items, regions))[0]),
    }


def field_protocols(objects: dict[str, ObjectQueries]) -> dict[str, ObjectQueries]:
    """The object protocols no method defines (the attended object is method 1's own target)."""
    return {name: objects[name] for name in FIELD_PROTOCOLS if name in objects}


def protocol_table(methods: dict[str, dict], key: str) -> dict:
    """{method: {"map@100", "std"?}} for one protocol's key out of the method rows."""
    return {
        name: {"map@100": row[key], **({"std": row[f"{key}_std"]} if f"{key}_std" in row else {})}
        for name, row in methods.items()
    }


def boxed_scores(
    checkpoint: Checkpoint,
    query: Codes,
    galleries: dict[str, tuple[Codes, np.ndarray]],
    items: Items,
    slots: dict[str, np.ndarray | None],
    theta: float,
    top_l: int,
    n_coarse: int,
) -> dict[str, dict[str, float]]:
    """map@100 with an item's box as the region, per gallery: {"hier_box_<name>": ...} for one slot per
    query (`slots[name]`), or every item of every query in turn (`slots[name]` None)."""
    rows = {}
    for name, chosen in slots.items():
        if chosen is None:  # every item in turn
            image, slot = np.nonzero(items.classes >= 0)
        else:
            image, slot = np.arange(len(items.ids)), chosen
        boxes, classes = items.boxes[image, slot], items.classes[image, slot]
        encoded = query.hier.take(items.ids[image])
        orders = box_orders(checkpoint, encoded, boxes, theta)[:, :top_l]
        for gallery_name, (gallery, g_labels) in galleries.items():
            ranked = hierarchical_ranking(encoded, gallery.hier, orders, n_coarse, TOP)
            one_hot = np.eye(g_labels.shape[1], dtype=np.uint8)[classes]
            rows.setdefault(gallery_name, {})[name] = mean_average_precision(ranked, one_hot, g_labels, k=TOP)
    return rows


def localization_by_theta(
    checkpoint: Checkpoint, query: Codes, items: Items, theta: float, chosen: CamAttention
) -> list[dict]:
    """The localization figures at every theta of the grid (`chosen` is the attention at `theta`)."""
    multi = query.hier.take(items.ids)
    m_avg = chosen.m_avg[items.ids]  # M_avg does not depend on theta
    rows = []
    for grid_theta in THETAS:
        regions = (
            chosen.regions[items.ids]
            if grid_theta == theta
            else cam_attention(checkpoint, multi, grid_theta).regions
        )
        rows.append({"theta": grid_theta, **localization(items, regions, m_avg)})
    return rows
