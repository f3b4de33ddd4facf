"""Small copies of the field's data sets in their real on-disk formats, written by the tests (as
torchvision's own test suite does): CIFAR-10's pickled batches, VOC 2007's XML annotations and
ImageSets, COCO's instances JSON, HashNet list files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
VOC_CLASSES = ("cat", "dog", "person")
COCO_CATEGORIES = {1: "person", 3: "car", 18: "dog"}  # COCO's ids are not contiguous


def picture(rng: np.random.Generator, width: int, height: int, boxes, colours) -> Image.Image:
    """A noisy background with a filled rectangle per box (top, left, height, width)."""
    pixels = rng.integers(0, 50, (height, width, 3), dtype=np.uint8)
    for (top, left, box_h, box_w), colour in zip(boxes, colours, strict=True):
        pixels[int(top) : int(top + box_h), int(left) : int(left + box_w)] = colour
    return Image.fromarray(pixels)


def write_cifar10(root: Path, per_class: int, seed: int = 0) -> Path:
    """cifar-10-batches-py with five train batches and a test batch: `per_class` images of each class
    in all (five sixths in train), and batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    colours = rng.integers(60, 256, (10, 3))
    images = rng.integers(0, 40, (len(labels), 32, 32, 3), dtype=np.uint8)
    images[:, 8:24, 8:24] = colours[labels][:, None, None]  # the class shows as a coloured square
    n_train = len(labels) * 5 // 6
    parts = np.array_split(np.arange(n_train), 5) + [np.arange(n_train, len(labels))]
    names = [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]
    for name, ids in zip(names, parts, strict=True):
        entry = {
            "batch_label": name,
            "labels": labels[ids].tolist(),
            "data": images[ids].transpose(0, 3, 1, 2).reshape(len(ids), -1),
            "filenames": [f"{i}.png" for i in ids],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": list(CIFAR_CLASSES), "num_cases_per_batch": 10000, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


def write_lists(root: Path, n: dict[str, int], seed: int = 0) -> Path:
    """images/ and train.txt, test.txt, database.txt (`path b_1 b_2 b_3`), classes.txt."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    colours = ((250, 40, 40), (40, 250, 40), (40, 40, 250))
    for name, count in n.items():
        lines = []
        for i in range(count):
            bits = rng.integers(0, 2, 3)
            bits[rng.integers(0, 3)] = 1
            boxes = [(4 + 10 * c, 4, 8, 30) for c in np.flatnonzero(bits)]
            path = f"images/{name.removesuffix('.txt')}-{i:04d}.jpg"
            picture(rng, 40, 36, boxes, [colours[c] for c in np.flatnonzero(bits)]).save(root / path)
            lines.append(f"{path} {' '.join(map(str, bits))}")
        (root / name).write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    return root


def voc_xml(filename: str, width: int, height: int, objects) -> str:
    body = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, (x0, y0, x1, y1), difficult in objects
    )
    return (
        f"<annotation><folder>VOC2007</folder><filename>{filename}</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>{body}</annotation>"
    )


def write_voc2007(root: Path, n_trainval: int, n_test: int, seed: int = 0) -> Path:
    """VOCdevkit/VOC2007: JPEGImages, Annotations (1-based inclusive pixel boxes), ImageSets/Main."""
    rng = np.random.default_rng(seed)
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    colours = {"cat": (250, 60, 60), "dog": (60, 250, 60), "person": (60, 60, 250)}
    for image_set, count, offset in (("trainval", n_trainval, 0), ("test", n_test, 100000)):
        ids = []
        for i in range(count):
            stem = f"{offset + i:06d}"
            width, height = 60, 40  # wider than high: the letterbox pads top and bottom
            names = list(rng.choice(VOC_CLASSES, int(rng.integers(1, 3)), replace=False))
            objects, boxes = [], []
            for k, name in enumerate(names):
                x0, y0 = 1 + 30 * k, int(rng.integers(1, 10))
                x1, y1 = x0 + 24, y0 + int(rng.integers(14, 28))
                objects.append((name, (x0, y0, x1, y1), i % 9 == 0))
                boxes.append((y0 - 1, x0 - 1, y1 - y0 + 1, x1 - x0 + 1))
            picture(rng, width, height, boxes, [colours[x] for x in names]).save(
                base / f"JPEGImages/{stem}.jpg"
            )
            (base / f"Annotations/{stem}.xml").write_text(voc_xml(f"{stem}.jpg", width, height, objects))
            ids.append(stem)
        (base / f"ImageSets/Main/{image_set}.txt").write_text("\n".join(ids) + "\n")
    return root


def write_coco(root: Path, n_images: int, n_empty: int = 3, seed: int = 0) -> Path:
    """annotations/instances_train2017.json and train2017/: non-contiguous category ids, one crowd box,
    `n_empty` images without annotations."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "train2017").mkdir(parents=True, exist_ok=True)
    colours = {1: (250, 60, 60), 3: (60, 250, 60), 18: (60, 60, 250)}
    images, annotations = [], []
    for i in range(n_images + n_empty):
        image_id = 1000 + i
        file_name = f"{image_id:012d}.jpg"
        images.append({"id": image_id, "file_name": file_name, "width": 48, "height": 64})
        boxes, shown = [], []
        if i < n_images:
            for k, category in enumerate(
                rng.choice(list(COCO_CATEGORIES), int(rng.integers(1, 3)), replace=False)
            ):
                x, y, w, h = 2.0 + 22 * k, float(rng.integers(2, 20)), 20.0, float(rng.integers(16, 40))
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": int(category),
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "iscrowd": int(len(annotations) == 0),
                        "segmentation": [],
                    }
                )
                boxes.append((y, x, h, w))
                shown.append(colours[int(category)])
        picture(rng, 48, 64, boxes, shown).save(root / "train2017" / file_name)
    categories = [{"id": c, "name": name, "supercategory": "thing"} for c, name in COCO_CATEGORIES.items()]
    document = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(document))
    return root
