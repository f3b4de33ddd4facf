"""Method 1's steps 1-3 (docs/methods.md) on hand-made arrays, each against an independent computation
(per-map OpenCV resizes, plain loops), and the CAM against its gradient form."""

import cv2
import numpy as np
import pytest
import torch

from hashdemo.model.cam import (
    attend,
    attention_region,
    bit_cams,
    feature_map_scores,
    maps_region,
    normalise,
    region_scores,
    select_bits,
    upsample,
)
from hashdemo.model.networks import HashNet, preprocess


def test_largest_component_is_the_bigger_blob():
    m = np.zeros((6, 6), np.float32)
    m[0, 0] = 0.9  # a one-pixel blob
    m[3:6, 2:5] = 0.8  # a nine-pixel blob
    b_avg, region = attention_region(m, theta=0.5)
    assert b_avg.sum() == 10
    assert region.sum() == 9 and region[3:6, 2:5].all() and not region[0, 0]


def test_nothing_above_theta_gives_an_empty_region():
    b_avg, region = attention_region(np.full((4, 4), 0.3, np.float32), theta=0.5)
    assert not b_avg.any() and not region.any()


def test_overlap_scores_count_shared_pixels():
    region = np.zeros((4, 4), bool)
    region[:2, :2] = True  # 4 pixels
    maps = np.zeros((3, 4, 4), np.float32)
    maps[0, :2, :2] = 1.0  # all 4 inside
    maps[1, 1:3, 1:3] = 1.0  # 1 inside (pixel (1, 1))
    maps[2, 2:, 2:] = 1.0  # none inside
    binarised, scores = feature_map_scores(maps, region, theta=0.5)
    assert scores.tolist() == [4, 1, 0]
    assert binarised.sum() == 12


def test_select_bits_orders_high_to_low_with_ties_by_channel():
    scores = np.array([3, 7, 3, 9, 7])
    assert select_bits(scores, 4).tolist() == [3, 1, 4, 0]
    with pytest.raises(ValueError):
        select_bits(scores, 0)
    with pytest.raises(ValueError):
        select_bits(scores, 6)


def test_normalise_maps_to_unit_range_and_constant_to_zero():
    maps = np.stack([np.arange(16, dtype=np.float32).reshape(4, 4), np.full((4, 4), 5.0, np.float32)])
    out = normalise(maps)
    assert out[0].min() == 0 and out[0].max() == 1
    assert not out[1].any()


def test_bit_cams_is_weighted_sum_of_maps_and_signs_flip():
    conv7 = np.random.default_rng(0).random((3, 2, 2)).astype(np.float32)
    weights = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]], np.float32)
    cams = bit_cams(conv7, weights)
    np.testing.assert_allclose(cams[0], conv7[0] - conv7[2], rtol=1e-6)
    np.testing.assert_allclose(bit_cams(conv7, weights, np.array([-1.0, 1.0]))[0], -cams[0], rtol=1e-6)


def test_attend_returns_consistent_shapes_and_leaves_input_untouched():
    conv7 = np.random.default_rng(1).random((8, 4, 4)).astype(np.float32)
    weights = np.random.default_rng(2).normal(size=(5, 8)).astype(np.float32)
    before = conv7.copy()
    att = attend(conv7, weights, theta=0.4, top_l=3, size=16)
    np.testing.assert_array_equal(conv7, before)
    assert att.m_avg.shape == (16, 16) and att.upsampled.shape == (8, 16, 16)
    assert att.activation_map(2).min() == 0 and att.activation_map(2).max() == 1
    assert att.region.sum() <= att.b_avg.sum()
    # the selection from the scores by hand: highest first, ties by the lower channel
    by_hand = sorted(range(8), key=lambda c: (-att.scores[c], c))[:3]
    assert att.selected.tolist() == by_hand
    with pytest.raises(ValueError):
        attend(conv7, weights, theta=1.5, top_l=3, size=16)


def test_linear_head_cam_equals_gradient_form_after_normalisation():
    torch.manual_seed(0)
    model = HashNet(conv7_channels=16, bits=8).eval()
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    out = model(preprocess(image))
    conv7 = out.conv7
    conv7.retain_grad()
    for bit in range(8):
        conv7.grad = None
        torch.atanh(out.global_relaxed[0, bit]).backward(retain_graph=True)  # the bit's pre-activation
        alpha = conv7.grad[0].sum(dim=(1, 2))  # Grad-CAM channel weights, (C,)
        grad_cam = (alpha[:, None, None] * conv7[0]).sum(0).detach().numpy()
        cam = bit_cams(conv7[0].detach().numpy(), model.cam_weights().numpy())[bit]
        np.testing.assert_allclose(normalise(cam[None])[0], normalise(grad_cam[None])[0], atol=1e-4)


def test_upsample_equals_a_bilinear_resize_per_map():
    maps = np.random.default_rng(3).random((5, 8, 8)).astype(np.float32)
    expected = np.stack([cv2.resize(m, (64, 64), interpolation=cv2.INTER_LINEAR) for m in maps])
    np.testing.assert_allclose(upsample(maps, 64), expected, atol=1e-5)


def full_grid_scores(conv7: np.ndarray, region: np.ndarray, theta: float) -> np.ndarray:
    """eq. 2.4 on the whole upsampled maps: B_c = [AM_c > theta] with AM_c min-max normalised, as
    the raw map above low_c + theta * span_c (what attend compared before issue 18)."""
    maps = upsample(conv7, region.shape[0])
    low, high = maps.min(axis=(1, 2)), maps.max(axis=(1, 2))
    threshold = np.where(high > low, low + theta * (high - low), np.inf)
    return ((maps > threshold[:, None, None]) & region).sum(axis=(1, 2))


@pytest.mark.parametrize("theta", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("shape", [(6, 8, 8), (5, 4, 7), (3, 2, 2)])
def test_region_scores_equal_the_full_grid(theta, shape):
    rng = np.random.default_rng(4)
    conv7 = rng.random(shape).astype(np.float32)
    conv7[-1] = 0.25  # a constant map normalises to zeros and never passes theta
    region = rng.random((32, 32)) < 0.3
    np.testing.assert_array_equal(region_scores(conv7, region, theta), full_grid_scores(conv7, region, theta))
    assert region_scores(conv7, region, theta)[-1] == 0
    assert not region_scores(conv7, np.zeros((32, 32), bool), theta).any()


def test_upsample_of_some_positions_equals_those_of_the_full_upsample():
    conv7 = np.random.default_rng(8).random((4, 8, 8)).astype(np.float32)
    rows, cols = np.array([0, 5, 17, 63]), slice(10, 30)
    np.testing.assert_array_equal(upsample(conv7, 64, rows, cols), upsample(conv7, 64)[:, rows, cols])


def test_region_scores_agree_with_the_normalised_overlap():
    rng = np.random.default_rng(9)
    conv7 = rng.random((6, 8, 8)).astype(np.float32)
    region = rng.random((64, 64)) < 0.3
    expected = feature_map_scores(normalise(upsample(conv7, 64)), region, 0.5)[1]
    np.testing.assert_allclose(region_scores(conv7, region, 0.5), expected, atol=2)  # ulps at the cut


def test_a_given_region_replaces_the_cam_region():
    conv7 = np.random.default_rng(5).random((8, 4, 4)).astype(np.float32)
    weights = np.random.default_rng(6).normal(size=(5, 8)).astype(np.float32)
    region = np.zeros((16, 16), bool)
    region[:4, :4] = True
    att = attend(conv7, weights, theta=0.4, top_l=3, size=16, region=region)
    np.testing.assert_array_equal(att.region, region)
    # eq. 2.4 by hand: each map resized on its own by OpenCV, scaled to [0, 1], binarised, overlapped
    scores = []
    for fmap in conv7:
        am = cv2.resize(fmap, (16, 16), interpolation=cv2.INTER_LINEAR)
        am = (am - am.min()) / (am.max() - am.min())
        scores.append(int(((am > 0.4) & region).sum()))
    np.testing.assert_array_equal(att.scores, scores)
    overlapping = [c for c in att.selected.tolist() if scores[c] > 0]
    assert att.n_positive == len(overlapping) and max(scores) <= region.sum()


def test_m_avg_is_the_normalised_mean_of_the_signed_bit_cams():
    rng = np.random.default_rng(7)
    conv7 = np.maximum(rng.normal(size=(16, 8, 8)), 0).astype(np.float32)
    weights = rng.normal(size=(6, 16)).astype(np.float32)
    signs = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    att = attend(conv7, weights, theta=0.5, top_l=4, size=64, bit_signs=signs)
    expected = normalise(upsample(bit_cams(conv7, weights, signs).mean(axis=0, keepdims=True), 64))[0]
    np.testing.assert_allclose(att.m_avg, expected, atol=1e-5)


def test_where_selected_maps_fire_is_their_mean_activation_binarised_and_cut_to_one_blob():
    """The match's region: each chosen map upsampled by cv2 and min-maxed, averaged, min-maxed, above theta,
    the larger blob kept; an unchosen map changes nothing."""
    rng = np.random.default_rng(0)
    conv7 = rng.random((5, 4, 4)).astype(np.float32)
    chosen = np.array([1, 3])
    mean, region = maps_region(conv7, chosen, theta=0.6, size=16)
    each = []
    for c in chosen:
        up = cv2.resize(conv7[c], (16, 16), interpolation=cv2.INTER_LINEAR)
        each.append((up - up.min()) / (up.max() - up.min()))
    expected = np.mean(each, axis=0)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(mean, expected, atol=1e-5)
    np.testing.assert_array_equal(region, attention_region(expected.astype(np.float32), 0.6)[1])
    assert region.any() and not region.all()
    other = conv7.copy()
    other[0] = rng.random((4, 4))
    np.testing.assert_array_equal(maps_region(other, chosen, 0.6, size=16)[1], region)
