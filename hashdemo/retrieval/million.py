"""A gallery of a million real images, encoded once in resumable chunks (docs/results.md, "A real
million"): the large gallery's images (drawn from the gallery's own item pool, rendered by id and never
kept), encoded by each named model, their codes packed and memory-mapped in the cache, never committed.

Layout of `million-<size>-<key>/`: `<model>.global.npy` (N, H/8) and, for a two-level model,
`<model>.local.npy` (N, C/8) packed uint8 codes; `labels.npy` (N, n_classes) and `classes.npy` (N, 3);
`done/<chunk>` markers, each written after its chunk's codes are flushed. A killed run, started again,
encodes only the chunks without a marker; workers (`worker`, `workers`) take every n-th chunk, so two
processes fill one gallery on a 2-core machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.model.checkpoints import load_checkpoint
from hashdemo.retrieval.gallery_codes import cache_key
from hashdemo.storage.files import write_atomic

log = logging.getLogger(__name__)
MILLION = 1_000_000
CHUNK = 10_000  # images per resumable step (ten of the large gallery's rendering chunks)
# the two-level model, the one-level baseline and the best 32-bit peer on full mAP (docs/results.md)
MILLION_MODELS = ("hier", "single_level", "greedyhash")


class MillionIncomplete(RuntimeError):
    """The gallery's codes are not all encoded; the message says how many chunks are missing and how to
    finish them."""


def million_directory(dataset: Dataset, names: tuple[str, ...], size: int, checkpoints: Path) -> Path:
    return dataset.cache / f"million-{size}-{cache_key(dataset, names, checkpoints)}"


def _arrays(dataset: Dataset, names: tuple[str, ...], checkpoints: Path) -> dict[str, tuple[int, ...]]:
    """Each file's row shape: packed global (and local) codes per model, labels and item classes."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name in names:
        config = load_checkpoint(name, checkpoints).config
        shapes[f"{name}.global"] = (-(-config.bits // 8),)
        if config.local_weight > 0:
            shapes[f"{name}.local"] = (-(-config.conv7_channels // 8),)
    return {**shapes, "labels": (len(dataset.classes),), "classes": (3,)}


def _open(directory: Path, shapes: dict[str, tuple[int, ...]], size: int) -> dict[str, np.memmap]:
    """The memory-mapped files, created (zeros) where missing; a file of another shape is refused."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "done").mkdir(exist_ok=True)
    out = {}
    for key, row in shapes.items():
        path = directory / f"{key}.npy"
        dtype = np.int8 if key == "classes" else np.uint8
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.tmp")
            np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(size, *row)).flush()
            tmp.replace(path)
        array = np.lib.format.open_memmap(path, mode="r+")
        if array.shape != (size, *row):
            raise ValueError(f"{path} holds {array.shape}, expected {(size, *row)}: remove it to rebuild")
        out[key] = array
    return out


def encode_million(
    dataset: Dataset,
    names: tuple[str, ...],
    checkpoints: Path,
    size: int = MILLION,
    chunk: int = CHUNK,
    worker: int = 0,
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Encode every chunk of the gallery that has no marker yet (this worker's share of them)."""
    if dataset.large_gallery is None:
        raise ValueError(f"the dataset {dataset.name} has no large gallery to draw a million images from")
    if not 0 <= worker < workers:
        raise ValueError(f"worker must lie in [0, {workers}), got {worker}")
    directory = million_directory(dataset, names, size, checkpoints)
    arrays = _open(directory, _arrays(dataset, names, checkpoints), size)
    models = {name: load_checkpoint(name, checkpoints).model for name in names}
    starts = [s for i, s in enumerate(range(0, size, chunk)) if i % workers == worker]
    todo = [s for s in starts if not (directory / "done" / str(s)).is_file()]
    log.info("million gallery %s: %d of %d chunks to encode", directory.name, len(todo), len(starts))
    if progress:
        from tqdm import tqdm

        todo = tqdm(todo, desc=f"encoding {size:,} images ({', '.join(names)})", unit="chunk")
    for start in todo:
        ids = np.arange(start, min(start + chunk, size))
        split = dataset.large_gallery(ids)
        arrays["labels"][ids] = split.labels
        arrays["classes"][ids] = split.classes
        for name, model in models.items():
            encoded = model.encode(split.images)
            arrays[f"{name}.global"][ids] = np.packbits(encoded.global_bits, axis=1)
            if f"{name}.local" in arrays:
                arrays[f"{name}.local"][ids] = np.packbits(encoded.local_bits, axis=1)
        for array in arrays.values():
            array.flush()
        write_atomic(directory / "done" / str(start), b"", durable=True)
    return directory


@dataclass(frozen=True)
class MillionCodes:
    """A complete million gallery, memory-mapped read-only: packed codes by "<model>.global|local"."""

    packed: dict[str, np.ndarray]
    labels: np.ndarray  # (N, n_classes) uint8
    classes: np.ndarray  # (N, 3) int8, -1 for an empty slot

    @property
    def n(self) -> int:
        return len(self.labels)


def load_million(
    dataset: Dataset, names: tuple[str, ...], checkpoints: Path, size: int = MILLION, chunk: int = CHUNK
) -> MillionCodes:
    """The encoded gallery, or MillionIncomplete naming what is missing and the command that finishes it."""
    directory = million_directory(dataset, names, size, checkpoints)
    missing = [s for s in range(0, size, chunk) if not (directory / "done" / str(s)).is_file()]
    if missing:
        raise MillionIncomplete(
            f"{len(missing)} of {-(-size // chunk)} chunks of the {size:,}-image gallery are not encoded: "
            f"run `python -m hashdemo gallery-codes --million {size} --models {' '.join(names)}`"
        )
    shapes = _arrays(dataset, names, checkpoints)
    arrays = {key: np.load(directory / f"{key}.npy", mmap_mode="r") for key in shapes}
    labels, classes = arrays.pop("labels"), arrays.pop("classes")
    return MillionCodes(arrays, labels, classes)
