"""The out-of-domain check, calibrated on val: how often pictures unlike the training data are flagged."""

from __future__ import annotations

import cv2
import numpy as np

from hashdemo.model.checkpoints import Checkpoint
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.novelty import detail, detail_threshold, novelty, novelty_threshold, unit_rows

DRAWN_AT = 64  # the far-from-domain pictures are drawn at this side, then resized
FAR_FROM_DOMAIN = ("noise", "flat_shapes", "screenshot", "gradient")


def far_from_domain_images(kind: str, n: int, seed: int = 0, size: int = DRAWN_AT) -> np.ndarray:
    """(n, 64, 64, 3) uint8 images unlike the outfits: uniform noise, flat shapes on flat colour, a
    page-like screenshot (white, a coloured header, lines of text), or a smooth two-colour gradient."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 64, 64, 3), np.uint8)
    for image in images:
        if kind == "noise":
            image[:] = rng.integers(0, 256, image.shape)
        elif kind == "gradient":  # from one random colour to another along a random direction
            angle = rng.uniform(0, np.pi)
            rows, cols = np.mgrid[0:64, 0:64] / 63.0
            t = np.cos(angle) * cols + np.sin(angle) * rows
            t = ((t - t.min()) / (t.max() - t.min()))[..., None]
            image[:] = (rng.integers(0, 256, 3) * (1 - t) + rng.integers(0, 256, 3) * t).astype(np.uint8)
        elif kind == "flat_shapes":
            image[:] = rng.integers(0, 256, 3)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            centre, size = tuple(int(c) for c in rng.integers(16, 48, 2)), int(rng.integers(8, 24))
            if rng.random() < 0.5:
                cv2.circle(image, centre, size, colour, -1)
            else:
                cv2.rectangle(
                    image,
                    (centre[0] - size, centre[1] - size),
                    (centre[0] + size, centre[1] + size),
                    colour,
                    -1,
                )
        else:  # screenshot
            image[:] = 255
            image[:10] = rng.integers(0, 256, 3)
            for row in range(16, 64, 8):
                text = "".join(rng.choice(list("abcdefghij klmnop")) for _ in range(12))
                cv2.putText(image, text, (2, row), cv2.FONT_HERSHEY_PLAIN, 0.6, (30, 30, 30), 1)
    if size != DRAWN_AT:  # drawn at 64 px, then brought to the model's input size
        images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in images])
    return images


def out_of_domain(checkpoint: Checkpoint, val_images: np.ndarray, val: Encoded, gallery: Encoded) -> dict:
    """The two cut-offs, both calibrated on val (novelty above its 99th percentile; detail below its 1st),
    and how often each far-from-domain kind is flagged by either."""
    gallery_unit = unit_rows(gallery.pooled)
    threshold = novelty_threshold(val.pooled, gallery.pooled)
    smooth_below = detail_threshold(val_images)

    def flagged(images: np.ndarray, pooled: np.ndarray) -> float:
        return float(((novelty(pooled, gallery_unit) > threshold) | (detail(images) < smooth_below)).mean())

    rates = {}
    for kind in FAR_FROM_DOMAIN:
        images = far_from_domain_images(kind, 200, size=checkpoint.config.image_size)
        rates[kind] = flagged(images, checkpoint.model.encode(images).pooled)
    return {
        "threshold": threshold,
        "smooth_below": smooth_below,
        "val_flagged": flagged(val_images, val.pooled),
        "flagged": rates,
        "images_per_kind": 200,
    }
