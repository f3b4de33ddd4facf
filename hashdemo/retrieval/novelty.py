"""How far a query lies from the data: an out-of-domain score, calibrated on val.

novelty = 1 - the cosine similarity of the query's pooled Conv7 features to its nearest gallery image.
The evaluation sets the cut-off at the 99th percentile over the val split (so at most 1% of val images
are flagged) and stores it with the model's test metrics; the app warns above it.

A second check needs no model: every outfit shows items, whose edges give fine detail (the mean
absolute Laplacian of the slightly blurred grey image), while a smooth picture (a two-colour gradient,
a plain wall) looks like the outfits' dark, blurred backgrounds to the features and passes the novelty
cut-off. Below the detail of the val image at the 1st percentile, the app says the picture holds no
items.
"""

from __future__ import annotations

import cv2
import numpy as np

VAL_QUANTILE = 0.99  # at most 1% of val images flagged
DETAIL_QUANTILE = 0.01  # at most 1% of val images called too smooth


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def novelty(query_pooled: np.ndarray, gallery_unit: np.ndarray) -> np.ndarray:
    """(Q,) 1 - max cosine similarity to the gallery; `gallery_unit` is `unit_rows(gallery pooled)`."""
    return 1.0 - (unit_rows(query_pooled) @ gallery_unit.T).max(axis=1)


DETAIL_BLUR = 1.0  # sigma in pixels: pixel noise and a gradient's dithering go, the items' edges stay
NEAR_BLACK = 8  # grey levels: a border row or column this dark is the pad, not the picture
EDGE = 2  # pixels of the content's rim left out of the detail: where a pad met the picture


def detail(images: np.ndarray) -> np.ndarray:
    """(N,) mean |Laplacian| of each (S, S, 3) uint8 image's grey levels after a slight Gaussian blur: how
    much fine detail it has. Without the blur a linear colour ramp with a little noise (dithered, as
    drawing programs make them) had the detail of an outfit. Black border rows and columns are left out
    (`content`): the pad that squares a wide picture is an edge the picture does not have."""
    grey = (content(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)) for image in images)
    blurred = (cv2.GaussianBlur(g, (0, 0), DETAIL_BLUR) if g.size else g for g in grey)
    laplacians = (np.abs(cv2.Laplacian(g, cv2.CV_32F))[EDGE:-EDGE, EDGE:-EDGE] for g in blurred)
    return np.array([lap.mean() if lap.size else 0.0 for lap in laplacians])


def content(grey: np.ndarray) -> np.ndarray:
    """The image without its black border rows and columns (empty for an all-black image); the resize's
    ringing leaves the pad a few grey levels above 0, hence NEAR_BLACK."""
    rows = np.flatnonzero(grey.max(axis=1) > NEAR_BLACK)
    cols = np.flatnonzero(grey.max(axis=0) > NEAR_BLACK)
    if not len(rows) or not len(cols):
        return grey[:0, :0]
    return grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def detail_threshold(val_images: np.ndarray) -> float:
    """The detail below which a picture counts as too smooth: DETAIL_QUANTILE of the val images."""
    return float(np.quantile(detail(val_images), DETAIL_QUANTILE))


def novelty_threshold(val_pooled: np.ndarray, gallery_pooled: np.ndarray) -> float:
    """The novelty cut-off that flags VAL_QUANTILE's share of the val images."""
    return float(np.quantile(novelty(val_pooled, unit_rows(gallery_pooled)), VAL_QUANTILE))
