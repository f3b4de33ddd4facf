"""Tests for hashdemo.data.outfits: the Fashion-MNIST outfits dataset (SPEC sec. 3)."""

import gzip
import json
import logging
from dataclasses import replace

import numpy as np
import pytest

from hashdemo.cli import data as data_cli
from hashdemo.data import fashion_mnist
from hashdemo.data import outfits as data
from hashdemo.data import split as data_split

SMALL = data.OutfitRecipe(train_size=300, val_size=100, query_size=50, gallery_size=300)

needs_fmnist = pytest.mark.skipif(
    not fashion_mnist.fmnist_present(),
    reason="Fashion-MNIST idx files not installed",
)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return data.load_outfits(SMALL, cache_dir=tmp_path_factory.mktemp("cache"))


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for field in ("images", "labels", "items"):
            np.testing.assert_array_equal(getattr(a[name], field), getattr(b[name], field))


@needs_fmnist
def test_same_seed_same_arrays_different_seed_different(splits):
    assert_same(splits, data.build_outfits(SMALL))
    other = data.build_outfits(replace(SMALL, seed=1))
    for name in data_split.SPLIT_NAMES:
        assert not np.array_equal(splits[name].images, other[name].images)
        assert not np.array_equal(splits[name].items, other[name].items)


@needs_fmnist
def test_shapes_and_dtypes(splits):
    assert list(splits) == ["train", "val", "query", "gallery"]
    for name, split in splits.items():
        n = SMALL.size_of(name)
        assert split.name == name and len(split) == n
        assert split.images.shape == (n, 64, 64, 3) and split.images.dtype == np.uint8
        assert split.labels.shape == (n, 10) and split.labels.dtype == np.uint8
        assert split.items.shape == (n, 3) and split.items.dtype == np.int32
        assert split.images.max() > 200  # items are clearly visible


@needs_fmnist
def test_labels_are_the_distinct_classes_of_the_items(splits):
    sources = {part: fashion_mnist.load_fashion_mnist(part)[1] for part in ("train", "t10k")}
    for name, split in splits.items():
        source_labels = sources["train" if name in ("train", "val") else "t10k"]
        for labels_row, items_row in zip(split.labels, split.items, strict=True):
            real = items_row[items_row >= 0]
            assert 1 <= len(real) <= 3
            assert np.all(items_row[len(real) :] == -1)  # padding only at the end
            classes = source_labels[real]
            assert len(set(classes.tolist())) == len(real)  # distinct classes
            assert set(np.flatnonzero(labels_row).tolist()) == set(classes.tolist())


@needs_fmnist
def test_label_set_sizes_cover_one_to_three(splits):
    sizes = splits["train"].labels.sum(axis=1)
    assert set(np.unique(sizes).tolist()) == {1, 2, 3}
    assert np.all(np.bincount(sizes)[1:] > 60)  # ~uniform: 100 each expected in 300


@needs_fmnist
def test_query_gallery_and_train_val_share_no_item(splits):
    def items(name):
        return set(splits[name].items[splits[name].items >= 0].tolist())

    assert not items("query") & items("gallery")
    assert not items("train") & items("val")
    checks = data.describe(splits)["disjoint"]
    assert checks["query_vs_gallery"] == {"disjoint": True, "shared_items": 0}
    assert checks["train_vs_val"] == {"disjoint": True, "shared_items": 0}


@needs_fmnist
def test_gallery_holds_all_175_label_sets(splits):
    assert len(data.all_label_sets()) == 175
    assert set(data_split.label_sets_of(splits["gallery"].labels)) == {
        frozenset(s) for s in data.all_label_sets()
    }
    assert data.describe(splits)["gallery_distinct_label_sets"] == 175


def test_boxes_never_intersect():
    rng = np.random.default_rng(0)
    placed = 0
    for _ in range(300):
        sides = rng.integers(20, 31, size=3)
        corners = data.place_boxes(sides, 64, rng)
        if corners is None:
            continue
        placed += 1
        assert np.all(corners >= 0) and np.all(corners + sides[:, None] <= 64)
        for i in range(3):
            for j in range(i):
                apart = (corners[i] + sides[i] <= corners[j]) | (corners[j] + sides[j] <= corners[i])
                assert apart.any(), (corners, sides)
    assert placed > 150


@needs_fmnist
def test_boxes_and_classes_record_where_each_item_was_drawn(splits):
    for split in splits.values():
        np.testing.assert_array_equal(data.labels_from_classes(split.classes), split.labels)
        clean = 0
        for image, boxes, classes in zip(split.images, split.boxes, split.classes, strict=True):
            outside = np.ones(image.shape[:2], bool)
            for (top, left, side, width), cls in zip(boxes, classes, strict=True):
                assert width == side  # the outfits' items are square
                if cls < 0:
                    assert side == -1
                    continue
                assert (
                    top >= 0 and top + side <= image.shape[0] and left >= 0 and left + side <= image.shape[1]
                )
                assert image[top : top + side, left : left + side].any()  # the item is there
                outside[top : top + side, left : left + side] = False
            clean += not image[outside].any()
        # on a black background (half the images) nothing lies outside the boxes
        assert clean >= 0.3 * len(split)


@pytest.mark.slow  # renders thousands of outfits
@needs_fmnist
def test_large_gallery_images_are_redrawn_from_their_id_alone(splits):
    ids = np.array([5, 1999, 2000, 3])
    together = data.render_large_gallery(np.arange(2001))
    apart = data.render_large_gallery(ids)
    np.testing.assert_array_equal(apart.images, together.images[ids])
    np.testing.assert_array_equal(apart.labels, data.labels_from_classes(apart.classes))
    query = data.load_outfits()["query"].items  # the app's 530 MB dataset, read once
    query_items = set(query[query >= 0].tolist())
    assert not query_items & set(together.items[together.items >= 0].tolist())


def test_label_helpers():
    row = np.zeros(10, dtype=np.uint8)
    row[[0, 9]] = 1
    assert data_split.label_text(row, fashion_mnist.CLASS_NAMES) == "T-shirt/top, Ankle boot"
    assert data_split.label_text(np.zeros(10, dtype=np.uint8), fashion_mnist.CLASS_NAMES) == "(empty set)"
    assert data_split.label_sets_of(np.stack([row, np.eye(10, dtype=np.uint8)[3]])) == [
        frozenset({0, 9}),
        frozenset({3}),
    ]


@needs_fmnist
@pytest.mark.parametrize("damage", ["truncate", "garbage", "stale"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, splits, damage, caplog):
    path = data.cache_path(SMALL, tmp_path)
    data.load_outfits(SMALL, cache_dir=tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:  # a valid cache file of another recipe sitting under this recipe's name
        other = replace(SMALL, seed=7)
        data.load_outfits(other, cache_dir=tmp_path)
        data.cache_path(other, tmp_path).replace(path)
    with caplog.at_level(logging.WARNING, logger="hashdemo.data.outfits"):
        rebuilt = data.load_outfits(SMALL, cache_dir=tmp_path)
    assert "rebuilding" in caplog.text
    assert_same(rebuilt, splits)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hashdemo.data.outfits"):
        assert_same(data.load_outfits(SMALL, cache_dir=tmp_path), splits)  # now a clean hit
    assert caplog.text == ""
    assert not list(tmp_path.glob("*.tmp"))


@needs_fmnist
def test_cache_file_is_pickle_free_and_reused(tmp_path, splits):
    data.load_outfits(SMALL, cache_dir=tmp_path)
    path = data.cache_path(SMALL, tmp_path)
    with np.load(path, allow_pickle=False) as npz:
        assert npz["gallery/images"].shape == (300, 64, 64, 3)
    mtime = path.stat().st_mtime_ns
    data.load_outfits(SMALL, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == mtime


def test_changed_recipe_gets_another_cache_file(tmp_path):
    base = data.cache_path(SMALL, tmp_path)
    assert data.cache_path(replace(SMALL), tmp_path) == base
    for change in ({"seed": 1}, {"clutter_prob": 0.25}, {"gallery_size": 301}, {"version": 99}):
        assert data.cache_path(replace(SMALL, **change), tmp_path) != base


def test_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path))
    assert data.cache_path(SMALL).parent == tmp_path


def test_missing_data_raises_with_both_remedies(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("HASHDEMO_FMNIST_DIR", str(empty))
    with pytest.raises(fashion_mnist.DatasetMissingError) as info:
        data.load_outfits(SMALL, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "HASHDEMO_FMNIST_DIR" in message
    assert data_cli.main(["--describe", "--cache-dir", str(tmp_path / "cache")]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == message and captured.out == ""


def test_bad_idx_magic_is_rejected(tmp_path):
    path = tmp_path / "bad-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write((0x0801).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        fashion_mnist.read_idx(path, 3)


@pytest.mark.parametrize(
    "bad", [{"min_items": 0}, {"max_items": 4}, {"max_side": 40}, {"clutter_prob": 1.5}, {"gallery_size": 0}]
)
def test_recipe_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        data.OutfitRecipe(**bad)


@needs_fmnist
def test_cli_describe_and_montage(tmp_path, capsys):
    argv = [
        "--describe",
        "--montage",
        str(tmp_path / "m.png"),
        "--cache-dir",
        str(tmp_path),
        "--train-size",
        "300",
        "--val-size",
        "100",
        "--query-size",
        "50",
        "--gallery-size",
        "300",
    ]
    assert data_cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sizes"] == {"train": 300, "val": 100, "query": 50, "gallery": 300}
    assert summary["gallery_distinct_label_sets"] == 175
    assert sum(summary["label_set_sizes"]["query"].values()) == 50
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data.cache_path(SMALL, tmp_path).is_file()  # CLI flags map onto the same recipe
