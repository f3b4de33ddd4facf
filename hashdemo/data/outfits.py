"""Fashion-MNIST outfits: 64x64 multi-label images of 1-3 clothing items (docs/methods.md, "The data").

Each image holds 1-3 Fashion-MNIST items of distinct classes, scaled, tinted and placed without
overlap on a black or cluttered background; its label is the multi-hot set of item classes.
All four splits come from one seed and are cached on disk as a pickle-free ``.npz``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from hashdemo.data.fashion_mnist import (
    CLASS_NAMES,
    NUM_CLASSES,
    PARTS,
    _check_sources_present,
    load_fashion_mnist,
)
from hashdemo.data.split import SPLIT_NAMES, Split, label_sets_of
from hashdemo.storage.files import remove_orphaned_writes, savez_atomic
from hashdemo.storage.locations import CACHE_ERRORS, default_cache_dir

logger = logging.getLogger(__name__)

MAX_ITEMS = 3  # width of Split.items; recipes may use fewer items, never more
# Bump whenever the rendering code changes what a given recipe produces: old caches then rebuild.
RECIPE_VERSION = 2  # 2: item classes and boxes recorded (images unchanged)

_SOURCE_OF_SPLIT = {"train": "train", "val": "train", "query": "t10k", "gallery": "t10k"}
_SOURCE_SIZE = {"train": 60000, "t10k": 10000}


@dataclass(frozen=True)
class OutfitRecipe:
    """Everything that determines the outfit splits; its hash names the cache file."""

    seed: int = 0  # one seed for all splits; each split draws from its own spawned stream
    image_size: int = 64  # large enough for 3 non-overlapping items, small enough to train on CPU
    train_size: int = 30000  # ~170 images per label set: enough to learn all 175 sets
    val_size: int = 2000  # model selection happens here, never on the query split
    query_size: int = 1000  # ~6 queries per label set keeps mAP estimates stable
    gallery_size: int = 10000  # what the app searches; large enough that mAP@100 is meaningful
    min_items: int = 1  # single-item images give the pure-class anchors
    max_items: int = 3  # 3 items give 120 of the 175 label sets, enough to test set operations
    min_side: int = 20  # smaller than 20 px and sandals/sneakers lose their shape
    max_side: int = 30  # larger than 30 px and three items rarely fit without overlap
    clutter_prob: float = 0.5  # half the images have a background that attention must ignore
    val_fraction: float = 0.1  # share of each class's FMNIST-train items reserved for val
    query_fraction: float = 0.2  # share of each class's FMNIST-test items reserved for query
    version: int = RECIPE_VERSION  # changes with the rendering code, so stale caches rebuild

    def __post_init__(self) -> None:
        if not 1 <= self.min_items <= self.max_items <= MAX_ITEMS:
            raise ValueError(
                f"need 1 <= min_items <= max_items <= {MAX_ITEMS}, got {self.min_items}, {self.max_items}"
            )
        if not 8 <= self.min_side <= self.max_side <= self.image_size // 2:
            raise ValueError(
                f"need 8 <= min_side <= max_side <= image_size/2, got "
                f"{self.min_side}, {self.max_side}, image_size={self.image_size}"
            )
        for name in ("train_size", "val_size", "query_size", "gallery_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("clutter_prob", "val_fraction", "query_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name != "clutter_prob" and value in (0.0, 1.0)):
                raise ValueError(f"{name} out of range: {value}")

    def size_of(self, split: str) -> int:
        """Number of images in ``split`` (one of SPLIT_NAMES)."""
        return int(getattr(self, f"{split}_size"))


# --------------------------------------------------------------------------- Fashion-MNIST source


# --------------------------------------------------------------------------- label helpers


def all_label_sets(min_items: int = 1, max_items: int = MAX_ITEMS) -> list[tuple[int, ...]]:
    """Every label set with ``min_items..max_items`` classes (175 for 1..3), sorted by size."""
    return [c for k in range(min_items, max_items + 1) for c in itertools.combinations(range(NUM_CLASSES), k)]


# --------------------------------------------------------------------------- building


def _split_pools(
    source_labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per class, a random ``1 - fraction`` / ``fraction`` partition of the item indices."""
    big, small = [], []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(source_labels == c))
        n_small = round(fraction * len(idx))
        small.append(np.sort(idx[:n_small]))
        big.append(np.sort(idx[n_small:]))
    return big, small


def _sample_classes(n: int, recipe: OutfitRecipe, rng: np.random.Generator, cover_all: bool) -> np.ndarray:
    """(n, 3) int class per item slot, -1 padding: set size uniform, classes without replacement.

    With ``cover_all`` and n >= number of label sets, every label set occurs at least once.
    """
    sizes = rng.integers(recipe.min_items, recipe.max_items + 1, size=n)
    order = np.argsort(rng.random((n, NUM_CLASSES)), axis=1)[:, :MAX_ITEMS]
    classes = np.where(np.arange(MAX_ITEMS) < sizes[:, None], order, -1)
    sets = all_label_sets(recipe.min_items, recipe.max_items)
    if cover_all and n >= len(sets):
        for i, s in enumerate(sets):
            classes[i] = list(s) + [-1] * (MAX_ITEMS - len(s))
        classes = classes[rng.permutation(n)]
    return classes


def _sample_items(classes: np.ndarray, pools: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(n, 3) int32 source item for each class slot, drawn uniformly from that class's pool."""
    items = np.full(classes.shape, -1, dtype=np.int32)
    for c in range(NUM_CLASSES):
        mask = classes == c
        items[mask] = pools[c][rng.integers(len(pools[c]), size=int(mask.sum()))]
    return items


def _clutter(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8 low-intensity texture: smooth colour noise plus thin lines/boxes."""
    cells = int(rng.integers(3, 7))
    noise = rng.random((cells, cells, 3), dtype=np.float32)
    canvas = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    canvas = np.clip(canvas, 0.0, 1.0) * rng.uniform(25.0, 60.0)
    canvas = np.ascontiguousarray(canvas.astype(np.uint8))
    for _ in range(int(rng.integers(2, 6))):
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(int(v) for v in rng.integers(30, 90, 3))
        if rng.random() < 0.7:
            cv2.line(canvas, p1, p2, colour, 1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(canvas, p1, p2, colour, 1)
    return canvas


def place_boxes(sides: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """Top-left corners (k, 2) of non-intersecting squares with the given sides, or None.

    Sequential placement, each corner uniform over the positions that keep it clear of the
    boxes already placed (exactly what rejection sampling one box at a time would give).
    """
    corners = np.zeros((len(sides), 2), dtype=np.int64)
    for j, side in enumerate(sides):
        free = np.ones((size - side + 1, size - side + 1), dtype=bool)
        for (y0, x0), b in zip(corners[:j], sides[:j], strict=True):
            free[max(0, y0 - side + 1) : y0 + b, max(0, x0 - side + 1) : x0 + b] = False
        candidates = np.flatnonzero(free)
        if len(candidates) == 0:
            return None
        corners[j] = np.divmod(candidates[rng.integers(len(candidates))], free.shape[1])
    return corners


def _render(
    items: np.ndarray,
    source_images: np.ndarray,
    recipe: OutfitRecipe,
    rng: np.random.Generator,
    progress: bool = False,
    desc: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """(n, S, S, 3) uint8 outfit images for the source item indices ``items`` (n, 3), and each
    item's box (n, 3, 4) int16 (top, left, height, width), -1 padding."""
    n, size = len(items), recipe.image_size
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    boxes = np.full((n, MAX_ITEMS, 4), -1, dtype=np.int16)
    counts = (items >= 0).sum(axis=1)
    cluttered = rng.random(n) < recipe.clutter_prob
    # bright tints: every channel in [0.35, 1], the brightest exactly 1
    tints = rng.uniform(0.35, 1.0, size=(n, MAX_ITEMS, 3)).astype(np.float32)
    tints /= tints.max(axis=2, keepdims=True)
    rows = range(n)
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc=desc, unit="img")
    for i in rows:
        canvas = (_clutter(size, rng) if cluttered[i] else images[i]).astype(np.float32)
        k = int(counts[i])
        corners = None
        while corners is None:  # a bad first corner can leave no room: redraw sides and corners
            sides = rng.integers(recipe.min_side, recipe.max_side + 1, size=k)
            corners = place_boxes(sides, size, rng)
        for j in range(k):
            side = int(sides[j])
            interp = cv2.INTER_AREA if side < 28 else cv2.INTER_LINEAR
            grey = cv2.resize(source_images[items[i, j]], (side, side), interpolation=interp)
            alpha = grey.astype(np.float32)[..., None] / 255.0  # (side, side, 1)
            y, x = corners[j]
            boxes[i, j] = (y, x, side, side)
            patch = canvas[y : y + side, x : x + side]
            patch *= 1.0 - alpha
            patch += alpha * (255.0 * tints[i, j])
        images[i] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return images, boxes


def labels_from_classes(classes: np.ndarray) -> np.ndarray:
    labels = np.zeros((len(classes), NUM_CLASSES), dtype=np.uint8)
    rows, slots = np.nonzero(classes >= 0)
    labels[rows, classes[rows, slots]] = 1
    return labels


def _pools(
    recipe: OutfitRecipe, sources: dict
) -> tuple[dict[str, list[np.ndarray]], list[np.random.SeedSequence]]:
    """Each split's per-class source-item pools, and each split's seed, as `recipe` defines them."""
    pool_seed, *split_seeds = np.random.SeedSequence(recipe.seed).spawn(1 + len(SPLIT_NAMES))
    pool_rng = np.random.default_rng(pool_seed)
    train_pool, val_pool = _split_pools(sources["train"][1], recipe.val_fraction, pool_rng)
    gallery_pool, query_pool = _split_pools(sources["t10k"][1], recipe.query_fraction, pool_rng)
    return {"train": train_pool, "val": val_pool, "query": query_pool, "gallery": gallery_pool}, split_seeds


def build_outfits(recipe: OutfitRecipe = OutfitRecipe(), progress: bool = False) -> dict[str, Split]:
    """Build all four splits from ``recipe`` (no cache). Deterministic in ``recipe``."""
    sources = {part: load_fashion_mnist(part) for part in PARTS}
    pools, split_seeds = _pools(recipe, sources)
    splits = {}
    for name, seed in zip(SPLIT_NAMES, split_seeds, strict=True):
        rng = np.random.default_rng(seed)
        n = recipe.size_of(name)
        classes = _sample_classes(n, recipe, rng, cover_all=name == "gallery")
        items = _sample_items(classes, pools[name], rng)
        images, boxes = _render(items, sources[_SOURCE_OF_SPLIT[name]][0], recipe, rng, progress, name)
        splits[name] = Split(
            name, images, labels_from_classes(classes), items, classes.astype(np.int8), boxes
        )
    return splits


LARGE_GALLERY_STREAM = 1  # chunk c of the large gallery draws from the stream (seed, 1, c)
LARGE_GALLERY_CHUNK = 1000  # images per stream, rendered together: small, so any image is cheap to redraw


@functools.lru_cache(maxsize=1)
def _large_gallery_sources(recipe: OutfitRecipe) -> tuple[np.ndarray, list[np.ndarray]]:
    """The Fashion-MNIST test images and the gallery's per-class item pool."""
    sources = {part: load_fashion_mnist(part) for part in PARTS}
    return sources["t10k"][0], _pools(recipe, sources)[0]["gallery"]


@functools.lru_cache(maxsize=4)
def _large_gallery_chunk(chunk: int, recipe: OutfitRecipe) -> Split:
    source_images, pool = _large_gallery_sources(recipe)
    rng = np.random.default_rng([recipe.seed, LARGE_GALLERY_STREAM, chunk])
    classes = _sample_classes(LARGE_GALLERY_CHUNK, recipe, rng, cover_all=False)
    items = _sample_items(classes, pool, rng)
    images, boxes = _render(items, source_images, recipe, rng)
    return Split("large_gallery", images, labels_from_classes(classes), items, classes.astype(np.int8), boxes)


def render_large_gallery(
    ids: np.ndarray, recipe: OutfitRecipe = OutfitRecipe(), progress: bool = False
) -> Split:
    """Images `ids` of the large gallery (up to millions), drawn by the recipe from the gallery's item pool.

    Image i is image i % 1000 of chunk i // 1000, and each chunk has its own random stream, so any
    image is re-rendered from its id alone: a large gallery stores codes only. Its source items are
    the 10k gallery's pool, never the query split's.
    """
    ids = np.asarray(ids, dtype=np.int64)
    chunks = np.unique(ids // LARGE_GALLERY_CHUNK)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="rendering the large gallery", unit="chunk")
    parts = {}
    for chunk in chunks:
        parts[int(chunk)] = _large_gallery_chunk(int(chunk), recipe)
    fields = ("images", "labels", "items", "classes", "boxes")
    rows = [(parts[int(i // LARGE_GALLERY_CHUNK)], int(i % LARGE_GALLERY_CHUNK)) for i in ids]
    return Split("large_gallery", *(np.stack([getattr(part, f)[r] for part, r in rows]) for f in fields))


# --------------------------------------------------------------------------- cache


def recipe_hash(recipe: OutfitRecipe) -> str:
    """Short stable hash of every recipe field."""
    blob = json.dumps(asdict(recipe), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def cache_path(recipe: OutfitRecipe, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the splits of ``recipe`` are cached."""
    directory = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return directory / f"outfits-v{recipe.version}-{recipe_hash(recipe)}.npz"


def validate_split(split: Split, recipe: OutfitRecipe) -> None:
    """Raise ValueError unless ``split`` has the shapes, dtypes and label/item consistency
    that ``recipe`` promises."""
    n, size = recipe.size_of(split.name), recipe.image_size
    expected = {
        "images": ((n, size, size, 3), np.uint8),
        "labels": ((n, NUM_CLASSES), np.uint8),
        "items": ((n, MAX_ITEMS), np.int32),
        "classes": ((n, MAX_ITEMS), np.int8),
        "boxes": ((n, MAX_ITEMS, 4), np.int16),
    }
    for field, (shape, dtype) in expected.items():
        array = getattr(split, field)
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(
                f"{split.name}.{field}: {array.shape} {array.dtype}, expected {shape} {np.dtype(dtype)}"
            )
    if split.labels.max(initial=0) > 1:
        raise ValueError(f"{split.name}.labels is not multi-hot")
    real = split.items >= 0
    if (np.diff(real.astype(np.int8), axis=1) > 0).any():
        raise ValueError(f"{split.name}.items: -1 padding before a real item")
    counts = real.sum(axis=1)
    if not np.array_equal(counts, split.labels.sum(axis=1)):
        raise ValueError(f"{split.name}: item count differs from label count")
    if counts.min() < recipe.min_items or counts.max() > recipe.max_items:
        raise ValueError(f"{split.name}: item count outside [{recipe.min_items}, {recipe.max_items}]")
    if not np.array_equal(split.classes >= 0, real) or not np.array_equal(split.boxes[..., 2] >= 0, real):
        raise ValueError(f"{split.name}: classes or boxes disagree with items")
    if split.items.max() >= _SOURCE_SIZE[_SOURCE_OF_SPLIT[split.name]]:
        raise ValueError(f"{split.name}.items: index beyond the source set")


SPLIT_ARRAYS = ("images", "labels", "items", "classes", "boxes")  # the Split fields stored per split


def _save(splits: dict[str, Split], recipe: OutfitRecipe, path: Path) -> None:
    arrays = {"recipe": np.array(json.dumps(asdict(recipe), sort_keys=True))}
    for name, split in splits.items():
        arrays.update({f"{name}/{field}": getattr(split, field) for field in SPLIT_ARRAYS})
    savez_atomic(path, arrays)


def _load(recipe: OutfitRecipe, path: Path) -> dict[str, Split]:
    with np.load(path, allow_pickle=False) as npz:
        if set(npz.files) != {f"{s}/{f}" for s in SPLIT_NAMES for f in SPLIT_ARRAYS} | {"recipe"}:
            raise ValueError(f"unexpected keys {sorted(npz.files)}")
        if json.loads(str(npz["recipe"])) != asdict(recipe):
            raise ValueError("cached recipe differs")
        splits = {s: Split(s, *(npz[f"{s}/{f}"] for f in SPLIT_ARRAYS)) for s in SPLIT_NAMES}
    for split in splits.values():
        validate_split(split, recipe)
    return splits


# what np.load raises for a truncated, damaged or foreign .npz file
def load_outfits(
    recipe: OutfitRecipe = OutfitRecipe(), cache_dir: str | os.PathLike | None = None, progress: bool = False
) -> dict[str, Split]:
    """The four splits of ``recipe`` keyed "train", "val", "query", "gallery".

    Loaded from the cache when it is valid, else built (seconds) and cached atomically.
    Raises DatasetMissingError when a build is needed and Fashion-MNIST is missing.
    """
    path = cache_path(recipe, cache_dir)
    if path.parent.is_dir() and remove_orphaned_writes(path.parent):  # a writer was killed mid-write
        logger.warning("removed partial writes of a killed process from %s", path.parent)
    if path.exists():
        try:
            return _load(recipe, path)
        except CACHE_ERRORS as err:
            logger.warning("outfit cache %s unusable (%s: %s); rebuilding", path, type(err).__name__, err)
    _check_sources_present()
    logger.info("building Fashion-MNIST outfits (recipe %s) into %s", recipe_hash(recipe), path)
    splits = build_outfits(recipe, progress=progress)
    for split in splits.values():
        validate_split(split, recipe)
    _save(splits, recipe, path)
    return splits


# --------------------------------------------------------------------------- describe / CLI


def _overlap(a: Split, b: Split) -> dict[str, int | bool]:
    shared = np.intersect1d(a.items[a.items >= 0], b.items[b.items >= 0])
    return {"disjoint": len(shared) == 0, "shared_items": len(shared)}


def describe(splits: dict[str, Split]) -> dict:
    """Sizes, label-set-size histograms, per-class counts, gallery label-set coverage and the
    query/gallery and train/val source-item disjointness checks, as plain JSON-able data."""
    out: dict = {"sizes": {n: len(s) for n, s in splits.items()}, "label_set_sizes": {}, "class_counts": {}}
    for name, split in splits.items():
        hist = Counter(split.labels.sum(axis=1).tolist())
        out["label_set_sizes"][name] = {str(k): hist[k] for k in sorted(hist)}
        out["class_counts"][name] = dict(zip(CLASS_NAMES, split.labels.sum(axis=0).tolist(), strict=True))
    if "gallery" in splits:
        out["gallery_distinct_label_sets"] = len(set(label_sets_of(splits["gallery"].labels)))
    out["disjoint"] = {}
    for a, b in (("query", "gallery"), ("train", "val")):
        if a in splits and b in splits:
            out["disjoint"][f"{a}_vs_{b}"] = _overlap(splits[a], splits[b])
    return out
