"""Attention-based bit selection, method 1's steps 1-3 (docs/methods.md), as pure functions on arrays.

Shapes: Conv7 maps are (C, h, w); CAM weights are (H, C); maps drawn on the image are (S, S).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

ALL = slice(None)

# The side at which the CAM is binarised and each map's overlap s_c counted, whatever the image size:
# s_c costs C x S x S, so a 224-px ResNet-50 (2,048 maps) at full size would cost 12x the work at 64 and
# take most of a search; the maps are 7x7 to 14x14, so 64 loses nothing they resolve.
ATTENTION_SIZE = 64


def normalise(maps: np.ndarray) -> np.ndarray:
    """Min-max each map (over its last two axes) to [0, 1]; a constant map becomes all zeros."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _interpolation(n: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cv2's bilinear resize of a length-n axis to `size`, as two source taps per output:
    (first, second) source indices and their (weights) for every output position.

    Found by resizing the unit vectors, so it is cv2's own rule (borders clamp to one tap).
    """
    basis = np.eye(n, dtype=np.float32)
    matrix = np.stack(
        [cv2.resize(basis[j][None], (size, 1), interpolation=cv2.INTER_LINEAR)[0] for j in range(n)], 1
    )  # (size, n), at most two non-zeros a row
    first = np.argmax(matrix != 0, axis=1)
    second = np.minimum(first + 1, n - 1)
    w_first = matrix[np.arange(size), first]
    w_second = np.where(second > first, matrix[np.arange(size), second], 0).astype(np.float32)
    return first, second, w_first, w_second


def _mix(source: np.ndarray, taps: tuple[np.ndarray, ...], axis: int = 0) -> np.ndarray:
    """w0 * source[i0] + w1 * source[i1] along `axis`, for taps (i0, i1, w0, w1) of some outputs.

    Elementwise with a fixed order, so any subset of outputs is bit-identical to the same outputs of
    the whole upsample (a matrix product rounds differently for different shapes); in place, because
    the temporaries are the cost at this size.
    """
    first, second, w_first, w_second = taps
    shape = [1] * source.ndim
    shape[axis] = -1
    out = np.take(source, first, axis=axis)
    out *= w_first.reshape(shape)
    other = np.take(source, second, axis=axis)
    other *= w_second.reshape(shape)
    out += other
    return out


def _taps(n: int, size: int, positions: np.ndarray | slice) -> tuple[np.ndarray, ...]:
    return tuple(t[positions] for t in _interpolation(n, size))


def _channels_last(maps: np.ndarray) -> np.ndarray:
    """(n, h, w) -> contiguous (h, w, n): every gather below then copies whole channel vectors."""
    return np.ascontiguousarray(np.asarray(maps, dtype=np.float32).transpose(1, 2, 0))


def _upsample_channels_last(maps: np.ndarray, size: int, rows: np.ndarray | slice, cols) -> np.ndarray:
    """(h, w, n) -> (R, K, n): the upsample at output `rows` x `cols`."""
    by_rows = _mix(maps, _taps(maps.shape[0], size, rows))  # (R, w, n)
    return _mix(by_rows, _taps(maps.shape[1], size, cols), axis=1)


def upsample(
    maps: np.ndarray, size: int, rows: np.ndarray | slice = ALL, cols: np.ndarray | slice = ALL
) -> np.ndarray:
    """(n, h, w) -> (n, size, size), bilinear as cv2.resize: Conv7 cells back onto image pixels.

    `rows` and `cols` pick output positions; the numbers are the same as in the full upsample.
    """
    return _upsample_channels_last(_channels_last(maps), size, rows, cols).transpose(2, 0, 1)


def _pixels(by_rows: np.ndarray, size: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(R, w, n) -> (P, n): `upsample` at the pixels (rows[p] of by_rows, output column cols[p])."""
    first, second, w_first, w_second = _taps(by_rows.shape[1], size, cols)
    base = rows * by_rows.shape[1]
    flat = by_rows.reshape(-1, by_rows.shape[2])
    return _mix(flat, (base + first, base + second, w_first, w_second))


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


def maps_region(
    conv7: np.ndarray, channels: np.ndarray, theta: float, size: int = ATTENTION_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Where some feature maps fire in one image: their activation maps AM_c averaged and normalised to
    [0, 1], then binarised at theta and cut to the largest component, as M_avg is for the query (step 1).

    (C, h, w) maps and L channels -> the (S, S) mean map and its (S, S) bool region.
    """
    maps = normalise(upsample(np.asarray(conv7, dtype=np.float32)[np.asarray(channels)], size))
    mean = normalise(maps.mean(axis=0)[None])[0]
    return mean, attention_region(mean, theta)[1]


def feature_map_scores(
    activation_maps: np.ndarray, region: np.ndarray, theta: float
) -> tuple[np.ndarray, np.ndarray]:
    """B_c = [AM_c > theta] and s_c = sum(B_c AND region) (eq. 2.4): (C, S, S) -> (C, S, S), (C,)."""
    binarised = activation_maps > theta
    return binarised, (binarised & region[None]).sum(axis=(1, 2)).astype(np.int64)


@functools.lru_cache(maxsize=8)
def _extreme_positions(n: int, size: int) -> np.ndarray:
    """Output positions of a bilinear upsample (n -> size) where each map takes its min and its max.

    Outputs that mix the same two source cells are linear in the weight, so over each such run the
    extremes sit at its two ends (a clamped border copies a cell). The min and max over the whole
    S x S map are the min and max over these rows x these columns (about 2n of S each).
    """
    first, second, _, _ = _interpolation(n, size)
    runs: dict[tuple[int, int], list[int]] = {}
    for position, taps in enumerate(zip(first.tolist(), second.tolist(), strict=True)):
        runs.setdefault(taps, []).append(position)
    return np.unique([end for run in runs.values() for end in (run[0], run[-1])])


def region_scores(conv7: np.ndarray, region: np.ndarray, theta: float) -> np.ndarray:
    """s_c of eq. 2.4 from the Conv7 maps (C, h, w) and a region (S, S), upsampling only what it needs.

    AM_c > theta is the upsampled map above low_c + theta * span_c; low and high come from the few
    positions where a bilinear upsample has its extremes, and the maps are evaluated only at the
    region's pixels. The same numbers as the full upsampled maps (`upsample`; tested on val).
    """
    size, (channels, h, w) = region.shape[0], conv7.shape
    rows, cols = np.nonzero(region)  # the region's pixels, row by row
    if len(rows) == 0:
        return np.zeros(channels, dtype=np.int64)
    maps = _channels_last(conv7)  # (h, w, C)
    corners = _upsample_channels_last(maps, size, _extreme_positions(h, size), _extreme_positions(w, size))
    corners = corners.reshape(-1, channels)
    low, high = corners.min(axis=0), corners.max(axis=0)
    span = high - low
    threshold = np.where(span > 0, low + theta * span, np.inf)  # (C,); a constant map never passes
    by_rows = _mix(maps, _taps(h, size, slice(rows[0], rows[-1] + 1)))  # (R, w, C)
    above = _pixels(by_rows, size, rows - rows[0], cols) > threshold  # (P, C)
    # summing bytes into 16-bit counters is several times faster than counting bools into int64
    counter = np.uint16 if len(rows) < 1 << 16 else np.uint32
    return above.view(np.uint8).sum(axis=0, dtype=counter).astype(np.int64)


def select_bits(scores: np.ndarray, top_l: int) -> np.ndarray:
    """Indices of the top-L scores, high to low; equal scores in channel order (stable sort)."""
    if not 1 <= top_l <= len(scores):
        raise ValueError(f"L must be between 1 and {len(scores)}, got {top_l}")
    return np.argsort(-scores, kind="stable")[:top_l]


@dataclass(frozen=True)
class Attention:
    """Everything the UI draws for one query, at the attention's resolution S x S (ATTENTION_SIZE)."""

    m_avg: np.ndarray  # (S, S) averaged global-bit CAM in [0, 1]
    b_avg: np.ndarray  # (S, S) bool, M_avg > theta
    region: np.ndarray  # (S, S) bool, largest connected component of B_avg
    conv7: np.ndarray  # (C, h, w) the query's Conv7 maps
    scores: np.ndarray  # (C,) int, s_c
    selected: np.ndarray  # (L,) int, channels of H_l compared at re-rank time

    @functools.cached_property
    def upsampled(self) -> np.ndarray:
        """(C, S, S) the Conv7 maps upsampled to the image, made only when a picture needs them."""
        return upsample(self.conv7, self.region.shape[0])

    def activation_map(self, channel: int) -> np.ndarray:
        """AM_c: feature map c upsampled and normalised to [0, 1] (method 1, step 2)."""
        return normalise(upsample(self.conv7[channel][None], self.region.shape[0]))[0]

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
    """Method 1's steps 1-3 (docs/methods.md) for one image's Conv7 maps.

    A given `region` (S, S) bool replaces the CAM's attention region: the user's "point at the object".
    """
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"theta must be in [0, 1], got {theta}")
    conv7 = np.asarray(conv7, dtype=np.float32)
    # M_avg = mean_j M_j = (mean_j s_j w_j) . I: the mean of the bit CAMs in one weighted sum (linearity)
    weights = cam_weights if bit_signs is None else cam_weights * np.asarray(bit_signs)[:, None]
    m_sum = (weights.mean(axis=0) @ conv7.reshape(len(conv7), -1)).reshape(conv7.shape[1:])  # (h, w)
    m_avg = normalise(cv2.resize(m_sum, (size, size), interpolation=cv2.INTER_LINEAR)[None])[0]
    b_avg, cam_region = attention_region(m_avg, theta, largest_only)
    if region is None:
        region = cam_region
    elif region.shape != (size, size):
        raise ValueError(f"a region must be a ({size}, {size}) mask, got {region.shape}")
    scores = region_scores(conv7, region.astype(bool), theta)
    return Attention(m_avg, b_avg, region, conv7, scores, select_bits(scores, top_l))


def attend_code(
    conv7: np.ndarray,
    cam_weights: np.ndarray,
    global_bits: np.ndarray,
    theta: float,
    top_l: int,
    size: int = ATTENTION_SIZE,
    **options,
) -> Attention:
    """`attend` with each global bit's CAM signed by the bit's value (0/1) in this image."""
    return attend(
        conv7, cam_weights, theta, top_l, size, bit_signs=global_bits.astype(np.float32) * 2 - 1, **options
    )
