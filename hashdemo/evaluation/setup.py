"""What every part of method 1's evaluation shares: the val-chosen parameters and the query split's
codes, attention, object protocols and bit selections (`prepare` builds it from a dataset)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.evaluation.codes import Codes
from hashdemo.evaluation.field import tune_fusion
from hashdemo.evaluation.localization import Items, multi_item
from hashdemo.evaluation.objects import ObjectQueries, object_protocols
from hashdemo.evaluation.tuning import tune
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from hashdemo.model.networks import Encoded
from hashdemo.model.registry import PEERS
from hashdemo.retrieval.protocol import coarse_candidates
from hashdemo.retrieval.selection import CamAttention, activation_orders, cam_attention, random_orders

RANDOM_SEEDS = 5  # hier_random: this many draws of L random bits per query
# The seed's loss as one-level codes (the speed rows need both), then the field's peers: every
# one-level model gets a row where it is trained.
BASELINES = ("single_level", "single_level_local")
ONE_LEVEL = (*BASELINES, *PEERS)


@dataclass(frozen=True)
class Setup:
    """What every part of the evaluation shares: the chosen parameters and the query split's codes,
    attention, object protocols and bit selections."""

    hier: Checkpoint
    one_level: dict[str, Checkpoint]  # the one-level models that are trained (baselines and peers)
    theta: float
    top_l: int
    k_share: float  # K as a share of the database, as chosen on val
    n_coarse: int  # K on the gallery (also at every other size)
    global_weight: float  # the fused re-rank's weight on the global distance, chosen on val
    query: Codes
    q_labels: np.ndarray
    cam: CamAttention
    items: Items | None  # the multi-item queries, where the dataset records items
    objects: dict[str, ObjectQueries]
    orders: dict[str, np.ndarray]  # (Q, C) channel orders of the two-level methods but hier_random
    random_draws: list[np.ndarray]  # RANDOM_SEEDS draws of (Q, L) random bits

    def encode(self, images: np.ndarray) -> Codes:
        return encode_codes(self.hier, self.one_level, images)


def encode_codes(
    hier: Checkpoint, one_level: dict[str, Checkpoint], images: np.ndarray, conv7: bool = False
) -> Codes:
    """Images under the hierarchical model and every trained one-level model."""
    codes = {name: checkpoint.model.encode(images).global_bits for name, checkpoint in one_level.items()}
    return Codes(hier.model.encode(images, with_conv7=conv7), codes)


def make_setup(dataset: Dataset, hier: Checkpoint, one_level: dict[str, Checkpoint], tuned: dict) -> Setup:
    theta, top_l, share = (tuned["best"][key] for key in ("theta", "L", "K_share"))
    weight = tuned["fusion"]["weight"]
    query_split, n_gallery = dataset.splits["query"], len(dataset.splits["gallery"])
    query = encode_codes(hier, one_level, query_split.images, conv7=True)
    cam = cam_attention(hier, query.hier, theta)
    items = None if dataset.lacks("items") else multi_item(query_split)
    n_local = query.hier.local_bits.shape[1]
    return Setup(
        hier,
        one_level,
        theta,
        top_l,
        share,
        coarse_candidates(share, n_gallery),
        weight,
        query,
        query_split.labels,
        cam,
        items,
        {} if items is None else object_protocols(items, cam),
        {
            "hier_cam": cam.orders,
            "hier_cam_all_components": cam_attention(hier, query.hier, theta, largest_only=False).orders,
            "hier_activation": activation_orders(query.hier),
        },
        [random_orders(len(query_split), n_local, seed)[:, :top_l] for seed in range(RANDOM_SEEDS)],
    )


def prepare(dataset: Dataset, directory: Path) -> tuple[Checkpoint, dict, Encoded, dict, Setup, list[str]]:
    """The shipped model, the trained one-level models, val's codes, the val grid and its choices, the
    setup they make, and a note for each one-level model that is not trained."""
    hier = load_checkpoint("hier", directory)
    one_level, skipped = {}, []
    for name in ONE_LEVEL:
        try:
            one_level[name] = load_checkpoint(name, directory)
        except CheckpointError:
            skipped.append(f"{name}: not trained")
    splits = dataset.splits
    val = hier.model.encode(splits["val"].images, with_conv7=True)
    tuned = tune(hier, val, splits["val"].labels)
    tuned["fusion"] = tune_fusion(hier, val, splits["val"].labels, tuned["best"])
    return hier, one_level, val, tuned, make_setup(dataset, hier, one_level, tuned), skipped
