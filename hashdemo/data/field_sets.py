"""The field's data sets read by the libraries made for them, each into a `Source` with its own splits.

- cifar10: torchvision's `datasets.CIFAR10` (its pickled batches), split by DeepHash-pytorch's three
  protocols: per class, a seeded permutation of the 60,000 train and test images together gives
  `query_per_class` query images, then `train_per_class` train images, the rest the database, which
  protocol `cifar10-1` extends with the train images and `cifar10-2` replaces by them.
- lists: a folder of HashNet / DeepHash-pytorch list files (`train.txt`, `test.txt`, `database.txt`;
  lines `path b_1 ... b_C`), their splits kept as given: NUS-WIDE, MS-COCO, ImageNet-100, MIRFLICKR.
- voc2007: torchvision's `datasets.VOCDetection` (`VOCdevkit/VOC2007`): trainval is train and database,
  test is the query split; labels from the objects, `difficult` objects kept as boxes and counted.
- coco: torchvision's `datasets.CocoDetection` over pycocotools (`annotations/instances_*.json` beside
  the image folders): the images of every annotation file found, non-contiguous category ids named by
  the file, crowd boxes kept and counted, images without annotations skipped and counted; a seeded
  permutation gives `query_size` query and `train_size` train images, the database is every image but
  the query split (DeepHash-pytorch's MS-COCO protocol).

Val is carved from train in `hashdemo.data.imported` by a recorded seeded rule. Each set records the
field's mAP cut-off (`cutoff`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.errors import DatasetError
from hashdemo.data.sources import Row, Source, read_class_names, read_csv_rows, read_list_rows

SEED = 0  # every seeded split of the field's sets


@dataclass(frozen=True)
class ImportOptions:
    """What `data import NAME --from KIND ...` was given; each reader takes what it needs."""

    root: Path | None = None
    csv: Path | None = None
    list: Path | None = None
    classes: Path | None = None
    images: Path | None = None
    protocol: str | None = None
    cutoff: str | None = None  # a number or "all"; None: the field's convention for the set
    query_size: int | None = None
    train_size: int | None = None
    download: bool = False
    name: str = ""


def required_root(options: ImportOptions, what: str) -> Path:
    if options.root is None:
        raise DatasetError(f"Give --root DIR: the folder that holds {what}.")
    root = Path(options.root)
    if not root.is_dir():
        raise DatasetError(f"The root folder {root} does not exist.")
    return root


def chosen_cutoff(options: ImportOptions, default: int | None) -> int | None:
    """--cutoff N or "all" (None), else the set's convention."""
    if options.cutoff is None:
        return default
    if options.cutoff == "all":
        return None
    if not options.cutoff.isdigit() or int(options.cutoff) < 1:
        raise DatasetError(f"--cutoff is a positive whole number or 'all' (got {options.cutoff!r}).")
    return int(options.cutoff)


def offline_refusal(what: str) -> None:
    if os.environ.get("HASHDEMO_OFFLINE") == "1":
        raise DatasetError(f"HASHDEMO_OFFLINE=1: {what} is not downloaded; unset it or copy the files in.")


# ----------------------------------------------------------------------------- a plain folder


def read_folder(options: ImportOptions) -> Source:
    """A CSV (`path,labels`) or one DeepHash-pytorch list with its classes file, split by the seeded rule."""
    if (options.csv is None) == (options.list is None) or (
        options.list is not None and options.classes is None
    ):
        raise DatasetError("Give either --csv FILE, or --list FILE with --classes FILE.")
    source = Path(options.csv or options.list)
    if not source.is_file():
        raise DatasetError(f"The file {source} does not exist.")
    root = Path(options.root) if options.root is not None else source.parent
    if not root.is_dir():
        raise DatasetError(f"The root folder {root} does not exist.")
    if options.csv is not None:
        return Source("folder", read_csv_rows(source), None, root, (source,), chosen_cutoff(options, None))
    rows, classes = read_list_rows(source, read_class_names(Path(options.classes)))
    return Source(
        "folder", rows, classes, root, (source, Path(options.classes)), chosen_cutoff(options, None)
    )


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR_PROTOCOLS = {  # per class: query, train; and what the database is (DeepHash-pytorch's cifar_dataset)
    "cifar10": (100, 500, "rest"),  # 1,000 query, 5,000 train, 54,000 database
    "cifar10-1": (100, 500, "train+rest"),  # 1,000 query, 5,000 train, 59,000 database
    "cifar10-2": (1000, 5000, "train"),  # 10,000 query, 50,000 train, 50,000 database (= train)
}


def read_cifar10(options: ImportOptions) -> Source:
    from torchvision.datasets import CIFAR10

    root = Path(options.root) if options.root is not None else None
    if root is None:
        raise DatasetError("Give --root DIR: where cifar-10-batches-py is (or goes, with --download).")
    protocol = options.protocol or "cifar10"
    if protocol not in CIFAR_PROTOCOLS:
        raise DatasetError(f"--protocol is one of {', '.join(CIFAR_PROTOCOLS)} (got {protocol!r}).")
    if options.download:
        offline_refusal("CIFAR-10")
    try:
        parts = [CIFAR10(str(root), train=train, download=options.download) for train in (True, False)]
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
        raise DatasetError(f"CIFAR-10 under {root}: {error}") from None
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as error:  # a damaged pickle
        raise DatasetError(f"CIFAR-10 under {root} cannot be read: {error!r}") from None
    images = np.concatenate([part.data for part in parts])
    targets = np.concatenate([np.asarray(part.targets, np.int64) for part in parts])
    names = [f"data_batch#{i}" for i in range(len(parts[0].data))]
    names += [f"test_batch#{i}" for i in range(len(parts[1].data))]
    classes = tuple(parts[0].classes)
    splits = cifar_splits(targets, protocol, classes)
    rows = [
        Row(i + 1, names[i], (classes[targets[i]],), splits=splits[i], pixels=images[i])
        for i in range(len(targets))
        if splits[i]
    ]
    batches = sorted((root / CIFAR10.base_folder).glob("*_batch*")) + [
        root / CIFAR10.base_folder / "batches.meta"
    ]
    n_query, n_train, database = CIFAR_PROTOCOLS[protocol]
    rule = (
        f"DeepHash-pytorch's {protocol}: per class {n_query} query, {n_train} train (seed {SEED}), "
        f"database {database}"
    )
    return Source("cifar10", rows, classes, root, tuple(batches), chosen_cutoff(options, None), rule)


def cifar_splits(targets: np.ndarray, protocol: str, classes: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Each image's splits under a CIFAR-10 protocol, () for an image the protocol leaves out."""
    n_query, n_train, database = CIFAR_PROTOCOLS[protocol]
    in_train = ("train", "gallery") if database != "rest" else ("train",)
    in_rest = ("gallery",) if database != "train" else ()
    rng = np.random.default_rng(SEED)
    splits: list[tuple[str, ...]] = [()] * len(targets)
    for label in range(len(classes)):
        index = rng.permutation(np.flatnonzero(targets == label))
        if len(index) < n_query + n_train:
            raise DatasetError(
                f"CIFAR-10 class {classes[label]!r} has {len(index)} images; protocol {protocol} needs "
                f"{n_query + n_train} ({n_query} query, {n_train} train)."
            )
        for position, i in enumerate(index):
            splits[i] = (
                ("query",) if position < n_query else in_train if position < n_query + n_train else in_rest
            )
    return splits


# ----------------------------------------------------------------------------- list files

LIST_FILES = {"train.txt": ("train",), "test.txt": ("query",), "database.txt": ("gallery",)}
FIELD_CUTOFFS = {"nus": 5000, "coco": 5000, "imagenet": 1000}  # by the set's name; otherwise all


def read_lists(options: ImportOptions) -> Source:
    root = required_root(options, "train.txt, test.txt and database.txt")
    missing = [name for name in LIST_FILES if not (root / name).is_file()]
    if missing:
        raise DatasetError(f"{root} lacks {', '.join(missing)} (the field's lists: train, test, database).")
    classes_path = options.classes or (root / "classes.txt" if (root / "classes.txt").is_file() else None)
    classes = read_class_names(Path(classes_path)) if classes_path is not None else None
    rows = []
    for name, splits in LIST_FILES.items():
        found, classes = read_list_rows(root / name, classes, splits)
        rows += [
            Row(row.line, row.path, row.labels, row.problem and f"{name}: {row.problem}", row.splits)
            for row in found
        ]
    images = Path(options.images) if options.images is not None else root
    if not images.is_dir():
        raise DatasetError(f"The images folder {images} does not exist.")
    default = next((cut for key, cut in FIELD_CUTOFFS.items() if key in options.name.lower()), None)
    files = tuple(root / name for name in LIST_FILES) + ((Path(classes_path),) if classes_path else ())
    rule = "the list files' own splits: train.txt train, test.txt query, database.txt gallery"
    return Source("lists", rows, classes, images, files, chosen_cutoff(options, default), rule)


# ----------------------------------------------------------------------------- Pascal VOC 2007

VOC_SPLITS = {"trainval": ("train", "gallery"), "test": ("query",)}


def read_voc2007(options: ImportOptions) -> Source:
    from torchvision.datasets import VOCDetection

    root = required_root(options, "VOCdevkit/VOC2007")
    if options.download:
        offline_refusal("Pascal VOC 2007")
    rows, classes, difficult = [], set(), 0
    for image_set, splits in VOC_SPLITS.items():
        try:
            voc = VOCDetection(str(root), year="2007", image_set=image_set, download=options.download)
        except (RuntimeError, ValueError, OSError) as error:
            raise DatasetError(f"Pascal VOC 2007 {image_set} under {root}: {error}") from None
        for line, (image, annotation) in enumerate(zip(voc.images, voc.annotations, strict=True), start=1):
            name = Path(image).relative_to(root).as_posix()
            try:
                objects = voc.parse_voc_xml(ET.parse(annotation).getroot())["annotation"].get("object", [])
                boxes = []
                for obj in objects:
                    box = {key: float(obj["bndbox"][key]) for key in ("xmin", "ymin", "xmax", "ymax")}
                    boxes.append(
                        (
                            obj["name"],
                            box["ymin"] - 1,
                            box["xmin"] - 1,
                            box["ymax"] - box["ymin"] + 1,
                            box["xmax"] - box["xmin"] + 1,
                        )
                    )
                    difficult += obj.get("difficult", "0") == "1"
            except (OSError, ET.ParseError, KeyError, TypeError, ValueError) as error:
                rows.append(Row(line, name, None, f"{image_set}: annotation unreadable ({error!r})", splits))
                continue
            labels = tuple(dict.fromkeys(box[0] for box in boxes))
            classes |= set(labels)
            rows.append(
                Row(line, name, labels or None, None if labels else "no objects", splits, tuple(boxes))
            )
    files = tuple(sorted((root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main").glob("*.txt")))
    rule = "VOC 2007's own splits: trainval train and gallery, test query"
    return Source(
        "voc2007",
        rows,
        tuple(sorted(classes)),
        root,
        files,
        chosen_cutoff(options, None),
        rule,
        {"difficult_boxes": difficult},
    )


# ----------------------------------------------------------------------------- MS-COCO

COCO_SIZES = (5000, 10000)  # query, train: DeepHash-pytorch's MS-COCO


def read_coco(options: ImportOptions) -> Source:
    from torchvision.datasets import CocoDetection

    root = required_root(options, "annotations/instances_*.json and the image folders")
    annotation_files = sorted((root / "annotations").glob("instances_*.json"))
    if not annotation_files:
        raise DatasetError(f"{root}/annotations holds no instances_*.json (COCO's object annotations).")
    if options.download:
        offline_refusal("MS-COCO")
    records, names, crowd, empty = [], {}, 0, 0
    for path in annotation_files:
        folder = path.stem.removeprefix("instances_")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
                coco = CocoDetection(str(root / folder), str(path)).coco
            names.update({int(c["id"]): str(c["name"]) for c in coco.loadCats(coco.getCatIds())})
            for image_id in sorted(coco.imgs):
                anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
                if not anns:
                    empty += 1
                    continue
                crowd += sum(int(a.get("iscrowd", 0)) for a in anns)
                file_name = coco.imgs[image_id]["file_name"]
                boxes = tuple((int(a["category_id"]), *map(float, a["bbox"])) for a in anns)
                records.append((f"{folder}/{file_name}", boxes))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError, AssertionError) as error:
            raise DatasetError(f"The annotation file {path.name} is malformed: {error!r}") from None
    n_query = options.query_size or COCO_SIZES[0]
    n_train = options.train_size or COCO_SIZES[1]
    if len(records) <= n_query + n_train:
        raise DatasetError(
            f"{len(records)} annotated COCO images; the protocol takes {n_query} query and {n_train} train "
            "and needs more for the database (set --query-size and --train-size)."
        )
    order = np.random.default_rng(SEED).permutation(len(records))
    position = np.empty(len(records), np.int64)
    position[order] = np.arange(len(records))
    rows = []
    for i, (path, boxes) in enumerate(records):
        at = position[i]
        splits = (
            ("query",) if at < n_query else ("train", "gallery") if at < n_query + n_train else ("gallery",)
        )
        unknown = [b[0] for b in boxes if b[0] not in names]
        if unknown:
            rows.append(
                Row(i + 1, path, None, f"category id {unknown[0]} is not in the file's categories", splits)
            )
            continue
        named = tuple((names[c], y, x, h, w) for c, x, y, w, h in boxes)
        labels = tuple(dict.fromkeys(b[0] for b in named))
        rows.append(Row(i + 1, path, labels, None, splits, named))
    classes = tuple(names[c] for c in sorted(names))
    rule = (
        f"DeepHash-pytorch's MS-COCO: {n_query} query, {n_train} train (seed {SEED}), database all but query"
    )
    return Source(
        "coco",
        rows,
        classes,
        root,
        tuple(annotation_files),
        chosen_cutoff(options, 5000),
        rule,
        {"crowd_boxes": crowd, "images_without_annotations": empty},
    )
