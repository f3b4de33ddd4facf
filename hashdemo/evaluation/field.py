"""The field's protocol for method 1 and the one-level hashing methods (docs/results.md, "The field's
protocol"): every method at the field's code lengths, scored only on relevance no method defines, with
ties broken in seeded random orders, and the field's curves.

- `lengths[bits][method]`: the one-level methods (the seed's pairwise loss and the peers) at 16, 32
  and 64 bits; the two-level model with H = 16, 32 and 64 (`global`, `hier_cam`, `hier_cam_fused`);
  and, under C (the local code's length), the full local code and the one-level code of C bits, so
  that both equal bits stored and equal bits compared are on the table. Every metric is the mean over
  TIE_ORDERS seeded random orders of the equal distances, with its std beside it (`<metric>_std`).
- `curves[bits][method]`: precision-recall over Hamming radius (one code) or over rank (the two-level
  search, which has no radius), precision@N for N up to 1,000, precision within Hamming radius 2 and the
  share of queries that get nothing within it.
- `hier_seeds`: the two-level rows over three full retrains of the shipped model, each tuned on its own
  val, shaped like `peer_seeds`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.evaluation.objects import ObjectQueries
from hashdemo.evaluation.scores import mean_and_std, spread
from hashdemo.evaluation.tuning import tune
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from hashdemo.model.config import METHOD_DEFAULTS
from hashdemo.model.networks import Encoded
from hashdemo.model.registry import PEERS, rebuild_command
from hashdemo.retrieval.index import HammingIndex
from hashdemo.retrieval.metrics import (
    map_of_relevance,
    mean_average_precision,
    precision_at_ns,
    precision_recall_curve,
    radius_curve,
    relevance,
)
from hashdemo.retrieval.protocol import (
    bits_per_image,
    coarse_candidates,
    hamming_ranking,
    hierarchical_ranking,
    validation_ids,
)
from hashdemo.retrieval.selection import cam_attention

log = logging.getLogger(__name__)
LENGTHS = (16, 32, 64)  # the field's code lengths (DeepHash-pytorch, OrthoHash)
SHIPPED_BITS = METHOD_DEFAULTS["hier"]["bits"]  # the shipped models' length keeps the bare names
ONE_LEVEL_METHODS = ("single_level", *PEERS)
TIE_ORDERS = 5  # seeded random orders of the equal distances, per metric mean and std
PRECISION_NS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)
# The field's cut-off for a gallery of this size: mAP over the whole gallery when it is small enough to
# rank (CIFAR-10's convention), and mAP@1000 (ImageNet-100's) beside it.
CUTOFF = 1000
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # w in d_L + w d_g; 0 is the seed's re-rank
SEED_RUNS = ("hier", "hier_seed1", "hier_seed2")  # the shipped two-level model and two full retrains
TWO_LEVEL_ROWS = ("global", "hier_cam", "hier_cam_fused")
Ranker = Callable[[np.ndarray], np.ndarray]  # a gallery permutation -> (Q, N) ids into the permuted gallery


def at_length(name: str, bits: int) -> str:
    """The checkpoint folder of model `name` trained at `bits` (the shipped length keeps the bare name:
    csq, csq_16, hier_h64)."""
    if bits == SHIPPED_BITS:
        return name
    return f"hier_h{bits}" if name == "hier" else f"{name}_{bits}"


def length_command(name: str, bits: int) -> str:
    """The command that trains model `name` at `bits`."""
    return rebuild_command(at_length(name, bits))


@dataclass(frozen=True)
class TwoLevel:
    """One two-level model ready to search the gallery: its val-chosen parameters and its codes."""

    name: str
    theta: float
    top_l: int
    n_coarse: int
    global_weight: float  # the fused re-rank's weight, chosen on val
    query: Encoded
    gallery: Encoded
    selected: np.ndarray  # (Q, L) each query's CAM-selected bits

    def ranker(self, fused: bool) -> Ranker:
        weight = self.global_weight if fused else 0.0
        return lambda perm: hierarchical_ranking(
            self.query, self.gallery.take(perm), self.selected, self.n_coarse, None, weight
        )

    @property
    def bits(self) -> tuple[int, int]:
        return self.query.global_bits.shape[1], self.query.local_bits.shape[1]


def fusion_weight(val: Encoded, val_labels: np.ndarray, orders: np.ndarray, top_l: int, share: float) -> dict:
    """The fused re-rank's weight on val (500 val queries against the other 1,500): the one with the best
    mean of val mAP and val exact-set map@100, the two measures the fused row is meant to lift."""
    q, db = validation_ids(len(val_labels))
    n_coarse = coarse_candidates(share, len(db))
    grid = []
    for weight in FUSION_WEIGHTS:
        ranked = hierarchical_ranking(val.take(q), val.take(db), orders[:, :top_l], n_coarse, None, weight)
        val_map = mean_average_precision(ranked, val_labels[q], val_labels[db])
        exact = mean_average_precision(ranked, val_labels[q], val_labels[db], exact=True, k=100)
        grid.append({"weight": weight, "val_map": val_map, "val_map_exact@100": exact})
    best = max(grid, key=lambda row: (row["val_map"] + row["val_map_exact@100"], -row["weight"]))
    return {"weight": best["weight"], "grid": grid}


def tune_fusion(checkpoint: Checkpoint, val: Encoded, val_labels: np.ndarray, tuned: dict) -> dict:
    """The fusion weight on val at the val-chosen theta, L and K."""
    val_q, _ = validation_ids(len(val_labels))
    orders = cam_attention(checkpoint, val.take(val_q), tuned["theta"]).orders
    return fusion_weight(val, val_labels, orders, tuned["L"], tuned["K_share"])


def prepare_two_level(name: str, checkpoint: Checkpoint, dataset: Dataset) -> tuple[TwoLevel, dict]:
    """Tune theta, L, K and the fusion weight on val, then encode the query split and the gallery."""
    splits = dataset.splits
    val = checkpoint.model.encode(splits["val"].images, with_conv7=True)
    tuned = tune(checkpoint, val, splits["val"].labels)["best"]
    fusion = tune_fusion(checkpoint, val, splits["val"].labels, tuned)
    query = checkpoint.model.encode(splits["query"].images, with_conv7=True)
    orders = cam_attention(checkpoint, query, tuned["theta"]).orders[:, : tuned["L"]]
    gallery = checkpoint.model.encode(splits["gallery"].images)
    n_coarse = coarse_candidates(tuned["K_share"], len(gallery.global_bits))
    query = replace(query, conv7=None)  # the maps were needed for the attention only
    ready = TwoLevel(name, tuned["theta"], tuned["L"], n_coarse, fusion["weight"], query, gallery, orders)
    chosen = {key: tuned[key] for key in ("theta", "L", "K_share")} | {"K": n_coarse}
    return ready, {**chosen, "fusion": fusion}


@dataclass(frozen=True)
class Scoring:
    """The query split's labels and protocols against one gallery."""

    q_labels: np.ndarray
    g_labels: np.ndarray
    objects: dict[str, ObjectQueries]  # the object protocols no method defines
    set_cutoff: int | None = None  # the data set's own mAP cut-off (the field's convention); None: all

    @functools.cached_property
    def relevance(self) -> dict[str, np.ndarray]:
        """(Q, N) relevance of each protocol, computed once for every ranking scored against it."""
        one_hot = np.eye(self.g_labels.shape[1], dtype=np.uint8)
        return {
            "shares": relevance(self.q_labels, self.g_labels),
            "exact": relevance(self.q_labels, self.g_labels, exact=True),
            **{name: relevance(one_hot[o.classes], self.g_labels) for name, o in self.objects.items()},
        }

    def scores(self, ranked: np.ndarray) -> dict:
        """The field's metrics of whole-gallery rankings (Q, N): mAP over the gallery, at CUTOFF, at the
        set's own cut-off and at 100 (shares a label, exact set), P@10, and map@100 under each object
        protocol; the same values as `hashdemo.retrieval.metrics` gives them, from one relevance matrix
        per protocol."""
        rel = self.relevance
        shares = np.take_along_axis(rel["shares"], ranked, axis=1)
        exact = np.take_along_axis(rel["exact"], ranked, axis=1)
        out = {
            "map": map_of_relevance(shares),
            "map_exact": map_of_relevance(exact),
            "map@100": map_of_relevance(shares[:, :100]),
            "map_exact@100": map_of_relevance(exact[:, :100]),
            f"map@{CUTOFF}": map_of_relevance(shares[:, :CUTOFF]),
            "map@set": map_of_relevance(shares[:, : self.set_cutoff]),
            "p@10": float(shares[:, :10].mean()),
        }
        for name, o in self.objects.items():
            out[f"{name}_map@100"] = map_of_relevance(
                np.take_along_axis(rel[name], ranked[o.ids, :100], axis=1)
            )
        return out

    def with_ties(self, ranker: Ranker) -> tuple[dict, np.ndarray]:
        """Each metric's mean and std over TIE_ORDERS random orders of the ties, and the first order's
        ranking (for the curves). Ranking a permuted gallery breaks ties by the permuted id."""
        runs, first = [], None
        for seed in range(TIE_ORDERS):
            perm = np.random.default_rng(seed).permutation(len(self.g_labels))
            ranked = perm[ranker(perm)]
            first = ranked if first is None else first
            runs.append(self.scores(ranked))
        return mean_and_std(runs), first

    def curves(self, ranked: np.ndarray, q_bits: np.ndarray | None, g_bits: np.ndarray | None) -> dict:
        """The field's curves of one method: PR over Hamming radius for a single code (over rank for the
        two-level search, `q_bits` None), precision@N, and precision within radius 2."""
        at_n = precision_at_ns(ranked, self.q_labels, self.g_labels, PRECISION_NS)
        out = {"precision_at_n": dict(zip(map(str, PRECISION_NS), at_n, strict=True))}
        if q_bits is None:
            precision, recall = precision_recall_curve(ranked, self.q_labels, self.g_labels)
            out["pr"] = {"over": "rank", "precision": precision.tolist(), "recall": recall.tolist()}
            return out
        nbits = q_bits.shape[1]
        curve = radius_curve(HammingIndex(g_bits).distances(q_bits), self.q_labels, self.g_labels, nbits)
        out["pr"] = {"over": "radius", **{key: curve[key] for key in ("radius", "precision", "recall")}}
        out["precision_hamming2"] = curve["precision_zero_empty"][min(2, nbits)]
        out["hamming2_empty_share"] = curve["empty"][min(2, nbits)]
        return out


def code_ranker(q_bits: np.ndarray, g_bits: np.ndarray) -> Ranker:
    return lambda perm: hamming_ranking(q_bits, g_bits[perm])


def score_row(scoring: Scoring, ranker: Ranker, codes: tuple | None, budget: dict) -> tuple[dict, dict]:
    row, ranked = scoring.with_ties(ranker)
    return {**row, **budget}, scoring.curves(ranked, *(codes or (None, None)))


def field_lengths(
    dataset: Dataset, checkpoints: Path, shipped: TwoLevel, shipped_tuned: dict, scoring: Scoring
) -> dict:
    """`lengths`, `curves`, the two-level parameters per length and notes for what is not trained."""
    lengths: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    tuned: dict[str, dict] = {}
    skipped: list[str] = []
    splits = dataset.splits
    n = len(scoring.g_labels)
    for bits in LENGTHS:
        rows, row_curves = lengths.setdefault(str(bits), {}), curves.setdefault(str(bits), {})
        for name in ONE_LEVEL_METHODS:
            try:
                model = load_checkpoint(at_length(name, bits), checkpoints).model
            except CheckpointError:
                skipped.append(f"{name} at {bits} bits: not trained (`{length_command(name, bits)}`)")
                continue
            q, g = (model.encode(splits[s].images).global_bits for s in ("query", "gallery"))
            budget = {"bits_stored": bits, "bits_compared": bits}
            rows[name], row_curves[name] = score_row(scoring, code_ranker(q, g), (q, g), budget)
            log.info("field protocol: %s at %d bits done", name, bits)
        if bits == SHIPPED_BITS:
            two, chosen = shipped, shipped_tuned
        else:
            try:
                checkpoint = load_checkpoint(at_length("hier", bits), checkpoints)
            except CheckpointError:
                skipped.append(f"two-level with H = {bits}: not trained (`{length_command('hier', bits)}`)")
                continue
            two, chosen = prepare_two_level(at_length("hier", bits), checkpoint, dataset)
        tuned[str(bits)] = chosen
        rows.update(two_level_rows(two, scoring, row_curves, n))
    local = shipped.bits[1]
    rows, row_curves = lengths.setdefault(str(local), {}), curves.setdefault(str(local), {})
    q, g = shipped.query.local_bits, shipped.gallery.local_bits
    rows["local_full"], row_curves["local_full"] = score_row(
        scoring, code_ranker(q, g), (q, g), {"bits_stored": sum(shipped.bits), "bits_compared": local}
    )
    try:
        model = load_checkpoint("single_level_local", checkpoints).model
        q, g = (model.encode(splits[s].images).global_bits for s in ("query", "gallery"))
        budget = {"bits_stored": local, "bits_compared": local}
        rows["single_level_local"], row_curves["single_level_local"] = score_row(
            scoring, code_ranker(q, g), (q, g), budget
        )
    except CheckpointError:
        skipped.append("single_level_local: not trained")
    lengths = {bits: rows for bits, rows in lengths.items() if rows}  # a length nothing is trained at
    curves = {bits: rows for bits, rows in curves.items() if rows}
    return {"lengths": lengths, "curves": curves, "two_level_by_length": tuned, "skipped": skipped}


def two_level_rows(two: TwoLevel, scoring: Scoring, curves: dict, n: int) -> dict:
    """The global code, the seed's re-rank and the fused re-rank of one two-level model."""
    h, c = two.bits
    stored = {"bits_stored": h + c}
    compared = {**stored, "bits_compared": bits_per_image(h, two.top_l, two.n_coarse, n)}
    q, g = two.query.global_bits, two.gallery.global_bits
    rows = {}
    rows["global"], curves["global"] = score_row(
        scoring, code_ranker(q, g), (q, g), {"bits_stored": h, "bits_compared": h}
    )
    rows["hier_cam"], curves["hier_cam"] = score_row(scoring, two.ranker(False), None, compared)
    rows["hier_cam_fused"], curves["hier_cam_fused"] = score_row(scoring, two.ranker(True), None, compared)
    rows["hier_cam_fused"]["global_weight"] = two.global_weight
    return rows


def hier_seeds(
    dataset: Dataset, checkpoints: Path, shipped: TwoLevel, scoring: Scoring
) -> tuple[dict, list[str]]:
    """The two-level rows (and the full local code) over the shipped model and two full retrains, each
    run tuned on its own val, ties by id as in `peer_seeds`: {row: {metric: spread}}."""
    runs = [shipped]
    for name in SEED_RUNS[1:]:
        try:
            runs.append(prepare_two_level(name, load_checkpoint(name, checkpoints), dataset)[0])
        except CheckpointError:
            return {}, [f"the two-level seed spread: {name} is not trained (`{rebuild_command(name)}`)"]
    identity = np.arange(len(scoring.g_labels))
    per_row: dict[str, list[dict]] = {}
    for run in runs:
        q, g = run.query, run.gallery
        rankers = {
            "global": code_ranker(q.global_bits, g.global_bits),
            "local_full": code_ranker(q.local_bits, g.local_bits),
            "hier_cam": run.ranker(False),
            "hier_cam_fused": run.ranker(True),
        }
        for row, ranker in rankers.items():
            per_row.setdefault(row, []).append(scoring.scores(ranker(identity)))
    spreads = {row: {key: spread([r[key] for r in rows]) for key in rows[0]} for row, rows in per_row.items()}
    return spreads, []
