"""What an import reads: a `Source` of rows (an image, its labels, its object boxes, the splits its
data set puts it in), and the readers of a plain labelled folder (a CSV or one DeepHash-pytorch list).

The field's data sets have their own readers (`hashdemo.data.field_sets`); every reader returns a
`Source`, and `hashdemo.data.imported` turns any `Source` into the cached splits the same way.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashdemo.data.errors import DatasetError

Box = tuple[str, float, float, float, float]  # class name, top, left, height, width in source pixels


@dataclass(frozen=True)
class Row:
    line: int  # 1-based position in the source (a line of the file, an annotation, a record)
    path: str  # the image's path under the root, or what names it in the source
    labels: tuple[str, ...] | None  # class names, None when the row is bad
    problem: str | None = None
    splits: tuple[str, ...] = ()  # the splits the data set puts it in; () when split by the seeded rule
    boxes: tuple[Box, ...] = ()
    pixels: np.ndarray | None = None  # (H, W, 3) uint8 when the source holds arrays, not files


@dataclass(frozen=True)
class Source:
    kind: str  # a key of hashdemo.data.kinds.KINDS
    rows: list[Row]
    classes: tuple[str, ...] | None  # None: the sorted names the rows use
    root: Path  # row paths are relative to it
    files: tuple[Path, ...]  # the source files whose bytes decide the import (with each image's stat)
    cutoff: int | None = None  # the field's mAP@cutoff for this set; None: over the whole gallery
    split_rule: str | None = None  # how the data set's own splits were taken; None: the seeded rule
    counts: dict = field(default_factory=dict)  # what was skipped or kept but said, counted


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


def read_class_names(classes_path: Path) -> tuple[str, ...]:
    """A classes file: one name a line, each once."""
    try:
        classes = tuple(line.strip() for line in classes_path.read_text().splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"The classes file {classes_path} cannot be read as text: {error}") from None
    if not classes or len(set(classes)) != len(classes):
        raise DatasetError(f"The classes file {classes_path.name} must name each class once, one a line.")
    return classes


def read_list_rows(
    list_path: Path, classes: tuple[str, ...] | None, splits: tuple[str, ...] = ()
) -> tuple[list[Row], tuple[str, ...]]:
    """Rows of a DeepHash-pytorch list (`path b_1 ... b_C`); without class names, the first line's
    length gives C and the classes are named class_0 ... class_{C-1}."""
    try:
        lines = list_path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"The list {list_path} cannot be read as text: {error}") from None
    if classes is None:
        first = next((text.split() for text in lines if text.strip()), None)
        if first is None or len(first) < 2:
            raise DatasetError(f"The list {list_path.name} has no line `path b_1 ... b_C`.")
        classes = tuple(f"class_{c}" for c in range(len(first) - 1))
    rows = []
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        path, *bits = text.split()
        if len(bits) != len(classes) or any(b not in ("0", "1") for b in bits):
            problem = f"not {len(classes)} zeros and ones (the classes number {len(classes)})"
            rows.append(Row(line, path, None, problem, splits))
            continue
        labels = tuple(name for name, bit in zip(classes, bits, strict=True) if bit == "1")
        rows.append(Row(line, path, labels or None, None if labels else "no labels", splits))
    return rows, classes


def resolve(root: Path, row: Row) -> tuple[Path | None, str | None]:
    """The row's file under `root`, or the reason it cannot be used."""
    path = (root / row.path).resolve()
    if not path.is_relative_to(root.resolve()):
        return None, "outside the root folder"
    if not path.is_file():
        return None, "file not found"
    return path, None


def letterboxed(boxes: tuple[Box, ...], width: int, height: int, size: int) -> list[tuple[str, tuple]]:
    """Boxes in source pixels -> (class, (top, left, height, width)) on the S x S model image, which pads
    the source to a centred square with black and resizes it (`hashdemo.data.images.to_model_image`)."""
    side = max(width, height)
    scale, dy, dx = size / side, (side - height) // 2, (side - width) // 2
    out = []
    for name, top, left, box_h, box_w in boxes:
        y0, x0 = int(np.floor((top + dy) * scale)), int(np.floor((left + dx) * scale))
        y1 = int(np.ceil((top + box_h + dy) * scale))
        x1 = int(np.ceil((left + box_w + dx) * scale))
        y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, size), min(x1, size)
        out.append((name, (y0, x0, max(y1 - y0, 1), max(x1 - x0, 1))))
    return out
