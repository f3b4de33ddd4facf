"""The field's data sets, imported from small copies in their real on-disk formats (no downloads):
their own splits kept, val carved by the recorded rule, boxes moved with the letterbox, the field's
cut-off recorded, and every malformed case refused in one line with nothing half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from field_copies import COCO_CATEGORIES, VOC_CLASSES, write_cifar10, write_coco, write_lists, write_voc2007

from hashdemo.cli.data import main as data_main
from hashdemo.data.dataset import open_dataset
from hashdemo.data.errors import DatasetError
from hashdemo.data.field_sets import ImportOptions, cifar_splits
from hashdemo.data.imported import import_source, load_dataset
from hashdemo.data.kinds import KINDS, read_source
from hashdemo.data.sources import letterboxed


def imported(kind: str, name: str, cache, size: int = 32, **options) -> dict:
    return import_source(name, read_source(kind, ImportOptions(name=name, **options)), size, cache)


def one_line_refusal(capsys, args: list[str], message: str) -> None:
    assert data_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


@pytest.fixture
def cifar_checks_pass(monkeypatch):
    """The copy's batches are not the real ones, so torchvision's md5 checks are passed (as its own
    tests do); everything else is torchvision's CIFAR10 reading the pickles."""
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)


@pytest.mark.parametrize(
    ("protocol", "sizes"),
    [
        ("cifar10", {"query": 1000, "train": 5000, "gallery": 54000}),
        ("cifar10-1", {"query": 1000, "train": 5000, "gallery": 59000}),
        ("cifar10-2", {"query": 10000, "train": 50000, "gallery": 50000}),
    ],
)
def test_the_three_cifar_protocols_have_deephash_pytorchs_sizes(protocol, sizes):
    targets = np.repeat(np.arange(10), 6000)
    splits = cifar_splits(targets, protocol, tuple("abcdefghij"))
    counts = {name: sum(name in s for s in splits) for name in sizes}
    assert counts == sizes
    query = [i for i, s in enumerate(splits) if "query" in s]
    assert np.bincount(targets[query]).tolist() == [sizes["query"] // 10] * 10  # per class
    assert not any("query" in s and len(s) > 1 for s in splits)  # the query split is held out
    assert cifar_splits(targets, protocol, tuple("abcdefghij")) == splits  # seeded


def test_cifar10_imports_through_torchvision_with_its_protocol(tmp_path, cifar_checks_pass):
    root = write_cifar10(tmp_path / "cifar", per_class=610)
    meta = imported("cifar10", "cifar", tmp_path / "cache", root=root, protocol="cifar10")
    assert meta["kind"] == "cifar10" and meta["cutoff"] is None  # CIFAR-10: mAP over the whole database
    assert meta["splits"] == {"train": 4500, "val": 500, "query": 1000, "gallery": 100}
    assert (
        "cifar10: per class 100 query, 500 train" in meta["split_rule"]
        and "val = a seeded 10%" in meta["split_rule"]
    )
    dataset = open_dataset("cifar", tmp_path / "cache")
    assert dataset.classes[0] == "airplane" and dataset.kind is KINDS["cifar10"] and not dataset.has_items
    query = dataset.splits["query"]
    assert query.images.shape == (1000, 32, 32, 3) and query.labels.sum(axis=1).tolist() == [1] * 1000


def test_cifar10_missing_offline_download_and_bad_protocol_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HASHDEMO_OFFLINE", "1")
    one_line_refusal(
        capsys, ["import", "c", "--from", "cifar10", "--root", str(tmp_path)], "Dataset not found"
    )
    args = ["import", "c", "--from", "cifar10", "--root", str(tmp_path), "--download"]
    one_line_refusal(capsys, args, "HASHDEMO_OFFLINE=1: CIFAR-10 is not downloaded")
    with pytest.raises(DatasetError, match="--protocol is one of"):
        read_source("cifar10", ImportOptions(root=tmp_path, protocol="cifar100"))
    assert not (tmp_path / "cache" / "datasets" / "c").exists()


def test_list_files_keep_their_splits_and_the_cutoff_follows_the_field(tmp_path):
    root = write_lists(tmp_path / "nus", {"train.txt": 150, "test.txt": 40, "database.txt": 120})
    meta = imported("lists", "nuswide-mini", tmp_path / "cache", root=root)
    assert meta["splits"] == {"train": 135, "val": 15, "query": 40, "gallery": 120}  # as the files give them
    assert meta["cutoff"] == 5000 and meta["classes"] == ["red", "green", "blue"]  # NUS-WIDE: mAP@5000
    dataset = load_dataset("nuswide-mini", tmp_path / "cache")
    with np.load(next((tmp_path / "cache/datasets/nuswide-mini").glob("labels-*.npz"))) as stored:
        assert sorted(stored["query_rows"].tolist()) == list(range(1, 41))  # test.txt's lines, all of them
    assert imported("lists", "other", tmp_path / "cache", root=root, cutoff="all")["cutoff"] is None
    assert imported("lists", "imagenet-mini", tmp_path / "cache", root=root)["cutoff"] == 1000
    assert dataset.classes == ("red", "green", "blue")


def test_list_files_missing_a_file_or_with_bad_lines(tmp_path, capsys, monkeypatch):
    root = write_lists(tmp_path / "lists", {"train.txt": 150, "test.txt": 40, "database.txt": 120})
    lines = (root / "test.txt").read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # two bits instead of three
    lines[5] = "images/gone.jpg 1 0 0"
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    meta = imported("lists", "l", tmp_path / "cache", root=root)
    problems = {row["line"]: row["problem"] for row in meta["bad_rows"]}
    assert problems == {4: "test.txt: not 3 zeros and ones (the classes number 3)", 6: "file not found"}
    (root / "database.txt").unlink()
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path / "cache2"))
    one_line_refusal(capsys, ["import", "l", "--from", "lists", "--root", str(root)], "lacks database.txt")


def test_voc2007_imports_with_boxes_through_the_letterbox(tmp_path):
    root = write_voc2007(tmp_path / "voc", n_trainval=200, n_test=40)
    meta = imported("voc2007", "voc", tmp_path / "cache", size=60, root=root)
    assert meta["splits"] == {"train": 180, "val": 20, "query": 40, "gallery": 200}  # database = trainval
    assert meta["classes"] == sorted(VOC_CLASSES) and meta["cutoff"] is None
    xml = [path.read_text() for path in (root / "VOCdevkit/VOC2007/Annotations").glob("*.xml")]
    assert (
        meta["counts"]["difficult_boxes"] == sum(text.count("<difficult>1</difficult>") for text in xml) > 0
    )
    assert meta["counts"]["boxes_dropped"] == 0
    dataset = open_dataset("voc", tmp_path / "cache")
    assert dataset.has_items and dataset.kind.boxes
    gallery = dataset.splits["gallery"]
    assert gallery.boxes.shape[1:] == (2, 4) and gallery.classes.shape[1] == 2
    # the first trainval image is 60x40: padded by 10 rows above, at scale 1; its first box's XML corner
    # (x0, y0) sits at (left, top) = (x0 - 1, y0 - 1 + 10)
    xml = (root / "VOCdevkit/VOC2007/Annotations/000000.xml").read_text()
    y0 = int(xml.split("<ymin>")[1].split("<")[0])
    top, left, height, width = gallery.boxes[0, 0].tolist()
    assert (left, width) == (0, 25) and top == y0 - 1 + 10
    assert (gallery.images[0, top : top + height, left : left + width].mean(axis=(0, 1)) > 100).any()


def test_letterbox_moves_a_box_with_the_pad_and_the_scale():
    ((name, box),) = letterboxed((("cat", 10.0, 20.0, 30.0, 40.0),), 200, 100, 50)  # 200 wide, 100 high
    assert name == "cat" and box == (15, 5, 8, 10)  # pad 50 rows; scale 1/4: top (10 + 50) / 4


def test_voc2007_bad_annotations_skip_a_few_and_refuse_many(tmp_path):
    root = write_voc2007(tmp_path / "voc", n_trainval=200, n_test=40)
    annotations = root / "VOCdevkit/VOC2007/Annotations"
    (annotations / "000003.xml").write_text("<annotation><object><name>cat</name>")  # truncated
    meta = imported("voc2007", "voc", tmp_path / "cache", root=root)
    assert [row["path"] for row in meta["bad_rows"]] == ["VOCdevkit/VOC2007/JPEGImages/000003.jpg"]
    assert "annotation unreadable" in meta["bad_rows"][0]["problem"]
    for xml in sorted(annotations.glob("*.xml"))[:30]:
        xml.write_text("not xml")
    with pytest.raises(DatasetError, match="rows are bad"):
        imported("voc2007", "voc2", tmp_path / "cache", root=root)
    assert not (tmp_path / "cache" / "datasets" / "voc2").exists()  # nothing half-written


def test_coco_imports_categories_crowds_and_skips_unannotated_images(tmp_path):
    root = write_coco(tmp_path / "coco", n_images=240, n_empty=3)
    meta = imported("coco", "coco", tmp_path / "cache", root=root, query_size=40, train_size=100)
    assert meta["classes"] == list(COCO_CATEGORIES.values())  # named by the file, in category-id order
    assert meta["splits"] == {"train": 90, "val": 10, "query": 40, "gallery": 200}  # database: all but query
    assert meta["counts"]["crowd_boxes"] == 1 and meta["counts"]["images_without_annotations"] == 3
    assert meta["cutoff"] == 5000  # the field's mAP@5000 on MS-COCO
    dataset = open_dataset("coco", tmp_path / "cache")
    query = dataset.splits["query"]
    held = query.classes >= 0
    assert dataset.has_items and np.array_equal(
        np.sort(np.unique(query.classes[held])), np.flatnonzero(query.labels.any(axis=0))
    )
    for row, labels in zip(query.classes, query.labels, strict=True):  # each image's boxes name its labels
        assert set(row[row >= 0].tolist()) == set(np.flatnonzero(labels).tolist())


def test_a_malformed_coco_file_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    root = write_coco(tmp_path / "coco", n_images=20)
    annotation = root / "annotations" / "instances_train2017.json"
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path / "cache"))
    args = ["import", "c", "--from", "coco", "--root", str(root), "--query-size", "5", "--train-size", "5"]
    one_line_refusal(capsys, args, "usable images; an import needs at least")  # 20 images: too few
    annotation.write_text(annotation.read_text()[:-40])
    one_line_refusal(capsys, args, "instances_train2017.json is malformed")
    document = {"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1}], "categories": []}
    annotation.write_text(json.dumps(document))
    one_line_refusal(capsys, args, "instances_train2017.json is malformed")
    assert not (tmp_path / "cache" / "datasets" / "c").exists()


COPIES = {  # each kind's small copy, and its import flags
    "voc2007": (lambda root: write_voc2007(root, n_trainval=220, n_test=40), []),
    "coco": (lambda root: write_coco(root, n_images=260), ["--query-size", "40", "--train-size", "120"]),
    "lists": (lambda root: write_lists(root, {"train.txt": 160, "test.txt": 40, "database.txt": 120}), []),
    "cifar10": (lambda root: write_cifar10(root, per_class=610), []),
}


@pytest.fixture(scope="module", params=sorted(COPIES))
def kind_trained(request, tmp_path_factory):
    """A copy of one kind imported and the app's two models trained on it for one epoch."""
    from hashdemo.cli.train import main as train_main

    kind, (write, flags) = request.param, COPIES[request.param]
    cache = tmp_path_factory.mktemp(f"{kind}-cache")
    root = write(tmp_path_factory.mktemp(kind))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HASHDEMO_CACHE_DIR", str(cache))
        mp.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
        args = ["import", "set", "--from", kind, "--root", str(root), "--size", "32", *flags]
        assert data_main(args) == 0
        for model in ("hier", "dcoh"):
            args = [model, "--dataset", "set", "--epochs", "1", "--batch-size", "32"]
            args += ["--operator-steps", "20", "--train-size", "600"]
            assert train_main(args) == 0
    return kind, cache


@pytest.mark.slow
def test_each_kind_trains_evaluates_and_serves(kind_trained, tmp_path, monkeypatch, capsys):
    """Every kind, once imported, trains, evaluates at its own cut-off and serves; a set with boxes runs
    the object protocols and the localization figures, and the app knows the boxes of its images."""
    from hashdemo.cli.evaluate import main as evaluate_main
    from hashdemo.service.engine import Engine

    kind, cache = kind_trained
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(cache))
    assert evaluate_main(["hier", "--dataset", "set", "--json", str(tmp_path / "hier.json")]) == 0
    printed = capsys.readouterr().out
    hier = json.loads((tmp_path / "hier.json").read_text())
    assert 0 < hier["methods"]["hier_cam"]["map@100"] <= 1
    assert hier["field"]["set_cutoff"] == open_dataset("set", cache).cutoff
    assert "map@set" in hier["lengths"]["32"]["global"]
    boxed = KINDS[kind].boxes
    assert ("Skipped: largest-item" in printed) is not boxed
    if boxed:
        assert "largest" in json.dumps(hier["protocols"]) and hier["localization"]
    engine = Engine.load(cache_dir=cache, dataset="set")
    image = engine.query_images[0]
    answer = engine.search(image, *(engine.defaults[key] for key in ("theta", "L", "K")))
    assert len(answer.reranked.ids) > 0 and engine.data_description == "images of set"
    items = engine.known.items(image)
    assert (items is not None and bool((items[0] >= 0).any())) is boxed
    assert not engine.models.is_ready("dcoh")  # encoded on first use only
    composed = engine.compose(engine.query_images[0], engine.query_images[1], "union")
    assert engine.models.is_ready("dcoh") and composed is not None
