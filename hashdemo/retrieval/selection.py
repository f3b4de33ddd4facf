"""Which local bits a query compares: the CAM attention (method 1, docs/methods.md), a given box, the most
active maps, or random bits. Each returns channel orders (N, C), best first; the first L are selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdemo.model.cam import ATTENTION_SIZE, attend_code
from hashdemo.model.checkpoints import Checkpoint
from hashdemo.model.networks import Encoded


@dataclass(frozen=True)
class CamAttention:
    """The CAM attention of a batch of images at one theta."""

    orders: np.ndarray  # (N, C) channels by overlap score, high to low: the first L are Psi_q
    positive: np.ndarray  # (N,) channels that overlap the region at all
    regions: np.ndarray  # (N, S, S) bool, the attention region
    m_avg: np.ndarray  # (N, S, S) float32, the averaged bit CAM in [0, 1]


def cam_attention(checkpoint: Checkpoint, encoded: Encoded, theta: float, largest_only: bool = True):
    """Method 1's steps 1-3 (docs/methods.md) for every image of `encoded` (its Conv7 maps)."""
    weights = checkpoint.model.cam_weights().numpy()
    channels = encoded.conv7.shape[1]
    attentions = [
        attend_code(conv7, weights, bits, theta, channels, largest_only=largest_only)
        for conv7, bits in zip(encoded.conv7, encoded.global_bits, strict=True)
    ]
    return CamAttention(
        np.stack([a.selected for a in attentions]),
        np.array([(a.scores > 0).sum() for a in attentions]),
        np.stack([a.region for a in attentions]),
        np.stack([a.m_avg for a in attentions]),
    )


def box_orders(checkpoint: Checkpoint, encoded: Encoded, boxes: np.ndarray, theta: float) -> np.ndarray:
    """(N, C) channels by overlap with a given box (top, left, height, width) instead of the CAM region:
    what a user pointing at the object gets ("point at the object"), at the same theta."""
    weights = checkpoint.model.cam_weights().numpy()
    channels = encoded.conv7.shape[1]
    orders = []
    for conv7, bits, box in zip(encoded.conv7, encoded.global_bits, boxes, strict=True):
        top, left, height, width = box
        region = np.zeros((ATTENTION_SIZE, ATTENTION_SIZE), bool)  # boxes on the attention grid
        region[top : top + height, left : left + width] = True
        orders.append(attend_code(conv7, weights, bits, theta, channels, region=region).selected)
    return np.stack(orders)


def activation_orders(encoded: Encoded) -> np.ndarray:
    """(N, C) channels by mean activation, high to low: selection without any attention region."""
    return np.argsort(-encoded.pooled, axis=1, kind="stable")


def random_orders(n: int, channels: int, seed: int) -> np.ndarray:
    return np.argsort(np.random.default_rng(seed).random((n, channels)), axis=1)
