"""Imported data sets: a `Source` (your own folder, or one of the field's sets, see
`hashdemo.data.kinds`) decoded into the cache, split and ready to train on, next to the outfits.

Every image Pillow reads (or a source's arrays), any size and mode, becomes an S x S RGB array as an
upload does (first frame, EXIF orientation, padded to a centred square with black, resized); object
boxes move with it (`letterboxed`). A bad row (missing file, a path outside the root, unreadable image
or annotation, no labels, a label vector of the wrong length or not 0/1) is skipped and reported when
bad rows are under 5% of the rows; otherwise the import refuses, saying which rows and why.

Splits: a source that gives its own (the field's sets) keeps them, val carved from train by
`VAL_RULE`; a plain folder is split by `SPLIT_RULE`: the images in a random order (seed 0); the first
10% are the query split, the next 10% val, the next 30% the gallery, the rest train; a query image
whose label set the gallery does not hold goes to train, and the query split is filled back up with
train images whose label set the gallery holds, in the same random order. Both rules are recorded in
the dataset's JSON with its kind and the field's mAP cut-off.

Everything lands in `$HASHDEMO_CACHE_DIR/datasets/NAME/`: one `images-VERSION-SPLIT.npy` per split
and `labels-VERSION.npz` (labels, boxes, source lines), then `dataset.json`, which names them, written
last (each file atomically); the import streams the pixels to disk image by image and the readers
memory-map them, so tens of thousands of photos never sit in memory. Models trained on the set go
beside them, in `checkpoints/`. The same files imported again are a no-op; a changed source
re-imports, and the previous import's files go only once the new dataset.json is in place.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hashdemo.data.errors import DatasetError
from hashdemo.data.fashion_mnist import CLASS_NAMES
from hashdemo.data.field_sets import ImportOptions, read_folder
from hashdemo.data.images import ImageError, open_image, to_model_image
from hashdemo.data.outfits import load_outfits
from hashdemo.data.sources import Row, Source, letterboxed, resolve
from hashdemo.data.split import SPLIT_NAMES, Split
from hashdemo.storage.files import atomic_file, remove_orphaned_writes, savez_atomic, write_atomic
from hashdemo.storage.locations import default_cache_dir

log = logging.getLogger(__name__)
MIN_IMAGES = 200  # below this the splits are too small to train, select on val and evaluate
MAX_BAD_SHARE = 0.05
SHOWN_BAD_ROWS = 5
FORMAT = 2  # 2: one memory-mapped .npy file of images per split (1: a single in-memory .npz)
MIN_SIZE, MAX_SIZE = 16, 448
SPLIT_RULE = (
    "seeded shuffle (seed 0); query = first 10%, val = next 10%, gallery = next 30%, train = the rest; "
    "query images whose label set is not in the gallery are swapped for train images whose set is"
)
SHARES = {"query": 0.1, "val": 0.1, "gallery": 0.3}
VAL_RULE = "val = a seeded 10% of the given train split (seed 0), removed from train (not from the database)"
MAX_BOXES = 20  # boxes kept per image, the largest first
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class ImportedDataset:
    name: str
    classes: tuple[str, ...]
    splits: dict[str, Split]
    meta: dict


def dataset_dir(name: str, cache_dir: Path | None = None) -> Path:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise DatasetError(
            "A dataset name is 1-64 letters, digits, '_' or '-', starting with a letter or digit "
            f"(got {name!r})."
        )
    return Path(cache_dir or default_cache_dir()) / "datasets" / name


# ----------------------------------------------------------------------------- the import


def import_dataset(
    name: str,
    csv_path: Path | None = None,
    root: Path | None = None,
    size: int = 64,
    list_path: Path | None = None,
    classes_path: Path | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> dict:
    """Import your own folder (a CSV, or a list with its classes file); see `import_source`."""
    dataset_dir(name, cache_dir)  # the name is checked before any file is read
    options = ImportOptions(root=root, csv=csv_path, list=list_path, classes=classes_path, name=name)
    return import_source(name, read_folder(options), size, cache_dir, progress)


def import_source(
    name: str, source: Source, size: int = 64, cache_dir: Path | None = None, progress: bool = False
) -> dict:
    """A source's rows into the cache (see the module docstring); returns the dataset's summary.

    A DatasetError (with a sentence) for every user mistake; nothing half-written is left behind."""
    directory = dataset_dir(name, cache_dir)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DatasetError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size}).")
    digest = source_digest(source, size)
    existing = read_meta(directory)
    if existing is not None and existing.get("source_digest") == digest:
        log.info("dataset %s is already imported from these files: nothing to do", name)
        return existing
    version = digest[:16]
    directory.mkdir(parents=True, exist_ok=True)
    remove_orphaned_writes(directory)  # a killed import's temporary files
    staged = directory / f".rows-{version}.raw"  # the good rows' pixels in row order, until split
    try:
        decoded = stream_rows(source, size, staged, progress)
        meta, parts = make_splits(name, source, decoded)
        meta.update(
            {
                "source": [str(f) for f in source.files],
                "root": str(source.root),
                "size": size,
                "source_digest": digest,
            }
        )
        meta["files"] = write_splits(directory, version, staged, parts, size, decoded)
    except BaseException:  # the previous import stays whole; a first one leaves nothing
        remove_stale_files(directory, keep=set((existing or {}).get("files", {}).values()))
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty
        raise
    finally:
        staged.unlink(missing_ok=True)
    write_atomic(directory / "dataset.json", json.dumps(meta, indent=2) + "\n")  # last: the import is done
    remove_stale_files(directory, keep=set(meta["files"].values()))
    return meta


def source_digest(source: Source, size: int) -> str:
    """What decides the import: the source files' bytes, each image's size and mtime, the size, the rules."""
    digest = hashlib.sha256(f"{FORMAT}|{size}|{SPLIT_RULE}|{VAL_RULE}|{source.kind}|{source.cutoff}".encode())
    digest.update(f"{source.split_rule}|{MAX_BOXES}".encode())
    for path in source.files:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    for row in source.rows:
        path, _ = (None, None) if row.pixels is not None else resolve(source.root, row)
        stat = path.stat() if path is not None else None
        digest.update(
            f"{row.path}|{row.splits}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()


@dataclass(frozen=True)
class Decoded:
    """The good rows of a source, in order: labels, boxes, where each came from."""

    labels: np.ndarray  # (N, C) uint8 multi-hot
    box_classes: np.ndarray  # (N, M) int8 class per box, -1 padding (M = 0 without boxes)
    boxes: np.ndarray  # (N, M, 4) int16 (top, left, height, width) on the model image
    lines: np.ndarray  # (N,) the rows' positions in the source
    splits: list[tuple[str, ...]]  # the splits the data set gives each row, () for the seeded rule
    classes: tuple[str, ...]
    bad: list[tuple[int, str, str]]
    n_rows: int
    counts: dict


def decode_row(source: Source, row: Row, size: int) -> tuple[np.ndarray, list]:
    """One row's S x S pixels and its boxes on them; an ImageError or a reason string when unusable."""
    if row.pixels is not None:
        image = Image.fromarray(np.asarray(row.pixels, np.uint8))
    else:
        path, problem = resolve(source.root, row)
        if problem is not None:
            raise LookupError(problem)
        image = open_image(path)
    width, height = image.size  # the boxes' frame, before any draft decode
    if image.format == "JPEG":  # decode a large photo at a fraction of its size, never below `size`
        image.draft("RGB", (size, size))
    return to_model_image(image, size), letterboxed(row.boxes, width, height, size)


def stream_rows(source: Source, size: int, staged: Path, progress: bool) -> Decoded:
    """Decode the rows one by one, appending the good ones' pixels to `staged` (never all in memory)."""
    from tqdm import tqdm

    started, label_sets, boxes, kept, splits, bad = time.perf_counter(), [], [], [], [], []
    with open(staged, "wb") as out:
        for row in tqdm(source.rows, desc="importing images", unit="img", disable=not progress):
            problem = row.problem
            if problem is None:
                try:
                    pixels, row_boxes = decode_row(source, row, size)
                    out.write(pixels.tobytes())
                except LookupError as error:
                    problem = str(error.args[0])
                except ImageError as error:
                    problem = f"unreadable image ({error})"
            if problem is not None:
                bad.append((row.line, row.path, problem))
                continue
            label_sets.append(row.labels)
            boxes.append(row_boxes)
            kept.append(row.line)
            splits.append(row.splits)
    check_bad_rows(bad, len(source.rows))
    if len(kept) < MIN_IMAGES:
        raise DatasetError(
            f"{len(kept)} usable images; an import needs at least {MIN_IMAGES} "
            "(they are split into train, val, query and gallery)."
        )
    classes = tuple(source.classes) if source.classes else tuple(sorted({c for s in label_sets for c in s}))
    index = {c: i for i, c in enumerate(classes)}
    labels = np.zeros((len(label_sets), len(classes)), np.uint8)
    for i, names in enumerate(label_sets):
        labels[i, [index[c] for c in names]] = 1
    box_classes, box_array, counts = box_arrays(boxes, index)
    seconds = time.perf_counter() - started
    log.info("read %d images in %.1f s (%.0f images/s)", len(kept), seconds, len(kept) / max(seconds, 1e-9))
    return Decoded(
        labels,
        box_classes,
        box_array,
        np.array(kept),
        splits,
        classes,
        bad,
        len(source.rows),
        {**source.counts, **counts},
    )


def box_arrays(boxes: list[list], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each image's boxes padded to the largest count (at most MAX_BOXES, the largest kept)."""
    width = min(max((len(b) for b in boxes), default=0), MAX_BOXES)
    classes = np.full((len(boxes), width), -1, np.int8)
    array = np.full((len(boxes), width, 4), -1, np.int16)
    dropped = 0
    for i, row in enumerate(boxes):
        row = sorted(row, key=lambda box: -box[1][2] * box[1][3])  # largest first
        dropped += max(len(row) - width, 0)
        for j, (name, box) in enumerate(row[:width]):
            classes[i, j], array[i, j] = index[name], box
    return classes, array, ({"boxes": int((classes >= 0).sum()), "boxes_dropped": dropped} if width else {})


def check_bad_rows(bad: list[tuple[int, str, str]], n_rows: int) -> None:
    """Under 5% bad rows: one summary line; otherwise a DatasetError naming the first rows and why."""
    if not bad:
        return
    shown = "; ".join(f"line {line} {path!r}: {problem}" for line, path, problem in bad[:SHOWN_BAD_ROWS])
    more = f" (and {len(bad) - SHOWN_BAD_ROWS} more)" if len(bad) > SHOWN_BAD_ROWS else ""
    summary = f"{len(bad)} of {n_rows} rows are bad: {shown}{more}"
    if len(bad) >= MAX_BAD_SHARE * n_rows:
        raise DatasetError(
            f"{summary}. That is {len(bad) / n_rows:.0%} of the rows; fix them (under 5% are skipped)."
        )
    log.warning("%s; skipped.", summary)


def make_splits(name: str, source: Source, decoded: Decoded) -> tuple[dict, dict[str, np.ndarray]]:
    """The splits (the data set's own, with val carved from train, or SPLIT_RULE): the JSON summary and
    each split's row positions (a row may sit in two splits: a database that holds the train images)."""
    given = any(decoded.splits)
    parts = given_splits(decoded.splits) if given else seeded_splits(decoded.labels)
    empty = [split for split in SPLIT_NAMES if len(parts[split]) == 0]
    if empty:
        raise DatasetError(f"The import leaves the {', '.join(empty)} split empty; it needs images in each.")
    meta = {
        "format": FORMAT,
        "name": name,
        "kind": source.kind,
        "classes": list(decoded.classes),
        "split_rule": f"{source.split_rule}; {VAL_RULE}" if given else SPLIT_RULE,
        "cutoff": source.cutoff,
        "rows": decoded.n_rows,
        "bad_rows": [{"line": line, "path": path, "problem": problem} for line, path, problem in decoded.bad],
        "counts": decoded.counts,
        "splits": {split: len(ids) for split, ids in parts.items()},
    }
    return meta, parts


def given_splits(splits: list[tuple[str, ...]]) -> dict[str, np.ndarray]:
    """The data set's own train, query and gallery; val a seeded share of train (VAL_RULE)."""
    parts = {
        split: np.array([i for i, s in enumerate(splits) if split in s], np.int64) for split in SPLIT_NAMES
    }
    train = np.random.default_rng(0).permutation(parts["train"])
    n_val = max(1, round(SHARES["val"] * len(train))) if len(train) > 1 else 0
    parts["val"], parts["train"] = np.sort(train[:n_val]), np.sort(train[n_val:])
    return parts


def seeded_splits(labels: np.ndarray) -> dict[str, np.ndarray]:
    """SPLIT_RULE's row positions."""
    n = len(labels)
    order = np.random.default_rng(0).permutation(n)
    cuts = np.cumsum([round(SHARES["query"] * n), round(SHARES["val"] * n), round(SHARES["gallery"] * n)])
    parts = dict(zip(("query", "val", "gallery", "train"), np.split(order, cuts), strict=True))
    gallery_sets = {labels[i].tobytes() for i in parts["gallery"]}
    held = [i for i in parts["query"] if labels[i].tobytes() in gallery_sets]
    moved = [i for i in parts["query"] if labels[i].tobytes() not in gallery_sets]
    fill = [i for i in parts["train"] if labels[i].tobytes() in gallery_sets][: len(moved)]
    parts["query"] = np.array(held + fill, dtype=np.int64)
    filled = set(fill)
    parts["train"] = np.array([i for i in parts["train"] if i not in filled] + moved, dtype=np.int64)
    return parts


def write_splits(directory, version, staged: Path, parts, size, decoded: Decoded) -> dict[str, str]:
    """Each split's images as its own .npy file (copied image by image from `staged`, so memory stays
    one image deep) and every split's labels, boxes and source lines in one .npz; returns the file names."""
    files = {split: f"images-{version}-{split}.npy" for split in parts}
    image_bytes = size * size * 3
    with open(staged, "rb") as source:
        for split, ids in parts.items():
            with atomic_file(directory / files[split]) as out:
                header = {"descr": "|u1", "fortran_order": False, "shape": (len(ids), size, size, 3)}
                np.lib.format.write_array_header_1_0(out, header)
                for i in ids:
                    out.write(os.pread(source.fileno(), image_bytes, int(i) * image_bytes))
    arrays = {}
    for split, ids in parts.items():
        arrays[f"{split}_labels"], arrays[f"{split}_rows"] = decoded.labels[ids], decoded.lines[ids]
        arrays[f"{split}_classes"], arrays[f"{split}_boxes"] = decoded.box_classes[ids], decoded.boxes[ids]
    files["labels"] = f"labels-{version}.npz"
    savez_atomic(directory / files["labels"], arrays)
    return files


def remove_stale_files(directory: Path, keep: set[str]) -> None:
    """The files of earlier imports (and of killed ones) that dataset.json no longer names."""
    for pattern in ("images-*.npy", "labels-*.npz", ".rows-*.raw", "dataset.npz"):
        for path in directory.glob(pattern):
            if path.name not in keep:
                path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- reading it back


def read_meta(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "dataset.json").read_text())
    except (OSError, ValueError):
        return None


def load_dataset(name: str, cache_dir: Path | None = None) -> ImportedDataset:
    """An imported dataset's class names and splits (without item boxes; images memory-mapped)."""
    directory = dataset_dir(name, cache_dir)
    meta = read_meta(directory)
    if meta is None:
        raise DatasetError(
            f"No dataset {name!r} is imported; run: python -m hashdemo data import {name} --csv FILE"
        )
    if meta.get("format") != FORMAT:
        raise DatasetError(
            f"Dataset {name!r} was imported by an older hashdemo; import it again with the same command."
        )
    size, files = int(meta["size"]), meta["files"]
    try:
        with np.load(directory / files["labels"]) as stored:
            arrays = dict(stored)
        splits = {}
        for split in SPLIT_NAMES:
            images, labels = np.load(directory / files[split], mmap_mode="r"), arrays[f"{split}_labels"]
            if images.shape != (meta["splits"][split], size, size, 3) or len(labels) != len(images):
                raise ValueError(f"{files[split]} holds {images.shape}")
            n = len(labels)
            classes = arrays.get(f"{split}_classes", np.full((n, 0), -1, np.int8))
            boxes = arrays.get(f"{split}_boxes", np.full((n, 0, 4), -1, np.int16))
            items = np.where(classes >= 0, np.arange(classes.shape[1], dtype=np.int32), -1).astype(np.int32)
            splits[split] = Split(split, images, labels, items, classes, boxes)
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f"The cache of dataset {name!r} is damaged ({error}); import it again.") from None
    return ImportedDataset(name, tuple(meta["classes"]), splits, meta)


def describe_dataset(dataset: ImportedDataset) -> dict:
    """Split sizes, classes, distinct label sets and images per class, as plain JSON-able data."""
    return {
        "name": dataset.name,
        "classes": list(dataset.classes),
        "split_rule": dataset.meta["split_rule"],
        "sizes": {name: len(split) for name, split in dataset.splits.items()},
        "distinct_label_sets": {
            name: len({row.tobytes() for row in split.labels}) for name, split in dataset.splits.items()
        },
        "images_per_class": {
            name: dict(zip(dataset.classes, split.labels.sum(axis=0).tolist(), strict=True))
            for name, split in dataset.splits.items()
        },
        "bad_rows_skipped": len(dataset.meta["bad_rows"]),
    }


def export_outfits(directory: Path, count: int = 3000, cache_dir: Path | None = None) -> Path:
    """The worked example's input: `count` outfit images (from the outfits' train split) as PNG files
    in `directory/images/`, and `directory/labels.csv` naming each one's classes. Returns the CSV."""
    from PIL import Image

    if not 1 <= count <= 30_000:
        raise DatasetError(f"--count must be between 1 and 30000 (got {count}).")
    split = load_outfits(cache_dir=cache_dir)["train"]
    images_dir = Path(directory) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    lines = io.StringIO()
    writer = csv.writer(lines)
    writer.writerow(["path", "labels"])
    for i in range(count):
        name = f"images/outfit-{i:05d}.png"
        Image.fromarray(split.images[i]).save(Path(directory) / name)
        writer.writerow([name, "|".join(CLASS_NAMES[c] for c in np.flatnonzero(split.labels[i]))])
    return write_atomic(Path(directory) / "labels.csv", lines.getvalue())
