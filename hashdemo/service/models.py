"""The models a data set has trained, by registered name, each loaded and its gallery encoded the first
time it is asked for (the side-by-side view's peers, DCOH's compose), not all at the first start.

A model's gallery codes are cached alone, keyed by the data and its checkpoint's digest (and the device,
`hashdemo.model.device`). A model on a frozen torchvision backbone encodes from the backbone's pooled
outputs over the gallery, computed once per backbone and weights and shared by every model on them
(`hashdemo.model.features`): hier and DCOH on one ResNet-50 run it over the gallery once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.model.checkpoints import Checkpoint, load_checkpoint
from hashdemo.model.features import gallery_features_path, pooled_features
from hashdemo.model.networks import Encoded
from hashdemo.model.registry import MODELS
from hashdemo.retrieval.gallery_codes import cache_key, load_codes, save_codes
from hashdemo.retrieval.index import HammingIndex

Report = Callable[[float, str], None]  # (fraction done, what is happening)


class ModelStore:
    """The trained models under `checkpoints`, loaded and encoded on first use; safe across threads."""

    def __init__(self, source: Dataset, checkpoints: Path, images: np.ndarray, report: Report):
        self.source, self.checkpoints, self.images, self.report = source, checkpoints, images, report
        self.trained = tuple(name for name in MODELS if (checkpoints / name / "model.pt").is_file())
        self._lock = threading.RLock()
        self._checkpoints: dict[str, Checkpoint] = {}
        self._codes: dict[str, Encoded] = {}
        self._indexes: dict[tuple[str, str], HammingIndex] = {}

    def checkpoint(self, name: str) -> Checkpoint:
        with self._lock:
            if name not in self._checkpoints:
                self._checkpoints[name] = load_checkpoint(name, self.checkpoints)
            return self._checkpoints[name]

    def codes(self, name: str) -> Encoded:
        """Model `name`'s codes of the gallery: from its cache file, else encoded now and cached."""
        with self._lock:
            if name not in self._codes:
                self._codes[name] = self._encoded(name)
            return self._codes[name]

    def index(self, name: str, part: str = "global_bits") -> HammingIndex:
        """An in-process index over one of model `name`'s gallery codes ("global_bits", "local_bits")."""
        with self._lock:
            if (name, part) not in self._indexes:
                self._indexes[name, part] = HammingIndex(getattr(self.codes(name), part))
            return self._indexes[name, part]

    def is_ready(self, name: str) -> bool:
        """Whether model `name`'s gallery codes are in memory (no encoding on asking)."""
        return name in self._codes

    def _encoded(self, name: str) -> Encoded:
        path = self.source.cache / f"gallery-codes-{cache_key(self.source, (name,), self.checkpoints)}.npz"
        cached = load_codes(path, (name,))
        if cached is not None:
            return cached[0][name]
        checkpoint = self.checkpoint(name)
        self.report(0.4, f"encoding the gallery with {name} (once: then cached)")
        model = checkpoint.model
        if model.frozen_backbone:  # one backbone pass over the gallery, shared by the models on it
            features_file = gallery_features_path(self.source, checkpoint.config, checkpoint.metrics)
            features = pooled_features(model.backbone, model.backbone_name, self.images, features_file, False)
            encoded = model.encode_pooled(features)
        else:
            encoded = model.encode(self.images)
        save_codes(path, {name: encoded})
        return encoded
