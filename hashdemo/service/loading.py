"""What an engine is built from: both checkpoints, the dataset, the gallery codes (cached by checkpoint
digest), the indexes (in process or in Milvus), the query examples and the out-of-domain cut-offs.

`DataSource` is the one piece that knows where a dataset lives; everything else reads it through its
name, classes, checkpoints, cache folder, splits and cache key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.fashion_mnist import CLASS_NAMES
from hashdemo.data.imported import dataset_dir, load_dataset
from hashdemo.data.outfits import OutfitRecipe, load_outfits, recipe_hash
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint, sha256_of
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.gallery_codes import load_codes, save_codes
from hashdemo.retrieval.novelty import VAL_QUANTILE, detail_threshold, novelty, unit_rows
from hashdemo.storage.locations import default_cache_dir

log = logging.getLogger(__name__)
Report = Callable[[float, str], None]  # (fraction done, what is happening)
MilvusProgress = Callable[[str, int, int], None]  # (collection, codes stored, codes in all)
MODELS = ("hier", "dcoh")  # the hierarchical model searches, DCOH composes


def log_progress(fraction: float, message: str) -> None:
    log.info("%3.0f%% %s", 100 * fraction, message)


def engine_parts(
    checkpoints: Path,
    cache_dir: Path | None,
    report: Report,
    n_examples: int,
    milvus_uri: str | None,
    milvus_progress: MilvusProgress | None,
    dataset: str | None,
) -> dict:
    """The Engine's keyword arguments, loaded (see `Engine.load` for the parameters)."""
    source = DataSource.open(
        dataset or os.environ.get("HASHDEMO_DATASET") or "outfits", checkpoints, cache_dir
    )
    report(0.0, f"loading checkpoints ({source.checkpoints})")
    models = {model: source.checkpoint(model) for model in MODELS}
    report(0.1, f"loading the {source.name} dataset")
    splits = source.splits()
    gallery, query, val = splits["gallery"], splits["query"], splits["val"]
    codes = gallery_codes(source, models, gallery.images, report)
    report(0.9, "building the indexes")
    milvus_uri = milvus_uri or os.environ.get("HASHDEMO_MILVUS_URI")
    indexes = None
    if milvus_uri:
        indexes = milvus_gallery(source, codes, gallery.labels, milvus_uri, report, milvus_progress)
    return {
        "hier": models["hier"],
        "dcoh": models["dcoh"],
        "gallery_images": gallery.images,
        "gallery_labels": gallery.labels,
        "hier_codes": codes["hier"],
        "dcoh_codes": codes["dcoh"],
        "examples": {
            f"query-{i}": (query.images[i], query.labels[i]) for i in range(min(n_examples, len(query)))
        },
        "indexes": indexes,
        "classes": source.classes,
        "dataset": source.name,
        "novelty_threshold": imported_threshold(source, models["hier"], val.images, codes["hier"]),
        "query_split": (query.images, query.labels),
        "smooth_below": detail_threshold(val.images),
        "items": (
            np.concatenate([query.classes, gallery.classes]),
            np.concatenate([query.boxes, gallery.boxes]),
        ),
    }


def gallery_codes(
    source: DataSource, models: dict[str, Checkpoint], images: np.ndarray, report: Report
) -> dict[str, Encoded]:
    """Each model's codes of the gallery, from the cache keyed by the data and the checkpoints' digests,
    encoded (and cached) on first start."""
    names = tuple(models)
    path = source.cache / f"gallery-codes-{source.key(names)}.npz"
    cached = load_codes(path, names)
    if cached is not None:
        return cached[0]
    report(0.4, "encoding the gallery with both models (first start only)")
    codes = {name: checkpoint.model.encode(images) for name, checkpoint in models.items()}
    save_codes(path, codes)
    return codes


def milvus_gallery(
    source: DataSource,
    codes: dict[str, Encoded],
    labels: np.ndarray,
    uri: str,
    report: Report,
    progress: MilvusProgress | None,
) -> dict:
    """The engine's three indexes as Milvus collections, built on first use."""
    from hashdemo.retrieval.milvus import milvus_indexes  # pymilvus only when asked for

    report(0.9, f"opening the gallery in Milvus at {uri} (built on first use)")
    hier_key, dcoh_key = (source.key((name,)) for name in MODELS)
    return milvus_indexes(
        uri,
        {
            "hier_global": (hier_key, codes["hier"].global_bits),
            "hier_local": (hier_key, codes["hier"].local_bits),
            "dcoh": (dcoh_key, codes["dcoh"].global_bits),
        },
        labels,
        progress,
    )


def imported_threshold(
    source: DataSource, hier: Checkpoint, val_images: np.ndarray, gallery: Encoded
) -> float | None:
    """An imported set, evaluated or not, calibrates the out-of-domain cut-off on its own val split;
    None for the outfits (their evaluation's cut-off is in the checkpoint's metrics)."""
    if source.name == "outfits":
        return None
    return val_threshold(hier.model.encode(val_images).pooled, gallery.pooled)


@dataclass(frozen=True)
class DataSource:
    """Where an engine's data and models come from: the outfits, or an imported folder."""

    name: str
    checkpoints: Path
    cache: Path  # where the gallery codes are cached
    classes: tuple[str, ...]
    digest: str  # what the data's cache key rests on
    imported: dict | None = None  # an imported folder's splits, read once

    @classmethod
    def open(cls, name: str, checkpoints: Path, cache_dir: Path | None) -> DataSource:
        if name == "outfits":
            cache = Path(cache_dir or default_cache_dir())
            return cls(name, checkpoints, cache, CLASS_NAMES, recipe_hash(OutfitRecipe()))
        dataset = load_dataset(name, cache_dir)  # a DatasetError naming the import command when missing
        directory, digest = dataset_dir(name, cache_dir), dataset.meta["npz_sha256"][:16]
        return cls(name, directory / "checkpoints", directory, dataset.classes, digest, dataset.splits)

    def checkpoint(self, model: str) -> Checkpoint:
        """A model of this source; for an imported set, a missing one names the command that trains it."""
        if self.name != "outfits" and not (self.checkpoints / model / "model.pt").is_file():
            raise CheckpointError(
                f"no {model} model is trained on dataset {self.name!r}: "
                f"run python -m hashdemo train {model} --dataset {self.name}"
            )
        return load_checkpoint(model, self.checkpoints)

    def splits(self) -> dict:
        if self.imported is not None:
            return self.imported
        return load_outfits(OutfitRecipe(), cache_dir=self.cache)

    def key(self, names: tuple[str, ...]) -> str:
        """The data's digest + the first 16 hex digits of each checkpoint's sha256."""
        digests = [sha256_of(self.checkpoints / name / "model.pt")[:16] for name in names]
        return "-".join([self.digest, *digests])


def val_threshold(val_pooled: np.ndarray, gallery_pooled: np.ndarray) -> float:
    """The novelty cut-off that flags VAL_QUANTILE's share of val images."""
    return float(np.quantile(novelty(val_pooled, unit_rows(gallery_pooled)), VAL_QUANTILE))
