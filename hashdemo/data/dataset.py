"""One dataset interface for the outfits and for every imported set.

Training, every evaluation protocol and the search service read a `Dataset`: its splits, labels,
class names and image size, its kind (`hashdemo.data.kinds`) and the field's mAP cut-off for it, and
its optional parts: the items' classes and boxes (the object protocols and the localization figures
need them) and a large gallery drawn by id. A protocol that needs a part the dataset lacks is
skipped, with `Dataset.lacks` saying why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.fashion_mnist import CLASS_NAMES
from hashdemo.data.imported import dataset_dir, load_dataset
from hashdemo.data.kinds import DEFAULT, KINDS, Kind, dataset_flag, kind_of
from hashdemo.data.outfits import OutfitRecipe, load_outfits, recipe_hash, render_large_gallery
from hashdemo.data.split import Split
from hashdemo.storage.locations import CHECKPOINT_DIR, default_cache_dir

OUTFITS = DEFAULT


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: Kind
    classes: tuple[str, ...]
    image_size: int
    digest: str  # what the caches of its codes are keyed by (with the models' digests)
    cache: Path  # where codes computed on it are cached
    checkpoints: Path  # where its models are
    read_splits: Callable[[], dict[str, Split]]
    has_items: bool = False  # each image's items (class and box) are recorded
    large_gallery: Callable[[np.ndarray], Split] | None = None  # images of a large gallery, by id
    cutoff: int | None = None  # the field's mAP@cutoff for the set; None: over the whole gallery

    @functools.cached_property
    def splits(self) -> dict[str, Split]:
        """train, val, query and gallery, read once."""
        return self.read_splits()

    def lacks(self, part: str) -> str | None:
        """Why a protocol needing `part` ("items" or "large_gallery") cannot run here, None when it can."""
        if part == "items" and not self.has_items:
            return "the dataset records no item boxes"
        if part == "large_gallery" and self.large_gallery is None:
            return "the dataset has no large gallery"
        return None

    def train_flag(self) -> str:
        """What `python -m hashdemo train` needs to train on this dataset."""
        return dataset_flag(self.name)

    @property
    def phrase(self) -> str:
        """What the models were trained on, in a phrase ("outfits", "images of NAME")."""
        return self.name if self.kind.shipped else f"images of {self.name}"


def open_dataset(name: str = OUTFITS, cache_dir: Path | None = None) -> Dataset:
    """The outfits (the default) or an imported folder by name; a DatasetError says how to import one."""
    cache = Path(cache_dir or default_cache_dir())
    if name == OUTFITS:
        recipe = OutfitRecipe()
        return Dataset(
            OUTFITS,
            KINDS[OUTFITS],
            CLASS_NAMES,
            recipe.image_size,
            recipe_hash(recipe),
            cache,
            CHECKPOINT_DIR,
            functools.partial(load_outfits, recipe, cache, progress=True),
            has_items=True,
            large_gallery=functools.partial(render_large_gallery, recipe=recipe),
        )
    imported = load_dataset(name, cache_dir)
    directory = dataset_dir(name, cache_dir)
    kind = kind_of(imported.meta.get("kind", "folder"))
    return Dataset(
        name,
        kind,
        imported.classes,
        int(imported.meta["size"]),
        imported.meta["source_digest"][:16],
        directory,
        directory / "checkpoints",
        lambda: imported.splits,
        has_items=kind.boxes and imported.splits["query"].classes.shape[1] > 0,
        cutoff=imported.meta.get("cutoff"),
    )
