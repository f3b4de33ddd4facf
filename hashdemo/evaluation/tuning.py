"""Choosing theta, L and K for the two-level search on val (500 val queries against the other 1,500),
by val map@100; never on the query split."""

from __future__ import annotations

import numpy as np

from hashdemo.model.checkpoints import Checkpoint
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.metrics import mean_average_precision
from hashdemo.retrieval.protocol import coarse_candidates, hierarchical_ranking, validation_ids
from hashdemo.retrieval.selection import cam_attention

TOP = 100


THETAS = (0.3, 0.4, 0.5, 0.6, 0.7)


TOP_LS = (8, 16, 32, 64, 128)


COARSE_SHARES = (0.01, 0.03, 0.1)


TIE = 0.002  # val map@100 within this of the best counts as a tie, broken by fewer bits, then smaller K


def tune(checkpoint: Checkpoint, val: Encoded, val_labels: np.ndarray) -> dict:
    """Grid over theta, L and K's share of the database for hier_cam, scored by val map@100."""
    q, db = validation_ids(len(val_labels))
    grid = []
    for theta in THETAS:
        orders = cam_attention(checkpoint, val.take(q), theta).orders
        for top_l in (top_l for top_l in TOP_LS if top_l < val.local_bits.shape[1]):
            for share in COARSE_SHARES:
                n_coarse = coarse_candidates(share, len(db))
                ranked = hierarchical_ranking(val.take(q), val.take(db), orders[:, :top_l], n_coarse, TOP)
                grid.append(
                    {
                        "theta": theta,
                        "L": top_l,
                        "K_share": share,
                        "val_map@100": mean_average_precision(ranked, val_labels[q], val_labels[db], k=TOP),
                        "val_map": mean_average_precision(
                            hierarchical_ranking(val.take(q), val.take(db), orders[:, :top_l], n_coarse),
                            val_labels[q],
                            val_labels[db],
                        ),
                    }
                )
    best_score = max(row["val_map@100"] for row in grid)
    near = [row for row in grid if row["val_map@100"] >= best_score - TIE]
    return {"best": min(near, key=lambda row: (row["L"], row["K_share"], -row["val_map@100"])), "grid": grid}
