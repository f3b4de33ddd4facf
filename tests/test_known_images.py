"""KnownImages: dataset images recognised by their pixels, on hand-made 2x2 pictures (no models, no data)."""

import numpy as np
import pytest

from hashdemo.service.known_images import KnownImages, pixel_digest


def picture(value: int) -> np.ndarray:
    return np.full((2, 2, 3), value, np.uint8)


QUERY = np.stack([picture(1), picture(2)])
GALLERY = np.stack([picture(3), picture(2), picture(4)])  # picture(2) is in both splits
QUERY_LABELS = np.array([[1, 0, 0], [0, 1, 0]], np.uint8)
GALLERY_LABELS = np.array([[0, 0, 1], [1, 1, 0], [1, 0, 1]], np.uint8)
# recorded items of the five images, query split first: classes (N, 3), boxes (N, 3, 4)
# as (top, left, height, width)
CLASSES = np.array([[0, -1, -1], [1, -1, -1], [2, -1, -1], [0, 1, -1], [-1, -1, -1]])
BOXES = np.full((5, 3, 4), -1)
BOXES[:4, 0] = [0, 0, 2, 2]  # one item over the whole picture
BOXES[3, :2] = [[0, 0, 1, 1], [1, 1, 1, 1]]  # two 1x1 items: class 0 top-left, class 1 bottom-right


@pytest.fixture
def known():
    return KnownImages(
        [("query", QUERY, QUERY_LABELS), ("gallery", GALLERY, GALLERY_LABELS)], (CLASSES, BOXES)
    )


def test_labels_and_sources_of_known_images(known):
    assert known.source(picture(1)) == ("query", 0)
    assert known.source(picture(4)) == ("gallery", 2)
    np.testing.assert_array_equal(known.labels(picture(3)), [0, 0, 1])
    # an image held twice: its first (split, id), the labels and items of its last occurrence
    assert known.source(picture(2)) == ("query", 1)
    np.testing.assert_array_equal(known.labels(picture(2)), [1, 1, 0])
    np.testing.assert_array_equal(known.items(picture(2))[0], [0, 1, -1])


def test_any_other_image_is_unknown(known):
    for other in (picture(5), np.full((2, 2, 3), 30, np.uint8), picture(1)[:1]):
        assert known.labels(other) is None and known.source(other) is None and known.items(other) is None
        assert known.attended_class(other, np.ones((2, 2), bool)) is None


def test_the_digest_reads_pixels_not_layout():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    strided = np.asfortranarray(image)
    assert pixel_digest(strided) == pixel_digest(image) != pixel_digest(image[::-1])
    known = KnownImages([("query", image[None], np.ones((1, 2), np.uint8))])
    assert known.source(strided) == ("query", 0) and known.items(image) is None


def test_attended_class_is_the_item_under_the_region(known):
    top_left = np.zeros((2, 2), bool)
    top_left[0, 0] = True
    bottom_right = np.zeros((2, 2), bool)
    bottom_right[1, 1] = True
    assert known.attended_class(picture(2), top_left) == 0
    assert known.attended_class(picture(2), bottom_right) == 1
    assert known.attended_class(picture(4), top_left) is None  # no recorded items


def test_items_must_match_the_images():
    with pytest.raises(ValueError, match="items for 4 images, but the splits hold 5"):
        KnownImages(
            [("query", QUERY, QUERY_LABELS), ("gallery", GALLERY, GALLERY_LABELS)], (CLASSES[:4], BOXES[:4])
        )
