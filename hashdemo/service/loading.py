"""What an engine is built from: the data set's trained models (`ModelStore`, each encoded on first
use), the dataset, the indexes (in process or in Milvus), the query examples and the out-of-domain
cut-offs.

The dataset is a `hashdemo.data.dataset.Dataset`: the outfits, or an imported folder by name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import OUTFITS, Dataset, open_dataset
from hashdemo.data.split import Split
from hashdemo.evaluation.tuning import tune
from hashdemo.model.checkpoints import Checkpoint, CheckpointError
from hashdemo.model.networks import Encoded
from hashdemo.model.registry import train_command
from hashdemo.retrieval.gallery_codes import cache_key
from hashdemo.retrieval.novelty import detail_threshold, novelty_threshold
from hashdemo.retrieval.protocol import coarse_candidates
from hashdemo.service.models import ModelStore

log = logging.getLogger(__name__)
Report = Callable[[float, str], None]  # (fraction done, what is happening)
MilvusProgress = Callable[[str, int, int], None]  # (collection, codes stored, codes in all)
MODELS = ("hier", "dcoh")  # the hierarchical model searches, DCOH composes


def log_progress(fraction: float, message: str) -> None:
    log.info("%3.0f%% %s", 100 * fraction, message)


@dataclass(frozen=True)
class EngineParts:
    """What an Engine is built from (see `Engine.__init__` for what each is for)."""

    models: ModelStore
    source: Dataset
    gallery_images: np.ndarray
    gallery_labels: np.ndarray
    examples: dict[str, tuple[np.ndarray, np.ndarray]]
    query_split: tuple[np.ndarray, np.ndarray]
    items: tuple[np.ndarray, np.ndarray]
    defaults: dict
    indexes: dict | None = None  # Milvus collections; None: in-process indexes
    novelty_threshold: float | None = None
    smooth_below: float | None = None


def engine_parts(
    checkpoints: Path | None,
    cache_dir: Path | None,
    report: Report,
    n_examples: int,
    milvus_uri: str | None,
    milvus_progress: MilvusProgress | None,
    dataset: str | None,
) -> EngineParts:
    """The Engine's parts, loaded (see `Engine.load` for the parameters). Only the hierarchical model's
    gallery codes are encoded here (the search tab opens on it); the others on first use."""
    source = open_dataset(dataset or os.environ.get("HASHDEMO_DATASET") or OUTFITS, cache_dir)
    checkpoints = checkpoints or source.checkpoints
    report(0.0, f"loading checkpoints ({checkpoints})")
    for model in MODELS:
        check_trained(source, checkpoints, model)
    report(0.1, f"loading the {source.name} dataset")
    splits = source.splits
    gallery, query, val = splits["gallery"], splits["query"], splits["val"]
    models = ModelStore(source, checkpoints, gallery.images, report)
    hier = models.checkpoint("hier")
    hier_codes = models.codes("hier")
    report(0.9, "building the indexes")
    milvus_uri = milvus_uri or os.environ.get("HASHDEMO_MILVUS_URI")
    indexes = None
    if milvus_uri:
        keys = {name: cache_key(source, (name,), checkpoints) for name in MODELS}
        codes = {name: models.codes(name) for name in MODELS}
        indexes = milvus_gallery(keys, codes, gallery.labels, milvus_uri, report, milvus_progress)
    return EngineParts(
        models,
        source,
        gallery.images,
        gallery.labels,
        {f"query-{i}": (query.images[i], query.labels[i]) for i in range(min(n_examples, len(query)))},
        (query.images, query.labels),
        (np.concatenate([query.classes, gallery.classes]), np.concatenate([query.boxes, gallery.boxes])),
        chosen_params(hier, val, len(gallery)),
        indexes,
        imported_threshold(source, hier, val.images, hier_codes),
        detail_threshold(val.images),
    )


def chosen_params(hier: Checkpoint, val: Split, n_gallery: int) -> dict:
    """theta, L and K as the evaluation chose them on val (the checkpoint's test metrics); a dataset not
    evaluated yet has them chosen here on its own val split the same way, so they fit its gallery."""
    test = hier.metrics.get("test", {})
    if all(key in test for key in ("theta", "L", "K")):
        return {key: test[key] for key in ("theta", "L", "K")}
    best = tune(hier, hier.model.encode(val.images, with_conv7=True), val.labels)["best"]
    return {"theta": best["theta"], "L": best["L"], "K": coarse_candidates(best["K_share"], n_gallery)}


def check_trained(source: Dataset, checkpoints: Path, model: str) -> None:
    """A model the app needs; for an imported set, a missing one names the command that trains it."""
    if not source.kind.shipped and not (checkpoints / model / "model.pt").is_file():
        raise CheckpointError(
            f"no {model} model is trained on dataset {source.name!r}: run {train_command(model, source.name)}"
        )


def milvus_gallery(
    keys: dict[str, str],
    codes: dict[str, Encoded],
    labels: np.ndarray,
    uri: str,
    report: Report,
    progress: MilvusProgress | None,
) -> dict:
    """The engine's three indexes as Milvus collections, built on first use."""
    from hashdemo.retrieval.milvus import milvus_indexes  # pymilvus only when asked for

    report(0.9, f"opening the gallery in Milvus at {uri} (built on first use)")
    hier_key, dcoh_key = keys["hier"], keys["dcoh"]
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
    source: Dataset, hier: Checkpoint, val_images: np.ndarray, gallery: Encoded
) -> float | None:
    """An imported set, evaluated or not, calibrates the out-of-domain cut-off on its own val split;
    None for the outfits (their evaluation's cut-off is in the checkpoint's metrics)."""
    if source.kind.shipped:
        return None
    return novelty_threshold(hier.model.encode(val_images).pooled, gallery.pooled)
