"""Fashion-MNIST, the outfits' source: its four idx files, checked and read (Debian's
dataset-fashion-mnist)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)


DEFAULT_FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


PARTS = tuple(_FMNIST_FILES)  # "train" (60k items) and "t10k" (10k items)
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned-byte idx files with 3 / 1 dimensions


class DatasetMissingError(RuntimeError):
    """The Fashion-MNIST idx files are not where we look for them."""


def fmnist_dir() -> Path:
    """The directory holding the four Fashion-MNIST idx .gz files."""
    return Path(os.environ.get("HASHDEMO_FMNIST_DIR") or DEFAULT_FMNIST_DIR)


def _missing_message(directory: Path) -> str:
    return (
        f"Fashion-MNIST not found in {directory}: run `apt-get install dataset-fashion-mnist`, "
        "or download the four *-idx*-ubyte.gz files and set HASHDEMO_FMNIST_DIR to their "
        "directory."
    )


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped unsigned-byte idx file with ``ndim`` dimensions; check magic and size."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(f"{path}: bad idx magic {magic:#010x}, expected {_IDX_MAGIC[ndim]:#010x}")
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: {len(raw) - header} data bytes, header says shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(part: str, directory: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``part`` ("train" or "t10k") as images (N, 28, 28) and labels (N,), uint8."""
    if part not in _FMNIST_FILES:
        raise ValueError(f"part must be one of {sorted(_FMNIST_FILES)}, got {part!r}")
    directory = fmnist_dir() if directory is None else Path(directory)
    paths = [directory / name for name in _FMNIST_FILES[part]]
    if not all(p.is_file() for p in paths):
        raise DatasetMissingError(_missing_message(directory))
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    if images.shape[1:] != (28, 28) or len(images) != len(labels) or labels.max() >= NUM_CLASSES:
        raise ValueError(f"{directory}: inconsistent {part} files {images.shape}, {labels.shape}")
    return images, labels


def fmnist_present(directory: Path | None = None) -> bool:
    """Whether the four Fashion-MNIST idx files are where we look for them."""
    directory = fmnist_dir() if directory is None else Path(directory)
    return all((directory / n).is_file() for names in _FMNIST_FILES.values() for n in names)


def _check_sources_present(directory: Path | None = None) -> None:
    if not fmnist_present(directory):
        raise DatasetMissingError(_missing_message(fmnist_dir() if directory is None else Path(directory)))
