"""The kinds of data set, one registry: what each has and how it is read.

A data set's kind decides what runs on it: the object protocols, the localization figures and the
app's boxes need `boxes`; the scale rows need a `large_gallery`; `shipped` marks the set whose models
are committed and whose evaluation draws the README's figures (the outfits). An imported set records
its kind in its dataset.json; `read` turns `data import NAME --from KIND` options into a `Source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hashdemo.data import field_sets
from hashdemo.data.errors import DatasetError
from hashdemo.data.sources import Source


@dataclass(frozen=True)
class Kind:
    name: str
    about: str  # one line, for --help and the docs
    boxes: bool  # each image's objects have boxes
    read: Callable[[field_sets.ImportOptions], Source] | None = None  # None: built in, never imported
    shipped: bool = False  # the repo ships its models; its evaluation writes the README's figures
    large_gallery: bool = False  # images drawn by id for the scale rows


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("outfits", "the Fashion-MNIST outfits (built in)", True, shipped=True, large_gallery=True),
        Kind(
            "folder",
            "your own folder: --csv FILE or --list FILE --classes FILE",
            False,
            field_sets.read_folder,
        ),
        Kind(
            "cifar10",
            "torchvision's CIFAR-10 batches, --protocol cifar10|cifar10-1|cifar10-2",
            False,
            field_sets.read_cifar10,
        ),
        Kind(
            "lists",
            "HashNet list files train.txt, test.txt, database.txt (NUS-WIDE, MS-COCO, "
            "ImageNet-100, MIRFLICKR)",
            False,
            field_sets.read_lists,
        ),
        Kind("voc2007", "Pascal VOC 2007 (VOCdevkit), with its object boxes", True, field_sets.read_voc2007),
        Kind(
            "coco", "MS-COCO instances JSON (pycocotools), with its object boxes", True, field_sets.read_coco
        ),
    )
}
DEFAULT = next(kind for kind in KINDS.values() if kind.shipped).name  # what --dataset defaults to
IMPORTABLE = tuple(name for name, kind in KINDS.items() if kind.read is not None)


def dataset_flag(name: str) -> str:
    """The command-line flag naming a data set, empty for the default one."""
    return "" if name == DEFAULT else f" --dataset {name}"


def kind_of(name: str) -> Kind:
    if name not in KINDS:
        raise DatasetError(f"No data-set kind {name!r}; the kinds are {', '.join(IMPORTABLE)}.")
    return KINDS[name]


def read_source(kind: str, options: field_sets.ImportOptions) -> Source:
    """The rows of a data set of `kind` (an importable one), read from `options`."""
    reader = kind_of(kind).read
    if reader is None:
        raise DatasetError(
            f"{kind} is built in, not imported; the kinds to import are {', '.join(IMPORTABLE)}."
        )
    return reader(options)
