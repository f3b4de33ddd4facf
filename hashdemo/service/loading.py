"""What an engine is built from: both checkpoints, the dataset, the gallery codes (cached by checkpoint
digest), the indexes (in process or in Milvus), the query examples and the out-of-domain cut-offs.

The dataset is a `hashdemo.data.dataset.Dataset`: the outfits, or an imported folder by name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import OUTFITS, Dataset, open_dataset
from hashdemo.data.split import Split
from hashdemo.evaluation.tuning import tune
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from hashdemo.model.networks import Encoded
from hashdemo.model.registry import PEERS, train_command
from hashdemo.retrieval.gallery_codes import cache_key, load_codes, save_codes
from hashdemo.retrieval.novelty import detail_threshold, novelty_threshold
from hashdemo.retrieval.protocol import coarse_candidates

log = logging.getLogger(__name__)
Report = Callable[[float, str], None]  # (fraction done, what is happening)
MilvusProgress = Callable[[str, int, int], None]  # (collection, codes stored, codes in all)
MODELS = ("hier", "dcoh")  # the hierarchical model searches, DCOH composes


def log_progress(fraction: float, message: str) -> None:
    log.info("%3.0f%% %s", 100 * fraction, message)


def engine_parts(
    checkpoints: Path | None,
    cache_dir: Path | None,
    report: Report,
    n_examples: int,
    milvus_uri: str | None,
    milvus_progress: MilvusProgress | None,
    dataset: str | None,
) -> dict:
    """The Engine's keyword arguments, loaded (see `Engine.load` for the parameters)."""
    source = open_dataset(dataset or os.environ.get("HASHDEMO_DATASET") or OUTFITS, cache_dir)
    checkpoints = checkpoints or source.checkpoints
    report(0.0, f"loading checkpoints ({checkpoints})")
    models = {model: model_of(source, checkpoints, model) for model in MODELS}
    report(0.1, f"loading the {source.name} dataset")
    splits = source.splits
    gallery, query, val = splits["gallery"], splits["query"], splits["val"]
    codes = gallery_codes(source, checkpoints, models, gallery.images, report)
    report(0.9, "building the indexes")
    milvus_uri = milvus_uri or os.environ.get("HASHDEMO_MILVUS_URI")
    indexes = None
    if milvus_uri:
        keys = {name: cache_key(source, (name,), checkpoints) for name in MODELS}
        indexes = milvus_gallery(keys, codes, gallery.labels, milvus_uri, report, milvus_progress)
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
        "peers": peer_models(source, checkpoints, gallery.images, report),
        "defaults": chosen_params(models["hier"], val, len(gallery)),
        "items": (
            np.concatenate([query.classes, gallery.classes]),
            np.concatenate([query.boxes, gallery.boxes]),
        ),
    }


def chosen_params(hier: Checkpoint, val: Split, n_gallery: int) -> dict:
    """theta, L and K as the evaluation chose them on val (the checkpoint's test metrics); a dataset not
    evaluated yet has them chosen here on its own val split the same way, so they fit its gallery."""
    test = hier.metrics.get("test", {})
    if all(key in test for key in ("theta", "L", "K")):
        return {key: test[key] for key in ("theta", "L", "K")}
    best = tune(hier, hier.model.encode(val.images, with_conv7=True), val.labels)["best"]
    return {"theta": best["theta"], "L": best["L"], "K": coarse_candidates(best["K_share"], n_gallery)}


def peer_models(
    source: Dataset, checkpoints: Path, images: np.ndarray, report: Report
) -> dict[str, tuple[Checkpoint, Encoded]]:
    """The field's one-level models trained on the dataset, each with its gallery codes (cached as the
    engine's own are); none when none is trained."""
    trained = {
        name: load_checkpoint(name, checkpoints)
        for name in PEERS
        if (checkpoints / name / "model.pt").is_file()
    }
    if not trained:
        return {}
    codes = gallery_codes(source, checkpoints, trained, images, report)
    return {name: (checkpoint, codes[name]) for name, checkpoint in trained.items()}


def model_of(source: Dataset, checkpoints: Path, model: str) -> Checkpoint:
    """A model of the dataset; for an imported set, a missing one names the command that trains it."""
    if not source.kind.shipped and not (checkpoints / model / "model.pt").is_file():
        raise CheckpointError(
            f"no {model} model is trained on dataset {source.name!r}: run {train_command(model, source.name)}"
        )
    return load_checkpoint(model, checkpoints)


def gallery_codes(
    source: Dataset, checkpoints: Path, models: dict[str, Checkpoint], images: np.ndarray, report: Report
) -> dict[str, Encoded]:
    """Each model's codes of the gallery, from the cache keyed by the data and the checkpoints' digests,
    encoded (and cached) on first start."""
    names = tuple(models)
    path = source.cache / f"gallery-codes-{cache_key(source, names, checkpoints)}.npz"
    cached = load_codes(path, names)
    if cached is not None:
        return cached[0]
    report(0.4, f"encoding the gallery with {', '.join(names)} (first start only)")
    codes = {name: checkpoint.model.encode(images) for name, checkpoint in models.items()}
    save_codes(path, codes)
    return codes


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
