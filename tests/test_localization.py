"""Where the CAM region falls (hashdemo.evaluation.localization) on hand-made 8x8 images, every figure
worked out by hand."""

from types import SimpleNamespace

import numpy as np
import pytest

from hashdemo.evaluation.localization import (
    COVERED_SHARE,
    Items,
    attended_slots,
    localization,
    multi_item,
    on_attention_grid,
    overlaps,
)

S = 8
EMPTY = (-1, -1, -1, -1)


def region(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((S, S), bool)
    mask[rows, cols] = True
    return mask


# Three images, square boxes as (top, left, side) (stored as (top, left, height, width)):
#   0: class 3 at (0, 0, 4) (area 16, the largest), class 7 at (4, 4, 3) (area 9); region rows/cols 4-7
#   1: class 1 at (0, 0, 2) (4), class 2 at (0, 4, 4) (16, the largest), class 5 at (5, 0, 3) (9); no region
#   2: class 0 at (0, 0, 2) (4), class 4 at (0, 2, 2) (4); region rows 0-1, cols 1-2 (two pixels of each)
ITEMS = Items(
    ids=np.array([10, 11, 12]),
    classes=np.array([[3, 7, -1], [1, 2, 5], [0, 4, -1]]),
    boxes=np.array(
        [
            [(0, 0, 4, 4), (4, 4, 3, 3), EMPTY],
            [(0, 0, 2, 2), (0, 4, 4, 4), (5, 0, 3, 3)],
            [(0, 0, 2, 2), (0, 2, 2, 2), EMPTY],
        ]
    ),
)
REGIONS = np.stack(
    [region(slice(4, 8), slice(4, 8)), np.zeros((S, S), bool), region(slice(0, 2), slice(1, 3))]
)


def test_masks_are_the_boxes_end_exclusive():
    masks = ITEMS.masks(S)
    assert masks.shape == (3, 3, S, S)
    np.testing.assert_array_equal(masks[0, 1], region(slice(4, 7), slice(4, 7)))
    np.testing.assert_array_equal(masks[1, 2], region(slice(5, 8), slice(0, 3)))
    assert not masks[0, 2].any() and not masks[2, 2].any()  # empty slots
    assert masks.sum(axis=(2, 3)).tolist() == [[16, 9, 0], [4, 16, 9], [4, 4, 0]]


def test_areas_largest_and_pick():
    assert ITEMS.areas.tolist() == [[16, 9, -1], [4, 16, 9], [4, 4, -1]]
    assert ITEMS.largest().tolist() == [0, 1, 0]  # a tie goes to the earlier slot
    classes, boxes = ITEMS.pick(np.array([1, 2, 0]))
    assert classes.tolist() == [7, 5, 0]
    assert boxes.tolist() == [[4, 4, 3, 3], [5, 0, 3, 3], [0, 0, 2, 2]]


def test_overlaps_count_pixels_inside_the_region():
    assert overlaps(ITEMS, REGIONS).tolist() == [[0, 9, 0], [0, 0, 0], [2, 2, 0]]


def test_attended_slot_most_overlap_then_larger_then_earlier():
    # 0: only the class-7 item overlaps; 1: no overlap, so the larger item; 2: equal overlap and area
    assert attended_slots(ITEMS, REGIONS).tolist() == [1, 1, 0]


def test_attended_slot_never_picks_an_empty_slot():
    items = Items(
        np.zeros(1, np.int64), np.array([[-1, 2, 5]]), np.array([[EMPTY, (0, 0, 2, 2), (4, 4, 3, 3)]])
    )
    assert attended_slots(items, np.zeros((1, S, S), bool)).tolist() == [2]  # the larger real item
    assert attended_slots(items, region(slice(0, 1), slice(0, 1))[None]).tolist() == [1]


def test_multi_item_keeps_the_images_with_two_or_three_items():
    classes = np.array([[4, -1, -1], [1, 2, -1], [0, 3, 9], [-1, -1, -1]], np.int8)
    boxes = np.arange(4 * 3 * 4, dtype=np.int16).reshape(4, 3, 4)
    images = np.zeros((4, 64, 64, 3), np.uint8)  # at the attention grid's side: boxes unscaled
    items = multi_item(SimpleNamespace(classes=classes, boxes=boxes, images=images))
    assert items.ids.tolist() == [1, 2]
    assert items.classes.tolist() == [[1, 2, -1], [0, 3, 9]]
    assert items.classes.dtype == np.int64 and items.boxes.dtype == np.int64
    np.testing.assert_array_equal(items.boxes, boxes[[1, 2]])


def test_localization_by_hand():
    m_avg = np.zeros((3, S, S))
    m_avg[0, 0, 0], m_avg[0, 5, 5], m_avg[0, 7, 0] = 1.0, 0.5, 0.5  # peak in a box; 1.5 of 2.0 in boxes
    m_avg[1, 4, 0], m_avg[1, 6, 1] = 1.0, 0.25  # peak outside every box; 0.25 of 1.25 in boxes
    # image 2: no mass at all, so its peak is pixel (0, 0) (in a box) and its energy 0
    result = localization(ITEMS, REGIONS, m_avg)
    assert result.pop("energy_in_boxes") == pytest.approx((0.75 + 0.2 + 0.0) / 3)
    assert result == {
        "images": 3,
        "touches_item": pytest.approx(2 / 3),  # image 1's empty region touches nothing
        "attended_is_largest": pytest.approx(2 / 3),  # image 0 attends the smaller item
        # covered (>= 20% of the box inside): image 0 one item, image 1 none, image 2 both
        "items_covered": [1, 1, 1, 0],
        "pointing_game": pytest.approx(2 / 3),
    }


def test_an_item_is_covered_from_its_share_of_the_box():
    items = Items(
        np.zeros(1, np.int64), np.array([[1, 2, -1]]), np.array([[(0, 0, 5, 5), (0, 5, 3, 3), EMPTY]])
    )
    inside = int(np.ceil(COVERED_SHARE * 25))  # 5 of the 25-pixel box: covered; 4 would not be
    for pixels, covered in ((inside, [0, 1, 0, 0]), (inside - 1, [1, 0, 0, 0])):
        mask = np.zeros(S * S, bool)
        mask[[r * S + c for r in range(5) for c in range(5)][:pixels]] = True
        result = localization(items, mask.reshape(1, S, S), np.ones((1, S, S)))
        assert result["items_covered"] == covered


def test_a_rectangular_box_masks_its_height_and_width():
    items = Items(np.array([0]), np.array([[2, 5]]), np.array([[(1, 2, 3, 5), (0, 0, 1, 1)]]))
    np.testing.assert_array_equal(items.masks(S)[0, 0], region(slice(1, 4), slice(2, 7)))
    assert items.areas.tolist() == [[15, 1]]
    assert items.largest().tolist() == [0]


def test_boxes_of_smaller_images_are_scaled_to_the_cells_they_touch():
    boxes = np.array([[(1, 2, 3, 5), (-1, -1, -1, -1)]])
    assert on_attention_grid(boxes, 32, 64).tolist() == [[[2, 4, 6, 10], [-1, -1, -1, -1]]]
    assert on_attention_grid(np.array([(1, 1, 1, 1)]), 3, 2).tolist() == [[0, 0, 2, 2]]  # touched cells
