"""How far a query lies from the data: an out-of-domain score, calibrated on val.

novelty = 1 - the cosine similarity of the query's pooled Conv7 features to its nearest gallery image.
The evaluation sets the cut-off at the 99th percentile over the val split (so at most 1% of val images
are flagged) and stores it with the model's test metrics; the app warns above it.
"""

from __future__ import annotations

import numpy as np

VAL_QUANTILE = 0.99  # at most 1% of val images flagged


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def novelty(query_pooled: np.ndarray, gallery_unit: np.ndarray) -> np.ndarray:
    """(Q,) 1 - max cosine similarity to the gallery; `gallery_unit` is `unit_rows(gallery pooled)`."""
    return 1.0 - (unit_rows(query_pooled) @ gallery_unit.T).max(axis=1)
