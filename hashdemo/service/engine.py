"""The one object the app talks to: both shipped models, the encoded gallery, and the searches.

Everything here is read-only after `Engine.load`, so concurrent requests share no mutable state.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hashdemo.checks import number_in_range
from hashdemo.data.images import load_image
from hashdemo.data.imported import dataset_dir, load_dataset
from hashdemo.data.label_ops import OPERATORS, compose_chain, jaccard, label_route_ranking
from hashdemo.data.outfits import CLASS_NAMES, OutfitRecipe, label_text, load_outfits, recipe_hash
from hashdemo.evaluation.hierarchical import activation_orders, random_orders
from hashdemo.evaluation.localization import Items, attended_slots
from hashdemo.model.cam import Attention, attend_code, bit_cams, normalise, upsample
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint, sha256_of
from hashdemo.model.code_ops import chain_bits
from hashdemo.model.networks import Encoded, HashNet, signs_of
from hashdemo.retrieval.gallery_codes import load_codes, save_codes
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.metrics import relevance
from hashdemo.retrieval.novelty import VAL_QUANTILE, detail, detail_threshold, novelty, unit_rows
from hashdemo.storage.locations import CHECKPOINT_DIR, default_cache_dir

log = logging.getLogger(__name__)
# Used until the evaluation has chosen theta, L and K on the val split.
FALLBACK_PARAMS = {"theta": 0.4, "L": 24, "K": 200}


@dataclass(frozen=True)
class Query:
    """A query image as every later action on it needs it (a new theta, L, K or box; a click)."""

    image: np.ndarray  # (S, S, 3) uint8, the models' input
    labels: np.ndarray | None  # (n_classes,) multi-hot for a dataset image, None for any other
    encoded: Encoded  # H_g, H_l and the Conv7 maps (batch of one)


@dataclass(frozen=True)
class Ranking:
    """One result row: gallery ids best first, their distances, and how each relates to the query."""

    ids: np.ndarray  # (k,) gallery ids
    distances: np.ndarray  # (k,) Hamming distances that ordered them
    relevant: np.ndarray | None  # (k,) bool: shares a label (search) or is exactly T (compose); None: unknown
    global_distances: np.ndarray | None = None  # (k,) re-rank only: the global distance breaking ties
    jaccard: np.ndarray | None = None  # (k,) compose only: Jaccard of each result's set with T

    def precision_at(self, k: int) -> float | None:
        """Share of relevant results among the first k, None when relevance is unknown."""
        return None if self.relevant is None else float(np.mean(self.relevant[:k]))

    def top(self, k: int) -> Ranking:
        cut = slice(0, k)
        return Ranking(*(None if v is None else v[cut] for v in vars(self).values()))


@dataclass(frozen=True)
class Comparison:
    """Every method's top results for one query, side by side (COMPARED names them, in order)."""

    rows: dict[str, Ranking]
    attended: int | None  # the class of the item the CAM region sits on; None: the image's items are unknown
    holds_attended: dict[str, np.ndarray | None]  # per row, (k,) bool: the result holds that class


COMPARED = ("global", "local_full", "hier_cam", "hier_random", "hier_activation", "hier_box")
COMPARED_RANDOM_SEED = 0  # hier_random in the app: one seeded draw (the evaluation averages five)


@dataclass(frozen=True)
class SearchAnswer:
    """Everything one search shows: the attention, both rows and the out-of-domain check."""

    query: Query
    attention: Attention  # of the CAM region, or of the user's box when one is given
    cam_selected: np.ndarray  # (L,) the bits the CAM region selects (equal to attention.selected unboxed)
    coarse: Ranking  # the global code alone, top K by (global distance, id)
    reranked: Ranking  # the same K re-ranked on the L selected local bits (eq. 2.5)
    novelty: float  # the query's out-of-domain score
    out_of_domain: bool  # novelty above the cut-off calibrated on val, or the picture too smooth
    smooth: bool = False  # less fine detail than 99% of val images: no items in the picture

    @property
    def global_bits(self) -> np.ndarray:
        return self.query.encoded.global_bits[0]

    @property
    def local_bits(self) -> np.ndarray:
        return self.query.encoded.local_bits[0]


@dataclass(frozen=True)
class ComposeAnswer:
    """A composed query's answer: the sets involved, the composed code's reading and both rows."""

    operators: tuple[str, ...]
    input_labels: tuple[np.ndarray | None, ...]  # each slot's labels, None when not a dataset image
    target: np.ndarray | None  # T, None when an input's labels are unknown
    predicted_probs: np.ndarray  # (n_classes,) the code classifier on the composed code
    composed: Ranking  # the gallery by distance to the composed code
    bitwise: Ranking  # the bitwise OR / AND / AND-NOT baseline
    label_route: Ranking | None = None  # predicted labels, the set operations, a label search
    sources: tuple[tuple[str, int] | None, ...] = ()  # each slot's (split, id), None when not a dataset image

    def exact_in_top(self, ranking: Ranking, k: int = 10) -> int | None:
        return None if ranking.relevant is None else int(ranking.relevant[:k].sum())


@dataclass(frozen=True)
class WhyAnswer:
    """A re-ranked result explained: its own attention region and the selected bits it shares."""

    gallery_id: int
    labels: np.ndarray
    region: np.ndarray  # (S, S) bool, the result's own attention region
    agree: list[int]  # the query's selected bits on which the result has the query's value
    selected: int  # L
    local_distance: int  # eq. 2.5 distance on the selected bits (L - len(agree))
    local_agree: int  # bits of the whole local code on which the two agree
    local_bits: int  # C
    global_distance: int  # Hamming distance of the global codes
    relevant: bool | None  # shares a label with the query (None: the query's labels are unknown)
    shared: np.ndarray | None  # the labels both hold


class Engine:
    """Both checkpoints + gallery codes + indexes; `search` and `compose` are what the UI calls."""

    def __init__(
        self,
        hier: Checkpoint,
        dcoh: Checkpoint,
        gallery_images: np.ndarray,
        gallery_labels: np.ndarray,
        hier_codes: Encoded,
        dcoh_codes: Encoded,
        examples: dict[str, tuple[np.ndarray, np.ndarray]],
        indexes: dict | None = None,
        classes: tuple[str, ...] = CLASS_NAMES,
        dataset: str = "outfits",
        novelty_threshold: float | None = None,
        query_split: tuple[np.ndarray, np.ndarray] | None = None,
        smooth_below: float | None = None,
        items: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        """`indexes`: "hier_global", "hier_local" and "dcoh" (Milvus, say); None: in-process indexes.
        `classes` name the label columns; `novelty_threshold` stands in for the evaluation's cut-off;
        `smooth_below` is the detail under which a picture holds no items (`detail_threshold` of val).
        `items`: the recorded item classes (N, 3) and boxes (N, 3, 3) of the query split, then the gallery."""
        self.classes, self.dataset = tuple(classes), dataset
        self.max_labels = int(gallery_labels.sum(axis=1).max())  # the largest label set a gallery image has
        self.hier, self.dcoh = hier, dcoh
        self.gallery_images, self.gallery_labels = gallery_images, gallery_labels
        self.hier_codes, self.dcoh_codes = hier_codes, dcoh_codes
        self.cam_weights = hier.model.cam_weights().numpy()  # (H, C)
        indexes = indexes or {
            "hier_global": HammingIndex(hier_codes.global_bits),
            "hier_local": HammingIndex(hier_codes.local_bits),
            "dcoh": HammingIndex(dcoh_codes.global_bits),
        }
        self.global_index, self.local_index = indexes["hier_global"], indexes["hier_local"]
        self.dcoh_index = indexes["dcoh"]
        test = hier.metrics.get("test", {})
        self.gallery_unit = unit_rows(hier_codes.pooled)  # for the out-of-domain score
        self.novelty_threshold = test.get("out_of_domain", {}).get("threshold", novelty_threshold)
        self.smooth_below = smooth_below
        self.defaults = {key: test.get(key, value) for key, value in FALLBACK_PARAMS.items()}
        # labels of images that are known dataset images, by pixel digest (the query split and the gallery)
        self.examples = examples
        self.query_images, self.query_labels = query_split or (
            np.stack([img for img, _ in examples.values()]),
            np.stack([lab for _, lab in examples.values()]),
        )
        self._known, self._items, self._sources = {}, {}, {}
        for split, images, labels in (
            ("query", self.query_images, self.query_labels),
            ("gallery", gallery_images, gallery_labels),
        ):
            for index, (image, lab) in enumerate(zip(images, labels, strict=True)):
                digest = hashlib.sha1(image.tobytes()).digest()
                self._known[digest] = lab
                self._sources.setdefault(digest, (split, index))
        if items is not None:
            images = np.concatenate([self.query_images, gallery_images])
            self._items = {
                hashlib.sha1(i.tobytes()).digest(): (c, b) for i, c, b in zip(images, *items, strict=True)
            }

    @classmethod
    def load(
        cls,
        checkpoints: Path = CHECKPOINT_DIR,
        cache_dir: Path | None = None,
        progress: Callable[[float, str], None] | None = None,
        n_examples: int = 12,
        milvus_uri: str | None = None,
        milvus_progress: Callable[[str, int, int], None] | None = None,
        dataset: str | None = None,
    ) -> Engine:
        """Load both checkpoints and the gallery; gallery codes are cached by checkpoint digest.

        `dataset` (default: HASHDEMO_DATASET, else the outfits) names an imported folder: its checkpoints,
        gallery, query examples and classes. With `milvus_uri` (default: HASHDEMO_MILVUS_URI) the gallery
        is searched in Milvus, its collections built on first use; unset, in process."""
        report = progress or (lambda fraction, message: log.info("%3.0f%% %s", 100 * fraction, message))
        source = DataSource.open(
            dataset or os.environ.get("HASHDEMO_DATASET") or "outfits", checkpoints, cache_dir
        )
        report(0.0, f"loading checkpoints ({source.checkpoints})")
        hier, dcoh = (source.checkpoint(model) for model in ("hier", "dcoh"))
        report(0.1, f"loading the {source.name} dataset")
        splits = source.splits()
        gallery = splits["gallery"]
        codes_path = source.cache / f"gallery-codes-{source.key(('hier', 'dcoh'))}.npz"
        cached = load_codes(codes_path, ("hier", "dcoh"))
        if cached is None:
            report(0.4, "encoding the gallery with both models (first start only)")
            codes = {"hier": hier.model.encode(gallery.images), "dcoh": dcoh.model.encode(gallery.images)}
            save_codes(codes_path, codes)
        else:
            codes = cached[0]
        report(0.9, "building the indexes")
        indexes = None
        milvus_uri = milvus_uri or os.environ.get("HASHDEMO_MILVUS_URI")
        if milvus_uri:
            from hashdemo.retrieval.milvus import milvus_indexes  # pymilvus only when asked for

            report(0.9, f"opening the gallery in Milvus at {milvus_uri} (built on first use)")
            hier_key, dcoh_key = (source.key((name,)) for name in ("hier", "dcoh"))
            indexes = milvus_indexes(
                milvus_uri,
                {
                    "hier_global": (hier_key, codes["hier"].global_bits),
                    "hier_local": (hier_key, codes["hier"].local_bits),
                    "dcoh": (dcoh_key, codes["dcoh"].global_bits),
                },
                gallery.labels,
                milvus_progress,
            )
        query = splits["query"]
        examples = {
            f"query-{i}": (query.images[i], query.labels[i]) for i in range(min(n_examples, len(query)))
        }
        # an imported set evaluated or not: its own val split calibrates the out-of-domain cut-off
        val_pooled = hier.model.encode(splits["val"].images).pooled if source.name != "outfits" else None
        threshold = None if val_pooled is None else val_threshold(val_pooled, codes["hier"].pooled)
        engine = cls(
            hier,
            dcoh,
            gallery.images,
            gallery.labels,
            codes["hier"],
            codes["dcoh"],
            examples,
            indexes,
            source.classes,
            source.name,
            threshold,
            (query.images, query.labels),
            detail_threshold(splits["val"].images),
            (np.concatenate([query.classes, gallery.classes]), np.concatenate([query.boxes, gallery.boxes])),
        )
        report(1.0, "ready")
        return engine

    # ------------------------------------------------------------------ queries

    def check_params(self, theta: object, top_l: object, n_coarse: object) -> tuple[float, int, int]:
        """theta, L and K as numbers in range, or a ValueError naming the valid range (never clamped)."""
        return (
            number_in_range("theta", theta, 0.0, 1.0),
            number_in_range(
                "L (selected local bits)", top_l, 1, self.hier_codes.local_bits.shape[1], integer=True
            ),
            number_in_range("K (coarse candidates)", n_coarse, 1, len(self.gallery_labels), integer=True),
        )

    @property
    def image_size(self) -> int:
        """The side of the images the models take, from the checkpoint's config."""
        return self.hier.config.image_size

    def read_image(self, source) -> np.ndarray:
        """A user's image file as the models' input, or an ImageError with a sentence."""
        return load_image(source, self.image_size)

    @property
    def data_description(self) -> str:
        """What the models were trained on, in a phrase ("outfits", "images of NAME")."""
        return "outfits" if self.dataset == "outfits" else f"images of {self.dataset}"

    def picture(self, split: str, index: object) -> tuple[np.ndarray, np.ndarray]:
        """A query-split or gallery image and its labels by id, or a ValueError saying the valid range."""
        images, labels = {
            "query": (self.query_images, self.query_labels),
            "gallery": (self.gallery_images, self.gallery_labels),
        }.get(split, (None, None))
        if images is None:
            raise ValueError(f"Pick an image from the query split or the gallery (got {split!r}).")
        index = number_in_range(f"A {split} id", index, 0, len(images) - 1, integer=True)
        return images[index], labels[index]

    def presets(self, search_pairs: int = 300, tried: int = 40) -> dict[str, tuple[tuple[str, ...], tuple]]:
        """One composition per operator and one chain, of query-split images, whose target set T the
        gallery holds: of the first `tried` such tuples, the one whose composed code finds the most
        images with exactly T in its top 10. {name: (operators, query ids)}."""
        held = {row.tobytes() for row in self.gallery_labels}
        labels, found = self.query_labels[:search_pairs], {}
        for operators in [(op,) for op in OPERATORS] + [("union", "difference")]:
            candidates = []
            for ids in _index_tuples(len(labels), len(operators) + 1):
                target = self.target_labels(operators, [labels[i] for i in ids]).astype(np.uint8)
                if target.any() and target.tobytes() in held:
                    candidates.append(ids)
                if len(candidates) == tried:
                    break

            def exact_in_top_10(ids, operators=operators) -> int:
                images = [self.query_images[i] for i in ids]
                then = None if len(operators) == 1 else operators[1]
                answer = self.compose(
                    images[0], images[1], operators[0], k=10, image_c=images[2] if then else None, then=then
                )
                return answer.exact_in_top(answer.composed) or 0

            if candidates:
                name = operators[0] if len(operators) == 1 else f"({operators[0]}) then {operators[1]}"
                found[name] = (operators, max(candidates, key=exact_in_top_10))
        return found

    def label_text(self, labels: np.ndarray) -> str:
        """This dataset's class names of one multi-hot row."""
        return label_text(labels, self.classes)

    def source_of(self, image: np.ndarray) -> tuple[str, int] | None:
        """(split, id) of a dataset image (the query split first), None for any other image."""
        return self._sources.get(hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest())

    def known_labels(self, image: np.ndarray) -> np.ndarray | None:
        """The label set of a dataset image (an example or a gallery image), None for others."""
        return self._known.get(hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest())

    def encode_hier(self, image: np.ndarray) -> Encoded:
        """The hierarchical model's codes and Conv7 maps for one (S, S, 3) uint8 image."""
        return self.hier.model.encode(image[None], with_conv7=True)

    def attention(
        self, encoded: Encoded, theta: float, top_l: int, region: np.ndarray | None = None
    ) -> Attention:
        """SPEC 1 steps 1-3 for one query; a given `region` (S, S) replaces the CAM region."""
        return attend_code(
            encoded.conv7[0], self.cam_weights, encoded.global_bits[0], theta, top_l, region=region
        )

    def novelty(self, encoded: Encoded) -> tuple[float, bool]:
        """The query's out-of-domain score, and whether it passes the cut-off calibrated on val."""
        score = float(novelty(encoded.pooled, self.gallery_unit)[0])
        return score, self.novelty_threshold is not None and score > self.novelty_threshold

    def too_smooth(self, image: np.ndarray) -> bool:
        """Whether the picture has less fine detail than 99% of val images (no items in it)."""
        return self.smooth_below is not None and float(detail(image[None])[0]) < self.smooth_below

    def bit_cam(self, encoded: Encoded, bit: int) -> np.ndarray:
        """Global bit j's own CAM M_j, signed by the bit's value, normalised to [0, 1] at image size."""
        sign = np.array([1.0 if encoded.global_bits[0, bit] else -1.0])
        cam = bit_cams(encoded.conv7[0], self.cam_weights[bit : bit + 1], sign)
        return normalise(upsample(cam, self.image_size))[0]

    def make_query(self, image: np.ndarray) -> Query:
        """Encode one (S, S, 3) uint8 image and look up its labels (known for dataset images)."""
        return Query(image, self.known_labels(image), self.encode_hier(image))

    def search(
        self,
        query: Query | np.ndarray,
        theta: float,
        top_l: int,
        n_coarse: int,
        box: tuple[int, int, int, int] | None = None,
    ) -> SearchAnswer:
        """One search: attention (or the user's box as the region), bit selection, the two-level search
        and the novelty check. `query` is a Query or a raw image (encoded here)."""
        query = query if isinstance(query, Query) else self.make_query(query)
        encoded, n_coarse = query.encoded, min(n_coarse, len(self.gallery_labels))
        cam = self.attention(encoded, theta, top_l)
        att = cam if box is None else self.attention(encoded, theta, top_l, box_mask(box, self.image_size))
        ids, local_d, global_d = hierarchical_search(
            self.global_index,
            self.local_index,
            encoded.global_bits,
            encoded.local_bits,
            att.selected[None],
            n_coarse,
        )
        # the re-ranked ids are exactly the coarse top-K; the coarse order is theirs by (global distance, id)
        coarse = np.lexsort((ids[0], global_d[0]))
        score, far = self.novelty(encoded)
        smooth = self.too_smooth(query.image)
        return SearchAnswer(
            query,
            att,
            cam.selected,
            Ranking(ids[0][coarse], global_d[0][coarse], self._shares_a_label(query.labels, ids[0][coarse])),
            Ranking(ids[0], local_d[0], self._shares_a_label(query.labels, ids[0]), global_d[0]),
            score,
            far or smooth,
            smooth,
        )

    def compare(
        self,
        query: Query,
        theta: float,
        top_l: int,
        n_coarse: int,
        box: tuple[int, int, int, int] | None = None,
        k: int = 10,
    ) -> Comparison:
        """Every method's top k for one query: the global code, the full local code, and the two-level
        search on the CAM's L bits, L random bits, the L most active maps and (boxed) the box's L bits."""
        encoded, n_coarse = query.encoded, min(n_coarse, len(self.gallery_labels))
        cam = self.attention(encoded, theta, top_l)
        selections = {
            "hier_cam": cam.selected,
            "hier_random": random_orders(1, encoded.local_bits.shape[1], COMPARED_RANDOM_SEED)[0, :top_l],
            "hier_activation": activation_orders(encoded)[0, :top_l],
        }
        if box is not None:
            selections["hier_box"] = self.attention(
                encoded, theta, top_l, box_mask(box, self.image_size)
            ).selected
        rows = {}
        for name, index, bits in (
            ("global", self.global_index, encoded.global_bits),
            ("local_full", self.local_index, encoded.local_bits),
        ):
            distances, ids = index.search(bits, k)
            rows[name] = Ranking(ids[0], distances[0], self._shares_a_label(query.labels, ids[0]))
        for name, selected in selections.items():
            ids, local_d, global_d = hierarchical_search(
                self.global_index,
                self.local_index,
                encoded.global_bits,
                encoded.local_bits,
                selected[None],
                n_coarse,
            )
            ids = ids[0, :k]
            rows[name] = Ranking(
                ids, local_d[0, :k], self._shares_a_label(query.labels, ids), global_d[0, :k]
            )
        attended = self.attended_class(query.image, cam.region)
        holds = {
            name: None if attended is None else self.gallery_labels[row.ids, attended].astype(bool)
            for name, row in rows.items()
        }
        return Comparison(rows, attended, holds)

    def attended_class(self, image: np.ndarray, region: np.ndarray) -> int | None:
        """The class of the item the attention region sits on (docs/results.md's attended item), for a
        dataset image with recorded items; None for any other image."""
        known = self._items.get(hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest())
        if known is None or (known[0] < 0).all():
            return None
        classes, boxes = (np.asarray(a, np.int64)[None] for a in known)
        slot = attended_slots(Items(np.zeros(1, np.int64), classes, boxes), region[None])[0]
        return int(classes[0, slot])

    def _shares_a_label(self, labels: np.ndarray | None, ids: np.ndarray) -> np.ndarray | None:
        return None if labels is None else relevance(labels[None], self.gallery_labels[ids])[0]

    def why(self, query: Query, gallery_id: int, theta: float, top_l: int) -> WhyAnswer:
        """A result's own attention region, and which of the query's selected bits it shares."""
        gallery_id = int(gallery_id)
        result = self.encode_hier(self.gallery_images[gallery_id])
        selected = self.attention(query.encoded, theta, top_l).selected
        agree = [int(c) for c in selected if result.local_bits[0, c] == query.encoded.local_bits[0, c]]
        labels = self.gallery_labels[gallery_id]
        shared = None if query.labels is None else labels & query.labels
        return WhyAnswer(
            gallery_id,
            labels,
            self.attention(result, theta, top_l).region,
            agree,
            len(selected),
            len(selected) - len(agree),
            int((result.local_bits[0] == query.encoded.local_bits[0]).sum()),
            int(result.local_bits.shape[1]),
            int((result.global_bits[0] != query.encoded.global_bits[0]).sum()),
            None if shared is None else bool(shared.any()),
            shared,
        )

    def compose(
        self,
        image_a: np.ndarray,
        image_b: np.ndarray,
        operator: str,
        k: int = 20,
        image_c: np.ndarray | None = None,
        then: str | None = None,
    ) -> ComposeAnswer:
        """DCOH: the operator on the two codes, then Hamming search of the gallery's real codes.

        With `image_c` and `then`, a chain (A op B) then C: the learned operator on the first operator's
        (binarised) output, as eq. 3.6 does for difference; the bitwise baseline likewise.
        """
        chain = (operator,) if then is None else (operator, then)
        for name in chain:
            if name not in OPERATORS:
                raise ValueError(f"unknown operator {name!r}; choose one of {', '.join(OPERATORS)}")
        if (image_c is None) != (then is None):
            raise ValueError("A chain needs both an image in slot C and a second operator.")
        images = [image_a, image_b] if image_c is None else [image_a, image_b, image_c]
        labels = tuple(self.known_labels(image) for image in images)
        target = None if any(lab is None for lab in labels) else self.target_labels(chain, list(labels))
        encoded = self.dcoh.model.encode(np.stack(images))
        operands = [encoded.global_bits[i : i + 1] for i in range(len(images))]  # (1, K) each
        rows = []
        for operators in (self.dcoh.operators, None):  # the learned operators, then bitwise
            distances, ids = self.dcoh_index.search(chain_bits(operators, chain, operands), k)
            rows.append(self._against_target(target, ids[0], distances[0]))
        route, similarity = label_route_ranking(
            chain,
            [encoded.label_probs[i : i + 1] for i in range(len(images))],
            self.dcoh_codes.label_probs,
            k,
        )
        # its "distance": the Jaccard distance of a result's predicted labels to the composed prediction
        rows.append(self._against_target(target, route[0], 1.0 - similarity[0]))
        probs = _classifier_probs(self.dcoh.model, chain_bits(self.dcoh.operators, chain, operands))
        sources = tuple(self.source_of(image) for image in images)
        return ComposeAnswer(chain, labels, target, probs, *rows, sources)

    def _against_target(self, target: np.ndarray | None, ids: np.ndarray, distances: np.ndarray) -> Ranking:
        if target is None:
            return Ranking(ids, distances, None)
        labels = self.gallery_labels[ids]
        exact = relevance(target[None], labels, exact=True)[0]
        return Ranking(ids, distances, exact, jaccard=jaccard(labels, target[None])[:, 0])

    @staticmethod
    def target_labels(operators: tuple[str, ...], labels: list[np.ndarray]) -> np.ndarray:
        """The label set of ((l_0 op_1 l_1) op_2 l_2)..."""
        return compose_chain(operators, [lab[None] for lab in labels])[0]


def _index_tuples(n: int, width: int, limit: int = 4000):
    """Distinct id tuples (pairs, triples) in a fixed order, at most `limit` of them."""
    rng = np.random.default_rng(0)
    for _ in range(limit):
        ids = tuple(int(i) for i in rng.choice(n, width, replace=False))
        yield ids


def box_mask(box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(size, size) bool: True inside the box (top, left, bottom, right), bounds inclusive."""
    top, left, bottom, right = box
    mask = np.zeros((size, size), bool)
    mask[top : bottom + 1, left : right + 1] = True
    return mask


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


@torch.no_grad()
def _classifier_probs(model: HashNet, bits: np.ndarray) -> np.ndarray:
    """Label probabilities the code classifier gives a (1, K) 0/1 code."""
    return torch.sigmoid(model.classifier(signs_of(bits)))[0].numpy()
