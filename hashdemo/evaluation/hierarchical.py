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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hashdemo.data.dataset import Dataset
from hashdemo.evaluation import million as million_eval
from hashdemo.evaluation.codes import Codes
from hashdemo.evaluation.field import (
    CUTOFF,
    LENGTHS,
    PRECISION_NS,
    TIE_ORDERS,
    TwoLevel,
    field_lengths,
    hier_seeds,
    tune_fusion,
)
from hashdemo.evaluation.field import Scoring as FieldScoring
from hashdemo.evaluation.localization import Items, attended_slots, multi_item
from hashdemo.evaluation.objects import (
    PROTOCOLS,
    ObjectQueries,
    boxed_scores,
    field_protocols,
    localization_by_theta,
    object_protocols,
    protocol_table,
)
from hashdemo.evaluation.out_of_domain import out_of_domain
from hashdemo.evaluation.scores import TOP, full_scores, mean_and_std, rankers, spread, top_scores
from hashdemo.evaluation.speed import (
    EVERY_METHOD_UP_TO,
    SCALE_SIZES,
    attention_ms,
    packed_gallery,
    random_gallery,
    real_gallery,
    scale_rows,
    two_level_ratios,
)
from hashdemo.evaluation.tuning import tune
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from hashdemo.model.networks import Encoded
from hashdemo.model.registry import PEERS
from hashdemo.retrieval.gallery_codes import large_gallery_codes
from hashdemo.retrieval.metrics import precision_recall_curve
from hashdemo.retrieval.million import MILLION, MILLION_MODELS, MillionIncomplete, load_million
from hashdemo.retrieval.protocol import (
    bits_per_image,
    coarse_candidates,
    hamming_ranking,
    hierarchical_ranking,
    subset_scores,
)
from hashdemo.retrieval.selection import CamAttention, activation_orders, cam_attention, random_orders

log = logging.getLogger(__name__)
RANDOM_SEEDS = 5  # hier_random: this many draws of L random bits per query
LARGE_GALLERY = 100_000
# The seed's loss as one-level codes (the speed rows need both), then the field's peers: every
# one-level model gets a row where it is trained.
BASELINES = ("single_level", "single_level_local")
ONE_LEVEL = (*BASELINES, *PEERS)
TIMED_AS = dict.fromkeys(PEERS, "single_level")  # a peer's 32-bit scan is single_level's: the same index


@dataclass(frozen=True)
class Setup:
    """What every part of the evaluation shares: the chosen parameters and the query split's codes,
    attention, object protocols and bit selections."""

    hier: Checkpoint
    one_level: dict[str, Checkpoint]  # the one-level models that are trained (baselines and peers)
    theta: float
    top_l: int
    k_share: float  # K as a share of the database, as chosen on val
    n_coarse: int  # K on the gallery (also at every other size)
    global_weight: float  # the fused re-rank's weight on the global distance, chosen on val
    query: Codes
    q_labels: np.ndarray
    cam: CamAttention
    items: Items | None  # the multi-item queries, where the dataset records items
    objects: dict[str, ObjectQueries]
    orders: dict[str, np.ndarray]  # (Q, C) channel orders of the two-level methods but hier_random
    random_draws: list[np.ndarray]  # RANDOM_SEEDS draws of (Q, L) random bits

    def encode(self, images: np.ndarray) -> Codes:
        return encode_codes(self.hier, self.one_level, images)


def encode_codes(
    hier: Checkpoint, one_level: dict[str, Checkpoint], images: np.ndarray, conv7: bool = False
) -> Codes:
    """Images under the hierarchical model and every trained one-level model."""
    codes = {name: checkpoint.model.encode(images).global_bits for name, checkpoint in one_level.items()}
    return Codes(hier.model.encode(images, with_conv7=conv7), codes)


def make_setup(dataset: Dataset, hier: Checkpoint, one_level: dict[str, Checkpoint], tuned: dict) -> Setup:
    theta, top_l, share = (tuned["best"][key] for key in ("theta", "L", "K_share"))
    weight = tuned["fusion"]["weight"]
    query_split, n_gallery = dataset.splits["query"], len(dataset.splits["gallery"])
    query = encode_codes(hier, one_level, query_split.images, conv7=True)
    cam = cam_attention(hier, query.hier, theta)
    items = None if dataset.lacks("items") else multi_item(query_split)
    n_local = query.hier.local_bits.shape[1]
    return Setup(
        hier,
        one_level,
        theta,
        top_l,
        share,
        coarse_candidates(share, n_gallery),
        weight,
        query,
        query_split.labels,
        cam,
        items,
        {} if items is None else object_protocols(items, cam),
        {
            "hier_cam": cam.orders,
            "hier_cam_all_components": cam_attention(hier, query.hier, theta, largest_only=False).orders,
            "hier_activation": activation_orders(query.hier),
        },
        [random_orders(len(query_split), n_local, seed)[:, :top_l] for seed in range(RANDOM_SEEDS)],
    )


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


def prepare(dataset: Dataset, directory: Path) -> tuple[Checkpoint, dict, Encoded, dict, Setup, list[str]]:
    """The shipped model, the trained one-level models, val's codes, the val grid and its choices, the
    setup they make, and a note for each one-level model that is not trained."""
    hier = load_checkpoint("hier", directory)
    one_level, skipped = {}, []
    for name in ONE_LEVEL:
        try:
            one_level[name] = load_checkpoint(name, directory)
        except CheckpointError:
            skipped.append(f"{name}: not trained")
    splits = dataset.splits
    val = hier.model.encode(splits["val"].images, with_conv7=True)
    tuned = tune(hier, val, splits["val"].labels)
    tuned["fusion"] = tune_fusion(hier, val, splits["val"].labels, tuned["best"])
    return hier, one_level, val, tuned, make_setup(dataset, hier, one_level, tuned), skipped


def evaluate_million(dataset: Dataset, checkpoints: Path | None = None, size: int = MILLION) -> dict:
    """The million's part of `evaluate_hier` on its own, for a million encoded after the rest was
    evaluated: its accuracy, K rule and speed rows, and the scale rows of the million and of the ten
    million modelled from it (`evaluate million` merges them into the hier result)."""
    directory = checkpoints or dataset.checkpoints
    _, _, val, _, setup, _ = prepare(dataset, directory)
    weights = setup.hier.model.cam_weights().numpy()
    million, why_not = million_parts(
        dataset, directory, setup, val, dataset.splits["val"].labels, weights, size
    )
    if million is None:
        raise MillionIncomplete(why_not)
    builders = scale_galleries(setup, {}, million, (million["codes"].n, million["modelled_n"]))
    scale = scale_rows(weights, setup.query, builders, setup.theta, setup.top_l)
    return {"million": million["json"], "scale": scale}


def merge_million(result: dict, part: dict) -> dict:
    """The hier result with the million's part in: its scale rows replace those of the same sizes (the
    uniform stand-ins), the ratios recomputed, and the note that the million was missing dropped."""
    sizes = {row["n"] for row in part["scale"]}
    scale = [row for row in result.get("scale", []) if row["n"] not in sizes] + part["scale"]
    bits = result["bits"]
    return {
        **result,
        "million": part["million"],
        "scale": sorted(scale, key=lambda row: row["n"]),
        "two_level_ratio": two_level_ratios(scale, bits["global"], bits["local"], result["L"]),
        "skipped": [note for note in result.get("skipped", []) if "million real codes" not in note],
    }


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
    scoring = FieldScoring(setup.q_labels, g_labels, field_protocols(setup.objects))
    parts = field_lengths(dataset, checkpoints, shipped, chosen, scoring)
    parts["hier_seeds"], missing = hier_seeds(dataset, checkpoints, shipped, scoring)
    parts["skipped"] += missing
    parts["field"] = {
        "tie_orders": TIE_ORDERS,
        "lengths": list(LENGTHS),
        "cutoff": CUTOFF,
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


def million_parts(
    dataset: Dataset,
    checkpoints: Path,
    setup: Setup,
    val,
    val_labels: np.ndarray,
    weights: np.ndarray,
    size: int = MILLION,
) -> tuple[dict | None, str | None]:
    """Accuracy on the million real codes (K by the val rule), their speed and ten million modelled
    from them; (None, why) where the million is not encoded."""
    try:
        codes = load_million(dataset, MILLION_MODELS, checkpoints, size)
    except (MillionIncomplete, CheckpointError) as error:
        return None, str(error)
    q = setup.query
    bits = (q.hier.global_bits.shape[1], q.hier.local_bits.shape[1])
    one_level = {name: q.one_level[name].shape[1] for name in MILLION_MODELS[1:] if name in q.one_level}
    indexes = million_eval.MillionIndexes.of(codes, bits, one_level)
    g_labels = np.asarray(codes.labels)
    val_q = np.arange(min(len(val_labels), 500))
    val_selected = cam_attention(setup.hier, val.take(val_q), setup.theta).orders[:, : setup.top_l]
    chosen = million_eval.choose_k(indexes, val.take(val_q), val_selected, val_labels[val_q], g_labels)
    selected = setup.cam.orders[:, : setup.top_l]
    methods = million_eval.million_accuracy(
        indexes,
        q.hier,
        q.one_level,
        selected,
        chosen["K"],
        setup.q_labels,
        codes,
        field_protocols(setup.objects),
    )
    packed = {key: np.asarray(codes.packed[key]) for key in ("hier.global", "hier.local")}
    speed = million_eval.speed_at(
        codes.n, packed, bits, weights, q.hier, setup.theta, setup.top_l, chosen["K"], "real"
    )
    timed = {
        int(row["method"].split("@")[1]): row["ms_per_query"]
        for row in speed
        if row["method"].startswith("hier_cam@") and row["threads"] == 1 and row["mode"] == "single"
    }
    full = next(r["ms_per_query"] for r in speed if r["method"] == "local_full" and r["threads"] == 1)
    tradeoff = million_eval.k_tradeoff(indexes, q.hier, selected, setup.q_labels, g_labels, timed, full)
    del indexes
    modelled = million_eval.modelled_gallery(codes)
    n_modelled = len(modelled["hier.global"])
    speed += million_eval.speed_at(
        n_modelled,
        modelled,
        bits,
        weights,
        q.hier,
        setup.theta,
        setup.top_l,
        chosen["K"],
        "modelled from real codes",
        ks=(chosen["K"],),
    )
    del modelled
    json = {
        "n": codes.n,
        "codes": "real",
        "models": list(MILLION_MODELS),
        "K_rule": chosen,
        "methods": methods,
        "k_tradeoff": tradeoff,
        "speed": speed,
        "bytes_read": {
            str(n): million_eval.bytes_read(*bits, setup.top_l, chosen["K"], n) for n in (codes.n, n_modelled)
        },
    }
    return {"json": json, "codes": codes, "K": chosen["K"], "modelled_n": n_modelled}, None


def scale_galleries(
    setup: Setup, real: dict[int, Codes], million: dict | None, sizes: tuple[int, ...]
) -> dict:
    """How each timed size's gallery is built: real codes (10k, 100k, the million), ten million modelled
    from the million, or uniform random codes where no real ones exist (multi-index hashing's best case)."""
    like = next(iter(real.values()), None)
    bits = (setup.query.hier.global_bits.shape[1], setup.query.hier.local_bits.shape[1])
    builders = {}
    for n in sizes:
        if n in real:
            builders[n] = lambda n=n: (real_gallery(real[n]), "real", setup.n_coarse)
        elif million is not None and n == million["codes"].n:
            packed = {key: np.asarray(million["codes"].packed[key]) for key in ("hier.global", "hier.local")}
            builders[n] = lambda packed=packed: (packed_gallery(packed, bits), "real", million["K"])
        elif million is not None and n == million["modelled_n"]:
            builders[n] = lambda: (
                packed_gallery(million_eval.modelled_gallery(million["codes"]), bits),
                "modelled from real codes",
                million["K"],
            )
        else:
            builders[n] = lambda n=n: (
                random_gallery(n, like, n <= EVERY_METHOD_UP_TO),
                "uniform",
                setup.n_coarse,
            )
    return builders


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
