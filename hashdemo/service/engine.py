"""The one object both faces talk to: the data set's models, the encoded gallery, and the searches
(search, compare, why, compose). Its answers are in `answers`, its loading in `loading`, the dataset
images it recognises in `known_images`.

Everything here is read-only after `Engine.load`, so concurrent requests share no mutable state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hashdemo.checks import number_in_range
from hashdemo.data.images import load_image
from hashdemo.data.label_ops import OPERATORS, jaccard, label_route_ranking
from hashdemo.data.split import label_text
from hashdemo.model.cam import (
    ATTENTION_SIZE,
    Attention,
    attend_code,
    bit_cams,
    maps_region,
    normalise,
    upsample,
)
from hashdemo.model.checkpoints import Checkpoint
from hashdemo.model.code_ops import chain_bits
from hashdemo.model.networks import Encoded, HashNet, signs_of
from hashdemo.model.registry import PEERS
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.metrics import mean_average_precision, precision_at_k, relevance
from hashdemo.retrieval.novelty import detail, novelty, unit_rows
from hashdemo.retrieval.selection import activation_orders, random_orders
from hashdemo.service.answers import (
    Comparison,
    ComposeAnswer,
    Query,
    Ranking,
    RowFigures,
    SearchAnswer,
    WhyAnswer,
)
from hashdemo.service.known_images import KnownImages
from hashdemo.service.loading import EngineParts, MilvusProgress, Report, engine_parts, log_progress
from hashdemo.service.presets import compose_presets, target_labels
from hashdemo.service.query_split import QuerySplit
from hashdemo.service.relevance import DEFAULT_RELEVANCE, Judged, relevance_rule

COMPARED_RANDOM_SEED = 0  # hier_random in the app: one seeded draw (the evaluation averages five)
SWEPT_L = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # a query's curve against L (up to C)
SWEPT_THETA = tuple(round(0.1 * i, 1) for i in range(10))  # and against theta


class Engine:
    """Both checkpoints + gallery codes + indexes; `search` and `compose` are what the UI calls."""

    def __init__(self, parts: EngineParts):
        """`parts.models`: the data set's trained models, the hierarchical one ready, the rest (DCOH, the
        field's one-level peers of the side-by-side view) loaded and encoded on first use.
        `parts.indexes`: "hier_global", "hier_local" and "dcoh" (Milvus, say); None: in-process indexes.
        `parts.novelty_threshold` stands in for the evaluation's out-of-domain cut-off; `smooth_below` is
        the detail under which a picture holds no items (`detail_threshold` of val). `items`: the
        recorded item classes (N, K) and boxes (N, K, 4) of the query split, then the gallery.
        `defaults`: theta, L and K as chosen on the dataset's val split (`loading.chosen_params`)."""
        self.models, self.source = parts.models, parts.source
        self.classes, self.dataset = tuple(parts.source.classes), parts.source.name
        gallery_images, gallery_labels = parts.gallery_images, parts.gallery_labels
        self.max_labels = int(gallery_labels.sum(axis=1).max())  # the largest label set a gallery image has
        self.hier = hier = self.models.checkpoint("hier")
        self.gallery_images, self.gallery_labels = gallery_images, gallery_labels
        self.hier_codes = self.models.codes("hier")
        self.cam_weights = hier.model.cam_weights().numpy()  # (H, C)
        self._milvus = parts.indexes
        indexes = parts.indexes or {
            "hier_global": self.models.index("hier", "global_bits"),
            "hier_local": self.models.index("hier", "local_bits"),
        }
        self.global_index, self.local_index = indexes["hier_global"], indexes["hier_local"]
        test = hier.metrics.get("test", {})
        self.gallery_unit = unit_rows(self.hier_codes.pooled)  # for the out-of-domain score
        self.novelty_threshold = test.get("out_of_domain", {}).get("threshold", parts.novelty_threshold)
        self.smooth_below = parts.smooth_below
        self.defaults = parts.defaults
        self.examples = parts.examples
        self.query_images, self.query_labels = parts.query_split
        # the query split and the gallery by pixel digest: a picked dataset image's labels and items
        self.known = KnownImages(
            [("query", self.query_images, self.query_labels), ("gallery", gallery_images, gallery_labels)],
            parts.items,
        )
        self.query_split = QuerySplit(self)  # the split as a whole, encoded when first browsed

    @property
    def dcoh(self) -> Checkpoint:
        return self.models.checkpoint("dcoh")

    @property
    def dcoh_codes(self) -> Encoded:
        """DCOH's h(x) codes of the gallery, encoded at the first composition."""
        return self.models.codes("dcoh")

    @property
    def dcoh_index(self):
        return self._milvus["dcoh"] if self._milvus else self.models.index("dcoh")

    @property
    def peers(self) -> dict[str, Checkpoint]:
        """The field's one-level models the data set has trained (the side-by-side view's rows)."""
        return {name: self.models.checkpoint(name) for name in PEERS if name in self.models.trained}

    @property
    def peer_codes(self) -> dict[str, np.ndarray]:
        return {name: self.models.codes(name).global_bits for name in self.peers}

    @property
    def peer_indexes(self) -> dict[str, HammingIndex]:
        return {name: self.models.index(name) for name in self.peers}

    @classmethod
    def load(
        cls,
        checkpoints: Path | None = None,
        cache_dir: Path | None = None,
        progress: Report | None = None,
        n_examples: int = 12,
        milvus_uri: str | None = None,
        milvus_progress: MilvusProgress | None = None,
        dataset: str | None = None,
    ) -> Engine:
        """Load both checkpoints and the gallery; gallery codes are cached by checkpoint digest.

        `dataset` (default: HASHDEMO_DATASET, else the outfits) names an imported folder: its checkpoints
        (unless `checkpoints` names others),
        gallery, query examples and classes. With `milvus_uri` (default: HASHDEMO_MILVUS_URI) the gallery
        is searched in Milvus, its collections built on first use; unset, in process."""
        report = progress or log_progress
        parts = engine_parts(checkpoints, cache_dir, report, n_examples, milvus_uri, milvus_progress, dataset)
        engine = cls(parts)
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
        return self.source.phrase

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
        return compose_presets(
            self.gallery_labels, self.query_images, self.query_labels, self.compose, search_pairs, tried
        )

    def label_text(self, labels: np.ndarray) -> str:
        """This dataset's class names of one multi-hot row."""
        return label_text(labels, self.classes)

    def encode_hier(self, image: np.ndarray) -> Encoded:
        """The hierarchical model's codes and Conv7 maps for one (S, S, 3) uint8 image."""
        return self.hier.model.encode(image[None], with_conv7=True)

    def attention(
        self, encoded: Encoded, theta: float, top_l: int, region: np.ndarray | None = None
    ) -> Attention:
        """Method 1's steps 1-3 (docs/methods.md) for one query; a given `region` (S, S) replaces the
        CAM region."""
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
        return Query(image, self.known.labels(image), self.encode_hier(image))

    def search(
        self,
        query: Query | np.ndarray,
        theta: float,
        top_l: int,
        n_coarse: int,
        box: tuple[int, int, int, int] | None = None,
        relevance: str = DEFAULT_RELEVANCE,
    ) -> SearchAnswer:
        """One search: attention (or the user's box as the region), bit selection, the two-level search
        and the novelty check; both rows judged by the `relevance` rule (service.relevance). `query` is a
        Query or a raw image (encoded here)."""
        rule = relevance_rule(relevance)
        query = query if isinstance(query, Query) else self.make_query(query)
        encoded, n_coarse = query.encoded, min(n_coarse, len(self.gallery_labels))
        cam = self.attention(encoded, theta, top_l)
        boxed = None if box is None else box_mask(box, self.image_size)
        att = cam if box is None else self.attention(encoded, theta, top_l, boxed)
        ids, local_d, global_d = self._two_level(encoded, att.selected, n_coarse)
        # the re-ranked ids are exactly the coarse top-K; the coarse order is theirs by (global distance, id)
        coarse = np.lexsort((ids, global_d))
        score, far = self.novelty(encoded)
        smooth = self.too_smooth(query.image)
        judged = Judged(
            query.labels,
            self.known.attended_class(query.image, cam.region),
            None if boxed is None else self.known.attended_class(query.image, boxed),
            len(self.classes),
        )
        wanted = rule.wanted(judged)
        return SearchAnswer(
            query,
            att,
            cam.selected,
            Ranking(ids[coarse], global_d[coarse], self._relevant(wanted, ids[coarse], rule.exact)),
            Ranking(ids, local_d, self._relevant(wanted, ids, rule.exact), global_d),
            score,
            far or smooth,
            smooth,
            relevance,
            wanted,
            judged.attended,
        )

    def answer_figures(self, answer: SearchAnswer, ranking: Ranking) -> RowFigures | None:
        """A row of `answer` scored by the answer's own relevance rule (None when it cannot judge)."""
        return self.row_figures(ranking, answer.wanted, exact=relevance_rule(answer.relevance).exact)

    def _two_level(
        self, encoded: Encoded, selected: np.ndarray, n_coarse: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The coarse top-K on the global code re-ranked on the `selected` local bits (ids, local and
        global distances, each (K,))."""
        ids, local_d, global_d = hierarchical_search(
            self.global_index,
            self.local_index,
            encoded.global_bits,
            encoded.local_bits,
            selected[None],
            n_coarse,
        )
        return ids[0], local_d[0], global_d[0]

    def compare(
        self,
        query: Query,
        theta: float,
        top_l: int,
        n_coarse: int,
        box: tuple[int, int, int, int] | None = None,
        k: int = 10,
    ) -> Comparison:
        """Every method's top k for one query: the global code, the full local code, each trained peer's
        one-level code, and the two-level search on the CAM's L bits, L random bits, the L most active
        maps and (boxed) the box's L bits."""
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
        for name, checkpoint in self.peers.items():  # each encodes the query with its own network
            bits = checkpoint.model.encode(query.image[None]).global_bits
            distances, ids = self.models.index(name).search(bits, k)
            rows[name] = Ranking(ids[0], distances[0], self._shares_a_label(query.labels, ids[0]))
        for name, selected in selections.items():
            ids, local_d, global_d = (a[:k] for a in self._two_level(encoded, selected, n_coarse))
            rows[name] = Ranking(ids, local_d, self._shares_a_label(query.labels, ids), global_d)
        attended = self.known.attended_class(query.image, cam.region)
        holds = {
            name: None if attended is None else self.gallery_labels[row.ids, attended].astype(bool)
            for name, row in rows.items()
        }
        return Comparison(rows, attended, holds)

    def row_figures(
        self, ranking: Ranking, labels: np.ndarray | None, shown: int = 10, exact: bool = False
    ) -> RowFigures | None:
        """P@shown, AP@100 and AP of one row for one query (None when the query's labels are unknown):
        relevance is "shares a label" with `labels`, or with `exact` "is exactly the set `labels`"."""
        if labels is None or not len(ranking.ids):
            return None
        ids, wanted, shown = ranking.ids[None], labels[None], min(shown, len(ranking.ids))
        return RowFigures(
            shown,
            precision_at_k(ids, wanted, self.gallery_labels, shown, exact=exact),
            mean_average_precision(ids, wanted, self.gallery_labels, exact=exact, k=100),
            mean_average_precision(ids, wanted, self.gallery_labels, exact=exact),
            len(ranking.ids),
        )

    def sweep(
        self,
        query: Query,
        theta: float,
        top_l: int,
        n_coarse: int,
        box: tuple[int, int, int, int] | None = None,
        relevance: str = DEFAULT_RELEVANCE,
    ) -> dict[str, list[tuple[float, RowFigures | None]]]:
        """The re-ranked row's figures for one query against L (theta fixed) and against theta (L fixed):
        {"L": [(L, figures)], "theta": [(theta, figures)]}; figures are None when the rule cannot judge."""

        def figures(at_theta: float, at_l: int) -> RowFigures | None:
            answer = self.search(query, at_theta, at_l, n_coarse, box=box, relevance=relevance)
            return self.answer_figures(answer, answer.reranked)

        channels = self.hier_codes.local_bits.shape[1]
        return {
            "L": [(at_l, figures(theta, at_l)) for at_l in SWEPT_L if at_l <= channels],
            "theta": [(at_theta, figures(at_theta, top_l)) for at_theta in SWEPT_THETA],
        }

    def _shares_a_label(self, labels: np.ndarray | None, ids: np.ndarray) -> np.ndarray | None:
        return self._relevant(labels, ids, exact=False)

    def _relevant(self, wanted: np.ndarray | None, ids: np.ndarray, exact: bool) -> np.ndarray | None:
        """(k,) bool: each result shares a label with `wanted` (or, `exact`, holds exactly it)."""
        return None if wanted is None else relevance(wanted[None], self.gallery_labels[ids], exact=exact)[0]

    def why(
        self,
        query: Query,
        gallery_id: int,
        theta: float,
        top_l: int,
        box: tuple[int, int, int, int] | None = None,
    ) -> WhyAnswer:
        """A result matched against the query: where the query's selected bits (on its CAM region, or its
        box) fire in the result, the result's own attention region, and which selected bits it shares."""
        gallery_id = int(gallery_id)
        result = self.encode_hier(self.gallery_images[gallery_id])
        boxed = None if box is None else box_mask(box, self.image_size)
        asked = self.attention(query.encoded, theta, top_l, boxed)
        selected = asked.selected
        fired_map, fired = maps_region(result.conv7[0], selected, theta)
        agree = [int(c) for c in selected if result.local_bits[0, c] == query.encoded.local_bits[0, c]]
        labels = self.gallery_labels[gallery_id]
        shared = None if query.labels is None else labels & query.labels
        return WhyAnswer(
            gallery_id,
            labels,
            self.attention(result, theta, top_l).region,
            asked.region,
            fired_map,
            fired,
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
        labels = tuple(self.known.labels(image) for image in images)
        target = None if any(lab is None for lab in labels) else target_labels(chain, list(labels))
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
        composed = chain_bits(self.dcoh.operators, chain, operands)
        sources = tuple(self.known.source(image) for image in images)
        probs = _classifier_probs(self.dcoh.model, composed)
        return ComposeAnswer(chain, labels, target, probs, *rows, sources, composed[0], encoded.global_bits)

    def _against_target(self, target: np.ndarray | None, ids: np.ndarray, distances: np.ndarray) -> Ranking:
        if target is None:
            return Ranking(ids, distances, None)
        labels = self.gallery_labels[ids]
        exact = relevance(target[None], labels, exact=True)[0]
        return Ranking(ids, distances, exact, jaccard=jaccard(labels, target[None])[:, 0])


def box_mask(box: tuple[int, int, int, int], image_size: int) -> np.ndarray:
    """The attention's (S, S) bool mask of a box (top, left, bottom, right) given in image pixels, bounds
    inclusive: True on every attention cell the box touches."""
    scale = ATTENTION_SIZE / image_size
    top, left = (int(np.floor(v * scale)) for v in box[:2])
    bottom, right = (int(np.ceil((v + 1) * scale)) for v in box[2:])
    mask = np.zeros((ATTENTION_SIZE, ATTENTION_SIZE), bool)
    mask[top:bottom, left:right] = True
    return mask


@torch.no_grad()
def _classifier_probs(model: HashNet, bits: np.ndarray) -> np.ndarray:
    """Label probabilities the code classifier gives a (1, K) 0/1 code."""
    return torch.sigmoid(model.classifier(signs_of(bits)))[0].numpy()
