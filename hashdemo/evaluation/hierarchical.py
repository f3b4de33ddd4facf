"""Method 1's evaluation on any dataset: the query split against the gallery (and a large gallery, where
the dataset has one).

theta, L and K are chosen on val (`hashdemo.evaluation.tuning`); then every method is scored on the
query split with three relevance notions (shares a label, exact set, Jaccard nDCG). Where the dataset
records its items, the object protocols and where the CAM region falls (`hashdemo.evaluation.objects`);
where it has a large gallery, the same rows against it and ms per query from 10k to 10M codes
(`hashdemo.evaluation.speed`). What a dataset lacks is skipped and said so under "skipped".
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.evaluation.codes import Codes
from hashdemo.evaluation.field import (
    CUTOFF,
    LENGTHS,
    PRECISION_NS,
    TIE_ORDERS,
    TwoLevel,
    field_lengths,
    hier_seeds,
)
from hashdemo.evaluation.field import Scoring as FieldScoring
from hashdemo.evaluation.hier_million import million_parts, scale_galleries
from hashdemo.evaluation.localization import attended_slots
from hashdemo.evaluation.objects import (
    PROTOCOLS,
    boxed_scores,
    field_protocols,
    localization_by_theta,
    protocol_table,
)
from hashdemo.evaluation.out_of_domain import out_of_domain
from hashdemo.evaluation.scores import TOP, full_scores, mean_and_std, rankers, spread, top_scores
from hashdemo.evaluation.setup import BASELINES, Setup, prepare
from hashdemo.evaluation.speed import (
    SCALE_SIZES,
    attention_ms,
    scale_rows,
    two_level_ratios,
)
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from hashdemo.model.registry import PEERS
from hashdemo.retrieval.gallery_codes import large_gallery_codes
from hashdemo.retrieval.metrics import precision_recall_curve
from hashdemo.retrieval.million import MILLION
from hashdemo.retrieval.protocol import (
    bits_per_image,
    hamming_ranking,
    hierarchical_ranking,
    subset_scores,
)

log = logging.getLogger(__name__)
LARGE_GALLERY = 100_000
TIMED_AS = dict.fromkeys(PEERS, "single_level")  # a peer's 32-bit scan is single_level's: the same index


def score_gallery(setup: Setup, gallery: Codes, g_labels: np.ndarray, whole: bool) -> dict:
    """Every method's row against one gallery: whole-gallery and @100 metrics (`whole`), else @100 only."""
    q, draws = setup.query, setup.random_draws
    k = None if whole else TOP

    def scores(ranked):
        return (full_scores if whole else top_scores)(ranked, setup.q_labels, g_labels, setup.objects)

    ranks = rankers(q, gallery, setup.orders, setup.top_l, setup.n_coarse, setup.global_weight)
    methods = {name: scores(rank(k)) for name, rank in ranks.items()}
    methods["hier_random"] = mean_and_std(
        [scores(hierarchical_ranking(q.hier, gallery.hier, draw, setup.n_coarse, k)) for draw in draws]
    )
    return methods


def evaluate_hier(
    dataset: Dataset,
    checkpoints: Path | None = None,
    large_size: int = LARGE_GALLERY,
    scale_sizes: tuple[int, ...] = SCALE_SIZES,
    million_size: int = MILLION,
) -> dict:
    """Every protocol the dataset has what it needs for; the rest listed under "skipped" with the reason."""
    directory = checkpoints or dataset.checkpoints
    hier, one_level, val, tuned, setup, skipped = prepare(dataset, directory)
    splits = dataset.splits
    gallery, g_labels = setup.encode(splits["gallery"].images), splits["gallery"].labels
    methods = score_gallery(setup, gallery, g_labels, whole=True)
    weights = hier.model.cam_weights().numpy()
    result = {
        **main_parts(setup, methods),
        "out_of_domain": out_of_domain(hier, splits["val"].images, val, gallery.hier),
        "attention_ms": (timing := attention_ms(weights, setup.query, setup.theta, setup.top_l))["median"],
        "attention_timing": timing,
        "val_grid": tuned["grid"],
        "fusion": tuned["fusion"],
        "pr_curves": pr_curves(setup, gallery, g_labels),
        "subset": subset_scores(
            setup.query.hier,
            gallery.hier,
            setup.q_labels,
            g_labels,
            setup.cam.orders[:, : setup.top_l],
            setup.n_coarse,
        ),
    }
    galleries = {"gallery": (gallery, g_labels)}
    if (reason := dataset.lacks("large_gallery") or missing_baselines(one_level)) is None:
        large, large_labels = large_gallery(dataset, setup, directory, large_size)
        galleries["large_gallery"] = (large, large_labels)
        real = {len(g_labels): gallery, len(large_labels): large}
        million, why_not = million_parts(
            dataset, directory, setup, val, splits["val"].labels, weights, million_size
        )
        if million is None:
            skipped.append(f"accuracy and speed on a million real codes: {why_not}")
        else:
            result["million"] = million.pop("json")
        builders = scale_galleries(setup, real, million, scale_sizes)
        scale = scale_rows(weights, setup.query, builders, setup.theta, setup.top_l)
        result.update(scale_parts(setup, scale))
        result["large_gallery"] = {
            "n": len(large_labels),
            "methods": score_gallery(setup, large, large_labels, False),
        }
    else:
        skipped.append(f"the large gallery and the speed rows: {reason}")
    if setup.items is not None:
        result.update(object_parts(setup, methods, galleries, result.get("large_gallery")))
    else:
        skipped.append(f"largest-item and attended-object protocols, localization: {dataset.lacks('items')}")
    add_costs(methods, result.get("scale", []), setup, len(g_labels))
    result["peer_seeds"], missing = peer_seeds(setup, directory, splits, gallery)
    skipped += missing
    field = field_parts(dataset, directory, setup, gallery, g_labels)
    skipped += field.pop("skipped")
    result.update(field)
    sizes = {"queries": len(setup.q_labels), "gallery": len(g_labels)}
    return {"dataset": dataset.name, "classes": list(dataset.classes), **sizes, **result, "skipped": skipped}


SEEDS = (1, 2)  # besides the shipped run (seed 0): checkpoints NAME_seed1, NAME_seed2, full retrains


def peer_seeds(setup: Setup, checkpoints: Path, splits: dict, gallery: Codes) -> tuple[dict, list[str]]:
    """Each peer's metrics over its three full retrains (the shipped run and SEEDS), {name: {metric:
    spread}}, where all three are trained; a note for each peer whose seeds are not."""
    spreads, missing = {}, []
    for name in (name for name in PEERS if name in setup.one_level):
        codes = [(setup.query.one_level[name], gallery.one_level[name])]
        try:
            runs = [load_checkpoint(f"{name}_seed{seed}", checkpoints) for seed in SEEDS]
        except CheckpointError:
            missing.append(f"{name}'s seed spread: {name}_seed1 and {name}_seed2 are not both trained")
            continue
        codes += [
            tuple(run.model.encode(splits[s].images).global_bits for s in ("query", "gallery"))
            for run in runs
        ]
        g_labels = splits["gallery"].labels
        rows = [full_scores(hamming_ranking(q, g), setup.q_labels, g_labels, setup.objects) for q, g in codes]
        spreads[name] = {key: spread([row[key] for row in rows]) for key in rows[0]}
    return spreads, missing


def field_parts(dataset: Dataset, checkpoints: Path, setup: Setup, gallery: Codes, g_labels) -> dict:
    """The field's protocol (`hashdemo.evaluation.field`): every length, the curves, the two-level seeds."""
    shipped = TwoLevel(
        "hier",
        setup.theta,
        setup.top_l,
        setup.n_coarse,
        setup.global_weight,
        replace(setup.query.hier, conv7=None),
        gallery.hier,
        setup.cam.orders[:, : setup.top_l],
    )
    chosen = {"theta": setup.theta, "L": setup.top_l, "K_share": setup.k_share, "K": setup.n_coarse}
    scoring = FieldScoring(setup.q_labels, g_labels, field_protocols(setup.objects), dataset.cutoff)
    parts = field_lengths(dataset, checkpoints, shipped, chosen, scoring)
    parts["hier_seeds"], missing = hier_seeds(dataset, checkpoints, shipped, scoring)
    parts["skipped"] += missing
    parts["field"] = {
        "tie_orders": TIE_ORDERS,
        "lengths": list(LENGTHS),
        "cutoff": CUTOFF,
        "set_cutoff": dataset.cutoff,  # map@set: mAP at the set's own cut-off (None: the whole gallery)
        "precision_ns": list(PRECISION_NS),
        "protocols": [
            "shares a label",
            "exact label set",
            *({"object": "largest item", "each": "each item"}[name] for name in scoring.objects),
        ],
    }
    return parts


def missing_baselines(one_level: dict[str, Checkpoint]) -> str | None:
    missing = [name for name in BASELINES if name not in one_level]
    return f"{', '.join(missing)} not trained" if missing else None


def large_gallery(dataset: Dataset, setup: Setup, checkpoints: Path, size: int) -> tuple[Codes, np.ndarray]:
    names = ("hier", *setup.one_level)
    codes, labels, _ = large_gallery_codes(dataset, names, size, checkpoints, progress=True)
    return Codes(codes["hier"], {name: codes[name].global_bits for name in setup.one_level}), labels


def box_slots(setup: Setup) -> dict[str, np.ndarray | None]:
    items = setup.items
    return {
        "hier_box_largest": items.largest(),
        "hier_box": attended_slots(items, setup.cam.regions[items.ids]),
        "hier_box_any_item": None,  # every item in turn
    }


def attended_table(methods: dict, boxed: dict) -> dict:
    """The attended-object check, within method 1 only: the two-level rows on the target its own
    attention picks (no other method can know that target, so no other row is scored on it)."""
    two_level = {name: row for name, row in methods.items() if name.startswith("hier")}
    return {
        **protocol_table(two_level, "attended_map@100"),
        "hier_box": {"map@100": boxed["hier_box"]},  # the attended item's box
        "hier_box_any_item": {"map@100": boxed["hier_box_any_item"]},
    }


def main_parts(setup: Setup, methods: dict) -> dict:
    """The gallery's tables: parameters, methods and how many bits the attention finds."""
    chosen = np.minimum(setup.cam.positive, setup.top_l)
    bits = setup.query.hier
    return {
        "bits": {"global": bits.global_bits.shape[1], "local": bits.local_bits.shape[1]},
        "theta": setup.theta,
        "L": setup.top_l,
        "K": setup.n_coarse,
        "K_share": setup.k_share,
        "methods": methods,
        "attention": {
            "positive_overlap_median": float(np.median(chosen)),
            "positive_overlap_p10": float(np.percentile(chosen, 10)),
            "positive_overlap_p90": float(np.percentile(chosen, 90)),
            "empty_region_queries": int((setup.cam.positive == 0).sum()),
        },
    }


def object_parts(setup: Setup, methods: dict, galleries: dict, large: dict | None) -> dict:
    """Both object protocols and the localization figures (a dataset that records its items); the
    large gallery's attended-object table goes into `large` where there is one."""
    boxed = boxed_scores(
        setup.hier,
        setup.query,
        galleries,
        setup.items,
        box_slots(setup),
        setup.theta,
        setup.top_l,
        setup.n_coarse,
    )
    if large is not None:
        large["attended_object"] = attended_table(large["methods"], boxed["large_gallery"])
    by_theta = localization_by_theta(setup.hier, setup.query, setup.items, setup.theta, setup.cam)
    return {
        "protocols": PROTOCOLS,
        "object_focused": {
            "hier_box": {"map@100": boxed["gallery"]["hier_box_largest"]},  # the largest item's box
            **protocol_table(methods, "object_map@100"),
        },
        "each_item": protocol_table(methods, "each_map@100"),
        "attended_object": attended_table(methods, boxed["gallery"]),
        "object_queries": len(setup.items.ids),
        "box_queries_any_item": int((setup.items.classes >= 0).sum()),
        "localization": {**next(r for r in by_theta if r["theta"] == setup.theta), "by_theta": by_theta},
    }


def scale_parts(setup: Setup, scale: list[dict]) -> dict:
    bits = setup.query.hier
    return {
        "scale": scale,
        "two_level_ratio": two_level_ratios(
            scale, bits.global_bits.shape[1], bits.local_bits.shape[1], setup.top_l
        ),
    }


def pr_curves(setup: Setup, gallery: Codes, g_labels: np.ndarray) -> dict:
    ranks = rankers(setup.query, gallery, setup.orders, setup.top_l, setup.n_coarse)
    curves = {}
    for name in ("global", "local_full", "hier_cam", "float_cosine"):
        precision, recall = precision_recall_curve(ranks[name](None), setup.q_labels, g_labels)
        curves[name] = {"precision": precision.tolist(), "recall": recall.tolist()}
    return curves


def add_costs(methods: dict, scale: list[dict], setup: Setup, n: int) -> None:
    """Each method row's bits compared, bits read per gallery image and ms per query at the gallery's
    size (None where no speed rows were measured)."""
    query, top_l, n_coarse = setup.query, setup.top_l, setup.n_coarse
    bits_global, bits_local = query.hier.global_bits.shape[1], query.hier.local_bits.shape[1]
    bits = {"global": bits_global, "local_full": bits_local, "float_cosine": None}
    bits.update({name: codes.shape[1] for name, codes in query.one_level.items()})
    for name, row in methods.items():
        two_level = name.startswith("hier")
        row["bits_compared"] = bits_global + top_l if two_level else bits[name]
        row["bits_per_gallery_image"] = (
            bits_per_image(bits_global, top_l, n_coarse, n) if two_level else bits[name]
        )
        timed = TIMED_AS.get(name, name.replace("_all_components", ""))
        row["ms_per_query"] = next(
            (r["ms_per_query"] for r in scale if r["n"] == n and r["method"] == timed), None
        )
