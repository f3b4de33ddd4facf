"""`python -m hashdemo.evaluate hier|dcoh --json PATH`: the query split against the gallery.

theta, L and K are chosen on the val split; train and val never serve as test data. The result
also goes into the checkpoint's metrics.json under "test", beside a small "subset" figure that
the tests recompute from the shipped weights.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from hashdemo.app.report import format_tables
from hashdemo.cam import attend_code
from hashdemo.checkpoints import (
    CHECKPOINT_DIR,
    Checkpoint,
    load_checkpoint,
)
from hashdemo.cli.timing import median_ms
from hashdemo.code_ops import bitwise_bits, operator_bits
from hashdemo.data import load_outfits
from hashdemo.files import write_atomic
from hashdemo.label_ops import OPERATORS, compose_labels, jaccard
from hashdemo.models import Encoded, signs_of
from hashdemo.retrieval.metrics import mean_average_precision, precision_at_k, precision_recall_curve
from hashdemo.retrieval.protocol import (
    composed_map,
    hamming_ranking,
    hierarchical_ranking,
    jaccard_at_k,
    sample_composed_pairs,
    validation_ids,
)

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
THETAS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
TOP_LS = (8, 16, 24, 32, 48)
COARSE_KS = (50, 100, 200, 500, 1000)
RANDOM_SEEDS = 5  # hier_random is averaged over this many draws of L random bits per query
COMPOSED_PAIRS = 1000  # per operator, from the query split
SUBSET = {"queries": 100, "gallery": 1000}  # what tests recompute from the shipped weights


def selection_orders(loaded: Checkpoint, encoded: Encoded, theta: float) -> np.ndarray:
    """(N, C): each image's Conv7 channels by overlap score, high to low; its first L are Psi_q."""
    weights = loaded.model.cam_weights().numpy()
    channels = encoded.conv7.shape[1]
    return np.stack(
        [
            attend_code(conv7, weights, bits, theta, channels).selected
            for conv7, bits in zip(encoded.conv7, encoded.global_bits, strict=True)
        ]
    )


def random_orders(n: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n, channels)), axis=1)


def ranking_scores(ranked: np.ndarray, q_labels: np.ndarray, db_labels: np.ndarray) -> dict[str, float]:
    return {
        "map": mean_average_precision(ranked, q_labels, db_labels),
        "map_exact": mean_average_precision(ranked, q_labels, db_labels, exact=True),
        "map@100": mean_average_precision(ranked, q_labels, db_labels, k=100),
        "p@10": precision_at_k(ranked, q_labels, db_labels, 10),
    }


def ms_per_query(search: Callable[[], object], n_queries: int) -> float:
    """Wall time of producing every query's top 100, per query (median of 3 runs)."""
    return round(median_ms(search, 3, warmup=False) / n_queries, 4)


def subset_scores(
    query: Encoded,
    gallery: Encoded,
    q_labels: np.ndarray,
    g_labels: np.ndarray,
    selected: np.ndarray | None = None,
    n_coarse: int | None = None,
) -> dict:
    """mAP of the first 100 queries against the first 1000 gallery images: small enough for a test
    to recompute from the shipped weights (global code; and the CAM re-rank when `selected` is given)."""
    q, g = np.arange(SUBSET["queries"]), np.arange(SUBSET["gallery"])
    scores = {
        **SUBSET,
        "global_map": mean_average_precision(
            hamming_ranking(query.global_bits[q], gallery.global_bits[g]), q_labels[q], g_labels[g]
        ),
    }
    if selected is not None:
        ranked = hierarchical_ranking(query.take(q), gallery.take(g), selected[q], min(n_coarse, len(g)))
        scores["hier_cam_map"] = mean_average_precision(ranked, q_labels[q], g_labels[g])
    return scores


def tune_hier(loaded: Checkpoint, val: Encoded, val_labels: np.ndarray) -> dict:
    """Grid over theta, L, K of the CAM-selected re-rank, scored by mAP on val (500 queries vs 1500)."""
    q, db = validation_ids(len(val_labels))
    grid = []
    for theta in THETAS:
        orders = selection_orders(loaded, val.take(q), theta)
        for top_l in TOP_LS:
            for n_coarse in COARSE_KS:
                ranked = hierarchical_ranking(val.take(q), val.take(db), orders[:, :top_l], n_coarse)
                grid.append(
                    {
                        "theta": theta,
                        "L": top_l,
                        "K": n_coarse,
                        "val_map": mean_average_precision(ranked, val_labels[q], val_labels[db]),
                    }
                )
    return {"best": max(grid, key=lambda row: row["val_map"]), "grid": grid}


def evaluate_hier(checkpoints: Path = CHECKPOINT_DIR) -> dict:
    hier, single = load_checkpoint("hier", checkpoints), load_checkpoint("single_level", checkpoints)
    splits = load_outfits()
    val = hier.model.encode(splits["val"].images, with_conv7=True)
    tuned = tune_hier(hier, val, splits["val"].labels)
    theta, top_l, n_coarse = (tuned["best"][key] for key in ("theta", "L", "K"))
    query = hier.model.encode(splits["query"].images, with_conv7=True)
    gallery = hier.model.encode(splits["gallery"].images)
    q_labels, g_labels = splits["query"].labels, splits["gallery"].labels
    n_q, n_bits_global, n_bits_local = len(q_labels), query.global_bits.shape[1], query.local_bits.shape[1]

    def select_cam() -> np.ndarray:
        return selection_orders(hier, query, theta)[:, :top_l]

    cam_selected = select_cam()
    single_query = single.model.encode(splits["query"].images)
    single_gallery = single.model.encode(splits["gallery"].images)
    pooled_q = query.pooled / np.linalg.norm(query.pooled, axis=1, keepdims=True)
    pooled_g = gallery.pooled / np.linalg.norm(gallery.pooled, axis=1, keepdims=True)

    def cosine(k: int | None) -> np.ndarray:
        return np.argsort(-(pooled_q @ pooled_g.T), axis=1, kind="stable")[:, :k]

    rankers = {
        "global": (lambda k: hamming_ranking(query.global_bits, gallery.global_bits, k), n_bits_global),
        "local_full": (lambda k: hamming_ranking(query.local_bits, gallery.local_bits, k), n_bits_local),
        "hier_cam": (
            lambda k: hierarchical_ranking(query, gallery, cam_selected, n_coarse, k),
            n_bits_global + top_l,
        ),
        "single_level": (
            lambda k: hamming_ranking(single_query.global_bits, single_gallery.global_bits, k),
            n_bits_global,
        ),
        "float_cosine": (cosine, None),
    }
    methods = {}
    for name, (rank, bits) in rankers.items():
        methods[name] = {
            **ranking_scores(rank(None), q_labels, g_labels),
            "bits_compared": bits,
            "ms_per_query": ms_per_query(lambda rank=rank: rank(100), n_q),
        }
    # the method's timing includes computing the attention and the selection from the Conv7 maps
    methods["hier_cam"]["ms_per_query"] += ms_per_query(select_cam, n_q)
    random_runs = [
        ranking_scores(
            hierarchical_ranking(query, gallery, random_orders(n_q, n_bits_local, seed)[:, :top_l], n_coarse),
            q_labels,
            g_labels,
        )
        for seed in range(RANDOM_SEEDS)
    ]
    methods["hier_random"] = {
        **{key: float(np.mean([run[key] for run in random_runs])) for key in random_runs[0]},
        "map_std": float(np.std([run["map"] for run in random_runs])),
        "bits_compared": n_bits_global + top_l,
        # no attention to compute: only the two-level search
        "ms_per_query": ms_per_query(
            lambda: hierarchical_ranking(
                query, gallery, random_orders(n_q, n_bits_local, 0)[:, :top_l], n_coarse, 100
            ),
            n_q,
        ),
    }
    curves = {}
    for name in ("global", "local_full", "hier_cam", "float_cosine"):
        precision, recall = precision_recall_curve(rankers[name][0](None), q_labels, g_labels)
        curves[name] = {"precision": precision.tolist(), "recall": recall.tolist()}
    subset = subset_scores(query, gallery, q_labels, g_labels, cam_selected, n_coarse)
    return {
        "bits": {"global": n_bits_global, "local": n_bits_local},
        "theta": theta,
        "L": top_l,
        "K": n_coarse,
        "methods": methods,
        "val_grid": tuned["grid"],
        "pr_curves": curves,
        "subset": subset,
    }


def evaluate_dcoh(checkpoints: Path = CHECKPOINT_DIR) -> dict:
    dcoh, ablation = load_checkpoint("dcoh", checkpoints), load_checkpoint("dcoh_no_adv", checkpoints)
    splits = load_outfits()
    q_labels, g_labels = splits["query"].labels, splits["gallery"].labels
    codes = {
        name: (loaded.model.encode(splits["query"].images), loaded.model.encode(splits["gallery"].images))
        for name, loaded in (("dcoh", dcoh), ("dcoh_no_adv", ablation))
    }
    query, gallery = codes["dcoh"]
    gallery_sets = np.unique(g_labels, axis=0)
    rng = np.random.default_rng(0)
    operators_result = {}
    generated_all: dict[str, list[np.ndarray]] = {"dcoh": [], "dcoh_no_adv": []}
    for operator in OPERATORS:
        a, b, targets = sample_composed_pairs(q_labels, operator, COMPOSED_PAIRS, rng, gallery_sets)
        row = {}
        for name, loaded in (("dcoh", dcoh), ("dcoh_no_adv", ablation)):
            q_codes, g_codes = codes[name]
            generated = operator_bits(
                loaded.operators, operator, q_codes.global_bits[a], q_codes.global_bits[b]
            )
            row[name] = composed_map(generated, targets, g_codes.global_bits, g_labels)
            generated_all[name].append(generated)
        bitwise = bitwise_bits(operator, query.global_bits[a], query.global_bits[b])
        row["bitwise"] = composed_map(bitwise, targets, gallery.global_bits, g_labels)
        row["label_route"] = label_route(
            operator, query.label_probs[a], query.label_probs[b], gallery.label_probs, targets, g_labels
        )
        row["oracle"] = oracle(targets, gallery.global_bits, g_labels, rng)
        row["pairs"] = len(targets)
        operators_result[operator] = row
    distribution = {
        name: distribution_gap(loaded, codes[name][1].global_bits, np.concatenate(generated_all[name]))
        for name, loaded in (("dcoh", dcoh), ("dcoh_no_adv", ablation))
    }
    plot_pca(
        {name: (codes[name][1].global_bits, np.concatenate(g)) for name, g in generated_all.items()},
        ASSETS / "dcoh_pca.png",
    )
    single = mean_average_precision(
        hamming_ranking(query.global_bits, gallery.global_bits), q_labels, g_labels
    )
    subset = subset_scores(query, gallery, q_labels, g_labels)
    return {
        "bits": int(query.global_bits.shape[1]),
        "operators": operators_result,
        "single_image": {"map": single},
        "distribution": distribution,
        "subset": subset,
    }


def label_route(
    operator: str,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    gallery_probs: np.ndarray,
    targets: np.ndarray,
    g_labels: np.ndarray,
) -> dict[str, float]:
    """Predict labels, apply the set operation, rank the gallery by Jaccard with its predicted labels."""
    predicted = compose_labels(operator, (probs_a > 0.5).astype(np.uint8), (probs_b > 0.5).astype(np.uint8))
    similarity = jaccard(predicted, (gallery_probs > 0.5).astype(np.uint8))
    ranked = np.argsort(-similarity, axis=1, kind="stable")[:, :100]
    return {
        "map@100": mean_average_precision(ranked, targets, g_labels, exact=True, k=100),
        "jaccard@10": jaccard_at_k(ranked, targets, g_labels),
    }


def oracle(
    targets: np.ndarray, gallery_bits: np.ndarray, g_labels: np.ndarray, rng: np.random.Generator
) -> dict[str, float]:
    """Query with a real gallery code whose label set is T (that image itself left out of its results)."""
    chosen = np.array([rng.choice(np.flatnonzero((g_labels == t).all(1))) for t in targets])
    ranked = hamming_ranking(gallery_bits[chosen], gallery_bits, 101)
    ranked = np.array([row[row != c][:100] for row, c in zip(ranked, chosen, strict=True)])
    return {
        "map@100": mean_average_precision(ranked, targets, g_labels, exact=True, k=100),
        "jaccard@10": jaccard_at_k(ranked, targets, g_labels),
    }


@torch.no_grad()
def distribution_gap(
    loaded: Checkpoint, real_bits: np.ndarray, generated_bits: np.ndarray
) -> dict[str, float | None]:
    """How far operator outputs are from real gallery codes: the per-bit mean gap, and the accuracy
    of the model's own trained discriminator (None for the ablation, whose D never trained)."""
    gap = float(np.abs(real_bits.mean(0) - generated_bits.mean(0)).mean())
    if loaded.config.adv_weight == 0:
        return {"discriminator_accuracy": None, "per_bit_mean_gap": gap}

    real_ok = (loaded.discriminator(signs_of(real_bits)) > 0).float().mean().item()
    fake_ok = (loaded.discriminator(signs_of(generated_bits)) <= 0).float().mean().item()
    return {"discriminator_accuracy": (real_ok + fake_ok) / 2, "per_bit_mean_gap": gap}


def plot_pca(codes: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """2-D PCA of real gallery codes against operator outputs, one panel per model (the seed's
    distribution figure); the axes are the real codes' first two principal components."""
    fig = Figure(figsize=(5 * len(codes), 5))
    axes = fig.subplots(1, len(codes))
    jitter = np.random.default_rng(0)
    for ax, (name, (real_bits, generated_bits)) in zip(np.atleast_1d(axes), codes.items(), strict=True):
        real, generated = real_bits.astype(np.float32), generated_bits.astype(np.float32)
        mean = real.mean(0)
        _, _, vt = np.linalg.svd(real - mean, full_matrices=False)
        for data, label, color in (
            (real, "real codes h(x)", "tab:blue"),
            (generated, "operator outputs", "tab:orange"),
        ):
            xy = (data[:2000] - mean) @ vt[:2].T + jitter.normal(0, 0.05, (min(len(data), 2000), 2))
            ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.4, label=label, color=color)
        ax.set(title=f"{name}: real vs generated codes (PCA)", xlabel="PC 1", ylabel="PC 2")
        ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


EVALUATIONS = {"hier": evaluate_hier, "dcoh": evaluate_dcoh}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method", choices=sorted(EVALUATIONS))
    parser.add_argument("--json", type=Path, help="where to write the full result")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = EVALUATIONS[args.method](args.checkpoints)
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
    metrics_path = args.checkpoints / args.method / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["test"] = result
    write_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(format_tables(args.method, result))


if __name__ == "__main__":
    main()
