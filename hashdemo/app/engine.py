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

from hashdemo.app.images import load_image
from hashdemo.cam import Attention, attend_code, bit_cams, normalise, upsample
from hashdemo.checkpoints import CHECKPOINT_DIR, Checkpoint, load_checkpoint
from hashdemo.checks import number_in_range
from hashdemo.code_ops import chain_bits
from hashdemo.data import (
    OutfitRecipe,
    default_cache_dir,
    load_outfits,
)
from hashdemo.gallery_codes import cache_key, load_codes, save_codes
from hashdemo.label_ops import OPERATORS, compose_chain
from hashdemo.models import Encoded, HashNet, signs_of
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.novelty import novelty, unit_rows

log = logging.getLogger(__name__)
# Used until the evaluation has chosen theta, L and K on the val split.
FALLBACK_PARAMS = {"theta": 0.4, "L": 24, "K": 200}


@dataclass(frozen=True)
class SearchResult:
    attention: Attention
    global_bits: np.ndarray  # (H,) the query's H_g
    local_bits: np.ndarray  # (C,) the query's H_l
    coarse_ids: np.ndarray  # (K,) gallery ids by global distance
    coarse_distances: np.ndarray  # (K,)
    reranked_ids: np.ndarray  # (K,) the same ids re-ranked on the L selected local bits
    reranked_distances: np.ndarray  # (K,) eq. 2.5 distance on the selected bits
    reranked_global_distances: np.ndarray  # (K,)


@dataclass(frozen=True)
class ComposeResult:
    predicted_probs: np.ndarray  # (n_classes,) the code classifier on the composed code
    ids: np.ndarray  # (k,) gallery ids nearest to the composed code
    distances: np.ndarray  # (k,)
    bitwise_ids: np.ndarray  # (k,) the bitwise OR / AND / AND-NOT baseline
    bitwise_distances: np.ndarray


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
    ):
        """`indexes`: "hier_global", "hier_local" and "dcoh" (Milvus, say); None: in-process indexes."""
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
        self.novelty_threshold = test.get("out_of_domain", {}).get("threshold")  # None until evaluated
        self.defaults = {key: test.get(key, value) for key, value in FALLBACK_PARAMS.items()}
        # labels of images that are known dataset images, by pixel digest (examples and the gallery)
        self.examples = examples
        self._known = {hashlib.sha1(img.tobytes()).digest(): lab for img, lab in examples.values()}
        self._known.update(
            {
                hashlib.sha1(img.tobytes()).digest(): lab
                for img, lab in zip(gallery_images, gallery_labels, strict=True)
            }
        )

    @classmethod
    def load(
        cls,
        checkpoints: Path = CHECKPOINT_DIR,
        cache_dir: Path | None = None,
        progress: Callable[[float, str], None] | None = None,
        n_examples: int = 12,
        milvus_uri: str | None = None,
        milvus_progress: Callable[[str, int, int], None] | None = None,
    ) -> Engine:
        """Load both checkpoints and the gallery; gallery codes are cached by checkpoint digest.

        With `milvus_uri` (default: HASHDEMO_MILVUS_URI) the gallery is searched in Milvus, its
        collections built on first use; unset, in process."""
        report = progress or (lambda fraction, message: log.info("%3.0f%% %s", 100 * fraction, message))
        report(0.0, "loading checkpoints")
        hier, dcoh = load_checkpoint("hier", checkpoints), load_checkpoint("dcoh", checkpoints)
        report(0.1, "loading the outfits dataset (built on first start)")
        recipe = OutfitRecipe()
        splits = load_outfits(recipe, cache_dir=cache_dir)
        gallery = splits["gallery"]
        cache = Path(cache_dir or default_cache_dir())
        key = cache_key(recipe, ("hier", "dcoh"), checkpoints)
        codes_path = cache / f"gallery-codes-{key}.npz"
        cached = load_codes(codes_path, ("hier", "dcoh"))
        if cached is None:
            report(0.4, "encoding the 10k gallery with both models (first start only)")
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
            hier_key, dcoh_key = (cache_key(recipe, (name,), checkpoints) for name in ("hier", "dcoh"))
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
        examples = {f"query-{i}": (query.images[i], query.labels[i]) for i in range(n_examples)}
        engine = cls(
            hier, dcoh, gallery.images, gallery.labels, codes["hier"], codes["dcoh"], examples, indexes
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

    def bit_cam(self, encoded: Encoded, bit: int) -> np.ndarray:
        """Global bit j's own CAM M_j, signed by the bit's value, normalised to [0, 1] at image size."""
        sign = np.array([1.0 if encoded.global_bits[0, bit] else -1.0])
        cam = bit_cams(encoded.conv7[0], self.cam_weights[bit : bit + 1], sign)
        return normalise(upsample(cam, self.image_size))[0]

    def search_encoded(
        self, encoded: Encoded, theta: float, top_l: int, n_coarse: int, region: np.ndarray | None = None
    ) -> SearchResult:
        """Attention (or the user's `region`), bit selection and the two-level search for an encoded query."""
        n_coarse = min(n_coarse, len(self.gallery_labels))
        att = self.attention(encoded, theta, top_l, region)
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
        return SearchResult(
            att,
            encoded.global_bits[0],
            encoded.local_bits[0],
            ids[0][coarse],
            global_d[0][coarse],
            ids[0],
            local_d[0],
            global_d[0],
        )

    def search(self, image: np.ndarray, theta: float, top_l: int, n_coarse: int) -> SearchResult:
        return self.search_encoded(self.encode_hier(image), theta, top_l, n_coarse)

    def gallery_attention(self, gallery_id: int, theta: float, top_l: int) -> tuple[Attention, np.ndarray]:
        """A result's own attention (for "why"), and its local bits."""
        encoded = self.encode_hier(self.gallery_images[gallery_id])
        return self.attention(encoded, theta, top_l), encoded.local_bits[0]

    def compose(
        self,
        image_a: np.ndarray,
        image_b: np.ndarray,
        operator: str,
        k: int = 20,
        image_c: np.ndarray | None = None,
        then: str | None = None,
    ) -> ComposeResult:
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
        bits = self.dcoh.model.encode(np.stack(images)).global_bits  # (2 or 3, K)
        operands = [bits[i : i + 1] for i in range(len(images))]  # (1, K) each
        composed = chain_bits(self.dcoh.operators, chain, operands)
        bitwise = chain_bits(None, chain, operands)
        probs = _classifier_probs(self.dcoh.model, composed)
        distances, ids = self.dcoh_index.search(composed, k)
        bitwise_distances, bitwise_ids = self.dcoh_index.search(bitwise, k)
        return ComposeResult(probs, ids[0], distances[0], bitwise_ids[0], bitwise_distances[0])

    @staticmethod
    def target_labels(operators: tuple[str, ...], labels: list[np.ndarray]) -> np.ndarray:
        """The label set of ((l_0 op_1 l_1) op_2 l_2)..."""
        return compose_chain(operators, [lab[None] for lab in labels])[0]


@torch.no_grad()
def _classifier_probs(model: HashNet, bits: np.ndarray) -> np.ndarray:
    """Label probabilities the code classifier gives a (1, K) 0/1 code."""
    return torch.sigmoid(model.classifier(signs_of(bits)))[0].numpy()
