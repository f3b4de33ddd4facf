"""One dataset interface for the outfits and for an imported folder.

Training, every evaluation protocol and the search service read a `Dataset`: its splits, labels,
class names and image size, and its optional parts: the items' classes and boxes (the object
protocols and the localization figures need them) and a large gallery drawn by id. A protocol that
needs a part the dataset lacks is skipped, with `Dataset.lacks` saying why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashdemo.data.fashion_mnist import CLASS_NAMES
from hashdemo.data.imported import dataset_dir, load_dataset
from hashdemo.data.outfits import OutfitRecipe, load_outfits, recipe_hash, render_large_gallery
from hashdemo.data.split import Split
from hashdemo.storage.locations import CHECKPOINT_DIR, default_cache_dir

OUTFITS = "outfits"


@dataclass(frozen=True)
class Dataset:
    name: str
    classes: tuple[str, ...]
    image_size: int
    digest: str  # what the caches of its codes are keyed by (with the models' digests)
    cache: Path  # where codes computed on it are cached
    checkpoints: Path  # where its models are
    read_splits: Callable[[], dict[str, Split]]
    has_items: bool = False  # each image's items (class and box) are recorded
    large_gallery: Callable[[np.ndarray], Split] | None = None  # images of a large gallery, by id

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
        return "" if self.name == OUTFITS else f" --dataset {self.name}"


def open_dataset(name: str = OUTFITS, cache_dir: Path | None = None) -> Dataset:
    """The outfits (the default) or an imported folder by name; a DatasetError says how to import one."""
    cache = Path(cache_dir or default_cache_dir())
    if name == OUTFITS:
        recipe = OutfitRecipe()
        return Dataset(
            OUTFITS,
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
    return Dataset(
        name,
        imported.classes,
        int(imported.meta["size"]),
        imported.meta["source_digest"][:16],
        directory,
        directory / "checkpoints",
        lambda: imported.splits,
    )
