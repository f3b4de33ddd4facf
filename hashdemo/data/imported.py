"""Your own images: a labelled multi-label folder imported into the cache, split and ready to
train on, next to the Fashion-MNIST outfits.

Two input formats, both with paths relative to a root folder:
- CSV with a header and at least the columns `path,labels`; `labels` holds class names joined by `|`;
- the DeepHash-pytorch list format: lines `path b_1 ... b_C` (multi-hot) and a classes file, one name a line.

Every image Pillow reads, any size and mode, becomes an S x S RGB array as an upload does (first frame,
EXIF orientation, padded to a square with black, resized). A bad row (missing file, a path outside the
root, unreadable image, no labels, a label vector of the wrong length or not 0/1) is skipped and
reported when bad rows are under 5% of the rows; otherwise the import refuses, saying which rows and why.

Splits, by a seeded rule recorded in the dataset's JSON (`SPLIT_RULE`): the images in a random order
(seed 0); the first 10% are the query split, the next 10% val, the next 30% the gallery, the rest train;
a query image whose label set the gallery does not hold goes to train, and the query split is filled
back up with train images whose label set the gallery holds, in the same random order.

Everything lands in `$HASHDEMO_CACHE_DIR/datasets/NAME/`: one `images-VERSION-SPLIT.npy` per split
and `labels-VERSION.npz`, then `dataset.json`, which names them, written last (each file atomically);
the import streams the pixels to disk image by image and the readers memory-map them, so a folder of
tens of thousands of photos never sits in memory. Models trained on the set go beside them, in
`checkpoints/`. The same files imported again are a no-op; a changed CSV, list or image re-imports,
and the previous import's files go only once the new dataset.json is in place.
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

from hashdemo.data.fashion_mnist import CLASS_NAMES
from hashdemo.data.images import ImageError, load_image
from hashdemo.data.outfits import load_outfits
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
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class DatasetError(ValueError):
    """An import or a load that cannot go on; the message says what to do, fit to print to a user."""


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line in the source file (the CSV header is line 1)
    path: str
    labels: tuple[str, ...] | None  # class names, None when the row is bad
    problem: str | None = None


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


# ----------------------------------------------------------------------------- reading the sources


def read_csv_rows(csv_path: Path) -> list[Row]:
    """Rows of a `path,labels` CSV (labels joined by '|'), each with its problem if it has one."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"The CSV {csv_path} cannot be read as UTF-8 text: {error}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "path" not in columns or "labels" not in columns:
        raise DatasetError(
            f"The CSV {csv_path.name} needs a header with the columns path and labels; "
            f"it has {columns or 'none'}."
        )
    rows = []
    for line, record in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "") for k, v in record.items() if k is not None}
        path = record.get("path", "").strip()
        labels = tuple(dict.fromkeys(x.strip() for x in record.get("labels", "").split("|") if x.strip()))
        problem = "no path" if not path else "no labels" if not labels else None
        rows.append(Row(line, path, None if problem else labels, problem))
    return rows


def read_list_rows(list_path: Path, classes_path: Path) -> tuple[list[Row], tuple[str, ...]]:
    """Rows of a DeepHash-pytorch list (`path b_1 ... b_C`) and the class names of its classes file."""
    try:
        classes = tuple(line.strip() for line in classes_path.read_text().splitlines() if line.strip())
        lines = list_path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"The list or classes file cannot be read as text: {error}") from None
    if not classes or len(set(classes)) != len(classes):
        raise DatasetError(f"The classes file {classes_path.name} must name each class once, one a line.")
    rows = []
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        path, *bits = text.split()
        if len(bits) != len(classes) or any(b not in ("0", "1") for b in bits):
            rows.append(
                Row(
                    line,
                    path,
                    None,
                    f"not {len(classes)} zeros and ones (the classes file names {len(classes)})",
                )
            )
            continue
        labels = tuple(name for name, bit in zip(classes, bits, strict=True) if bit == "1")
        rows.append(Row(line, path, labels or None, None if labels else "no labels"))
    return rows, classes


def resolve(root: Path, row: Row) -> tuple[Path | None, str | None]:
    """The row's file under `root`, or the reason it cannot be used."""
    path = (root / row.path).resolve()
    if not path.is_relative_to(root.resolve()):
        return None, "outside the root folder"
    if not path.is_file():
        return None, "file not found"
    return path, None


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
    """Import a folder into the cache (see the module docstring); returns the dataset's summary.

    A DatasetError (with a sentence) for every user mistake; nothing half-written is left behind."""
    directory = dataset_dir(name, cache_dir)
    if (csv_path is None) == (list_path is None) or (list_path is not None and classes_path is None):
        raise DatasetError("Give either --csv FILE, or --list FILE with --classes FILE.")
    source = Path(csv_path or list_path)
    if not source.is_file():
        raise DatasetError(f"The file {source} does not exist.")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DatasetError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size}).")
    root = Path(root) if root is not None else source.parent
    if not root.is_dir():
        raise DatasetError(f"The root folder {root} does not exist.")
    if csv_path is not None:
        rows = read_csv_rows(Path(csv_path))
        classes = None
    else:
        rows, classes = read_list_rows(Path(list_path), Path(classes_path))
    digest = source_digest(source, classes_path, root, rows, size)
    existing = read_meta(directory)
    if existing is not None and existing.get("source_digest") == digest:
        log.info("dataset %s is already imported from these files: nothing to do", name)
        return existing
    version = digest[:16]
    directory.mkdir(parents=True, exist_ok=True)
    remove_orphaned_writes(directory)  # a killed import's temporary files
    staged = directory / f".rows-{version}.raw"  # the good rows' pixels in row order, until split
    try:
        labels, kept, classes, bad = stream_rows(rows, root, size, classes, staged, progress)
        meta, parts = make_splits(name, labels, classes, bad, len(rows))
        meta.update({"source": str(source), "root": str(root), "size": size, "source_digest": digest})
        meta["files"] = write_splits(directory, version, staged, parts, size, labels, kept)
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


def source_digest(source: Path, classes_path: Path | None, root: Path, rows: list[Row], size: int) -> str:
    """What decides the import: the source files' bytes, each image's size and mtime, the size, the rule."""
    digest = hashlib.sha256(f"{FORMAT}|{size}|{SPLIT_RULE}".encode())
    for path in (source, classes_path):
        if path is not None:
            digest.update(Path(path).read_bytes())
    for row in rows:
        path, _ = resolve(root, row)
        stat = path.stat() if path is not None else None
        digest.update(f"{row.path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def stream_rows(rows: list[Row], root: Path, size: int, classes, staged: Path, progress: bool):
    """Decode the rows one by one, appending the good ones' pixels to `staged` (never all in memory).

    Returns the good rows' multi-hot labels, their lines, the class names and the bad rows."""
    from tqdm import tqdm

    started, label_sets, kept, bad = time.perf_counter(), [], [], []
    with open(staged, "wb") as out:
        for row in tqdm(rows, desc="importing images", unit="img", disable=not progress):
            path, problem = (None, row.problem) if row.problem else resolve(root, row)
            if problem is None:
                try:
                    out.write(load_image(path, size).tobytes())
                except ImageError as error:
                    problem = f"unreadable image ({error})"
            if problem is not None:
                bad.append((row.line, row.path, problem))
                continue
            label_sets.append(row.labels)
            kept.append(row.line)
    check_bad_rows(bad, len(rows))
    if len(kept) < MIN_IMAGES:
        raise DatasetError(
            f"{len(kept)} usable images; an import needs at least {MIN_IMAGES} "
            "(they are split into train, val, query and gallery)."
        )
    classes = tuple(classes) if classes else tuple(sorted({c for s in label_sets for c in s}))
    index = {c: i for i, c in enumerate(classes)}
    labels = np.zeros((len(label_sets), len(classes)), np.uint8)
    for i, names in enumerate(label_sets):
        labels[i, [index[c] for c in names]] = 1
    seconds = time.perf_counter() - started
    log.info("read %d images in %.1f s (%.0f images/s)", len(kept), seconds, len(kept) / max(seconds, 1e-9))
    return labels, np.array(kept), classes, bad


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


def make_splits(name, labels, classes, bad, n_rows) -> tuple[dict, dict[str, np.ndarray]]:
    """The splits by SPLIT_RULE: the JSON summary and each split's row positions."""
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
    meta = {
        "format": FORMAT,
        "name": name,
        "classes": list(classes),
        "split_rule": SPLIT_RULE,
        "rows": n_rows,
        "bad_rows": [{"line": line, "path": path, "problem": problem} for line, path, problem in bad],
        "splits": {split: len(ids) for split, ids in parts.items()},
    }
    return meta, parts


def write_splits(directory, version, staged: Path, parts, size, labels, kept) -> dict[str, str]:
    """Each split's images as its own .npy file (copied image by image from `staged`, so memory stays
    one image deep) and every split's labels and source lines in one .npz; returns the file names."""
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
        arrays[f"{split}_labels"], arrays[f"{split}_rows"] = labels[ids], kept[ids]  # rows: source lines
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
            splits[split] = Split(
                split,
                images,
                labels,
                np.full((n, 0), -1, np.int32),
                np.full((n, 0), -1, np.int8),
                np.full((n, 0, 3), -1, np.int16),
            )
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
