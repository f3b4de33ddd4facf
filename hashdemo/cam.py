"""Attention-based bit selection, SPEC section 1 steps 1-3, as pure functions on numpy arrays.

Shapes: Conv7 maps are (C, h, w); CAM weights are (H, C); maps drawn on the image are (S, S).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


def normalise(maps: np.ndarray) -> np.ndarray:
    """Min-max each map (over its last two axes) to [0, 1]; a constant map becomes all zeros."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _interpolation_matrix(n: int, size: int) -> np.ndarray:
    """(size, n) matrix R with R @ v = cv2's bilinear resize of a length-n vector to `size`."""
    basis = np.eye(n, dtype=np.float32)
    return np.stack(
        [cv2.resize(basis[j][None], (size, 1), interpolation=cv2.INTER_LINEAR)[0] for j in range(n)], 1
    )


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """(n, h, w) -> (n, size, size), bilinear: Conv7 cells back onto image pixels.

    cv2's bilinear resize is separable, so it is R_h @ map @ R_w^T: one batched matrix product
    for all maps (about 20x faster than a resize per map at C = 512; a test checks the equality).
    """
    maps = np.asarray(maps, dtype=np.float32)
    rows, cols = _interpolation_matrix(maps.shape[-2], size), _interpolation_matrix(maps.shape[-1], size)
    return rows @ maps @ cols.T


def bit_cams(conv7: np.ndarray, cam_weights: np.ndarray, bit_signs: np.ndarray | None = None) -> np.ndarray:
    """M_j = sum_c w_jc * I_c for every global bit j (Zhou et al. 2016): (C, h, w), (H, C) -> (H, h, w).

    With `bit_signs` (+-1 per bit) each CAM shows the evidence for the value the bit takes in this
    image, the hashing analogue of taking the CAM of the predicted class.
    """
    if conv7.ndim != 3 or cam_weights.ndim != 2 or cam_weights.shape[1] != conv7.shape[0]:
        raise ValueError(
            f"need conv7 (C, h, w) and weights (H, C); got {conv7.shape} and {cam_weights.shape}"
        )
    weights = cam_weights if bit_signs is None else cam_weights * np.asarray(bit_signs)[:, None]
    return np.einsum("jc,chw->jhw", weights, conv7)


def attention_region(
    m_avg: np.ndarray, theta: float, largest_only: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """B_avg = [M_avg > theta] and its largest 8-connected component (the attention region).

    `largest_only=False` keeps every component (an extra variant the evaluation reports, labelled).
    """
    b_avg = m_avg > theta
    if not largest_only:
        return b_avg, b_avg.copy()
    count, components, stats, _ = cv2.connectedComponentsWithStats(b_avg.astype(np.uint8), connectivity=8)
    if count <= 1:  # label 0 is the background: nothing passed theta
        return b_avg, np.zeros_like(b_avg)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return b_avg, components == largest


def feature_map_scores(
    activation_maps: np.ndarray, region: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray]:
    """B_c = [AM_c > theta] and s_c = sum(B_c AND region) (eq. 2.4): (C, S, S) -> (C, S, S), (C,)."""
    binarised = activation_maps > theta
    return binarised, (binarised & region[None]).sum(axis=(1, 2)).astype(np.int64)


def region_scores(upsampled: np.ndarray, region: np.ndarray, theta: float) -> np.ndarray:
    """s_c of eq. 2.4 straight from the upsampled maps: only the region's pixels are compared.

    AM_c > theta is the raw map above low_c + theta * span_c, so the normalised maps are never
    materialised; equal to `feature_map_scores(normalise(upsampled), region, theta)[1]` (tested).
    """
    flat = upsampled.reshape(len(upsampled), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = high - low
    threshold = np.where(span > 0, low + theta * span, np.inf)  # (C,); a constant map never passes
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if len(rows) == 0:
        return np.zeros(len(upsampled), dtype=np.int64)
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # the region's bounding box
    above = upsampled[:, box[0], box[1]] > threshold[:, None, None]
    return (above & region[box]).sum(axis=(1, 2)).astype(np.int64)


def select_bits(scores: np.ndarray, top_l: int) -> np.ndarray:
    """Indices of the top-L scores, high to low; equal scores in channel order (stable sort)."""
    if not 1 <= top_l <= len(scores):
        raise ValueError(f"L must be between 1 and {len(scores)}, got {top_l}")
    return np.argsort(-scores, kind="stable")[:top_l]


@dataclass(frozen=True)
class Attention:
    """Everything the UI draws for one query, at image resolution S x S."""

    m_avg: np.ndarray  # (S, S) averaged global-bit CAM in [0, 1]
    b_avg: np.ndarray  # (S, S) bool, M_avg > theta
    region: np.ndarray  # (S, S) bool, largest connected component of B_avg
    upsampled: np.ndarray  # (C, S, S) the Conv7 maps upsampled to the image; AM_c is each one normalised
    scores: np.ndarray  # (C,) int, s_c
    selected: np.ndarray  # (L,) int, channels of H_l compared at re-rank time

    def activation_map(self, channel: int) -> np.ndarray:
        """AM_c: feature map c upsampled and normalised to [0, 1] (SPEC section 1 step 2)."""
        return normalise(self.upsampled[channel][None])[0]

    @property
    def n_positive(self) -> int:
        """How many of the L selected maps overlap the region at all; the rest were filled by the tie rule."""
        return int((self.scores[self.selected] > 0).sum())


def attend(
    conv7: np.ndarray,
    cam_weights: np.ndarray,
    theta: float,
    top_l: int,
    size: int,
    bit_signs: np.ndarray | None = None,
    region: np.ndarray | None = None,
    largest_only: bool = True,
) -> Attention:
    """SPEC section 1 steps 1-3 for one image's Conv7 maps.

    A given `region` (S, S) bool replaces the CAM's attention region: the user's "point at the object".
    """
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"theta must be in [0, 1], got {theta}")
    # M_avg = mean_j M_j = (mean_j s_j w_j) . I: the mean of the bit CAMs in one weighted sum (linearity)
    weights = cam_weights if bit_signs is None else cam_weights * np.asarray(bit_signs)[:, None]
    m_avg = normalise(upsample(bit_cams(conv7, weights.mean(axis=0, keepdims=True)), size))[0]
    b_avg, cam_region = attention_region(m_avg, theta, largest_only)
    if region is None:
        region = cam_region
    elif region.shape != (size, size):
        raise ValueError(f"a region must be a ({size}, {size}) mask, got {region.shape}")
    upsampled = upsample(conv7, size)  # (C, S, S)
    scores = region_scores(upsampled, region.astype(bool), theta)
    return Attention(m_avg, b_avg, region, upsampled, scores, select_bits(scores, top_l))


def attend_code(
    conv7: np.ndarray,
    cam_weights: np.ndarray,
    global_bits: np.ndarray,
    theta: float,
    top_l: int,
    size: int = 64,
    **options,
) -> Attention:
    """`attend` with each global bit's CAM signed by the bit's value (0/1) in this image."""
    return attend(
        conv7, cam_weights, theta, top_l, size, bit_signs=global_bits.astype(np.float32) * 2 - 1, **options
    )
