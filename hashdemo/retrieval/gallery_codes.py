"""Gallery codes, cached: the app's 10k gallery and the evaluation's large (100k) gallery.

A cache file is named by the dataset's digest and the sha256 of every checkpoint that encoded it, so a
new model or dataset never reads stale codes; files are written atomically and rebuilt when unreadable.
`python -m hashdemo gallery-codes --size 100000` builds the large gallery's codes with a progress bar.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.model.checkpoints import Checkpoint, load_checkpoint, sha256_of
from hashdemo.model.device import device_tag
from hashdemo.model.networks import Encoded
from hashdemo.storage.files import remove_orphaned_writes, savez_atomic
from hashdemo.storage.locations import CACHE_ERRORS

log = logging.getLogger(__name__)
CACHED_FIELDS = ("global_bits", "local_bits", "pooled", "label_probs")  # Encoded without the Conv7 maps
ENCODE_CHUNK = 1000


def cache_key(dataset: Dataset, names: tuple[str, ...], checkpoints: Path | None = None) -> str:
    """The data's digest + the first 16 hex digits of each checkpoint's sha256 (+ the device's tag)."""
    directory = checkpoints or dataset.checkpoints
    digests = (sha256_of(directory / name / "model.pt")[:16] for name in names)
    return "-".join([dataset.digest, *digests]) + device_tag()


def load_codes(path: Path, names: tuple[str, ...]) -> tuple[dict[str, Encoded], dict[str, np.ndarray]] | None:
    """(codes per model name, extra arrays) from a cache file, or None when missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            codes = {name: Encoded(**{f: data[f"{name}.{f}"] for f in CACHED_FIELDS}) for name in names}
            extra = {key: data[key] for key in data.files if "." not in key}
        return codes, extra
    except CACHE_ERRORS as error:
        log.warning("gallery code cache %s is unreadable (%s); re-encoding", path, error)
        return None


def save_codes(path: Path, codes: dict[str, Encoded], **extra: np.ndarray) -> None:
    """Written to a temporary file and renamed, so a crash never leaves a half-written cache."""
    arrays = {f"{name}.{f}": getattr(enc, f) for name, enc in codes.items() for f in CACHED_FIELDS}
    savez_atomic(path, {**arrays, **extra})


def large_gallery_codes(
    dataset: Dataset,
    names: tuple[str, ...] = ("hier",),
    size: int = 100_000,
    checkpoints: Path | None = None,
    progress: bool = False,
) -> tuple[dict[str, Encoded], np.ndarray, np.ndarray]:
    """Codes of the first `size` images of the dataset's large gallery under each checkpoint in `names`,
    with the images' labels (N, n_classes) and item classes (N, 3). One cache file per model, so a new
    checkpoint re-encodes only its own codes; the images are drawn once for all models still missing."""
    checkpoints = checkpoints or dataset.checkpoints
    directory = dataset.cache
    if directory.is_dir():
        remove_orphaned_writes(directory)  # a build killed mid-write left its temporary file
    paths = {
        name: directory / f"large-gallery-{size}-{cache_key(dataset, (name,), checkpoints)}.npz"
        for name in names
    }
    codes, extra = {}, {}
    for name, path in paths.items():
        cached = load_codes(path, (name,))
        if cached is not None:
            codes[name], extra = cached[0][name], cached[1]
    missing = [name for name in names if name not in codes]
    if missing:
        models: dict[str, Checkpoint] = {name: load_checkpoint(name, checkpoints) for name in missing}
        parts: dict[str, list[Encoded]] = {name: [] for name in missing}
        labels, classes = [], []
        starts = range(0, size, ENCODE_CHUNK)
        if progress:
            from tqdm import tqdm

            starts = tqdm(
                starts, desc=f"large gallery: encoding {size:,} images ({', '.join(missing)})", unit="chunk"
            )
        for start in starts:
            split = dataset.large_gallery(np.arange(start, min(start + ENCODE_CHUNK, size)))
            labels.append(split.labels)
            classes.append(split.classes)
            for name, checkpoint in models.items():
                parts[name].append(checkpoint.model.encode(split.images))
        extra = {"labels": np.concatenate(labels), "classes": np.concatenate(classes)}
        for name, chunks in parts.items():
            codes[name] = Encoded(
                **{f: np.concatenate([getattr(p, f) for p in chunks]) for f in CACHED_FIELDS}
            )
            save_codes(paths[name], {name: codes[name]}, **extra)
    return codes, extra["labels"], extra["classes"]
