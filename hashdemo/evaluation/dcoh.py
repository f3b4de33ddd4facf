"""`python -m hashdemo evaluate dcoh`: composed queries from query-split pairs against the gallery
(SPEC sec. 3).

Per operator, 1,000 seeded pairs whose target set T is non-empty and occurs in the gallery; relevance is
"gallery label set equals T". DCOH against the bitwise, label-route and oracle baselines.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from hashdemo.data.label_ops import OPERATORS, label_route_ranking
from hashdemo.data.outfits import load_outfits
from hashdemo.model.checkpoints import Checkpoint, load_checkpoint
from hashdemo.model.code_ops import chain_bits
from hashdemo.model.networks import signs_of
from hashdemo.retrieval.metrics import mean_average_precision
from hashdemo.retrieval.protocol import (
    composed_map,
    hamming_ranking,
    jaccard_at_k,
    sample_compositions,
    subset_scores,
)
from hashdemo.storage.locations import CHECKPOINT_DIR

ASSETS = Path(__file__).resolve().parents[2] / "assets"
COMPOSED_PAIRS = 1000  # per operator, from the query split


# Two spreads per model. "full": three training seeds, both phases retrained (the ablation's operators
# on the same seed's h(x), since phase 1 never sees the adversary). "operators": the shipped h(x), three
# seeds of the operator phase alone, so the two tables tell code noise from operator noise.
SPREADS = {
    "seeds": (
        "full",
        {
            "dcoh": ("dcoh", "dcoh_seed1", "dcoh_seed2"),
            "dcoh_no_adv": ("dcoh_no_adv", "dcoh_no_adv_seed1", "dcoh_no_adv_seed2"),
        },
    ),
    "operator_seeds": (
        "operators",
        {
            "dcoh": ("dcoh", "dcoh_ops1", "dcoh_ops2"),
            "dcoh_no_adv": ("dcoh_no_adv", "dcoh_no_adv_ops1", "dcoh_no_adv_ops2"),
        },
    ),
}
CHAINS = tuple(itertools.product(OPERATORS, OPERATORS))  # (A op B) op' C: every pair of operators
CHAIN_TRIPLES = 1000


def chain_name(chain: tuple[str, ...]) -> str:
    return " then ".join(chain)


def composed_codes(
    operators, chain: tuple[str, ...], bits: np.ndarray, ids: np.ndarray, learned: bool
) -> np.ndarray:
    """The composed code of each row of operand ids (n, len(chain) + 1): learned, or bitwise."""
    return chain_bits(operators if learned else None, chain, [bits[ids[:, i]] for i in range(ids.shape[1])])


def evaluate_dcoh(checkpoints: Path = CHECKPOINT_DIR) -> dict:
    names = dict.fromkeys(name for _, runs in SPREADS.values() for seeds in runs.values() for name in seeds)
    runs = {name: load_checkpoint(name, checkpoints) for name in names}
    dcoh, ablation = runs["dcoh"], runs["dcoh_no_adv"]
    splits = load_outfits()
    q_labels, g_labels = splits["query"].labels, splits["gallery"].labels
    # The ablation and the operator-only runs share their source's h(x): encode each distinct one once.
    encoded: dict[bytes, tuple] = {}
    codes = {}
    for name, run in runs.items():
        weights = b"".join(t.numpy().tobytes() for t in run.model.state_dict().values())
        if weights not in encoded:
            encoded[weights] = tuple(run.model.encode(splits[s].images) for s in ("query", "gallery"))
        codes[name] = encoded[weights]
    query, gallery = codes["dcoh"]
    gallery_sets = np.unique(g_labels, axis=0)
    rng = np.random.default_rng(0)
    operators_result = {}
    spreads = {
        key: {"kind": kind, **{method: {} for method in seeds}} for key, (kind, seeds) in SPREADS.items()
    }
    generated_all: dict[str, list[np.ndarray]] = {"dcoh": [], "dcoh_no_adv": []}
    for operator in OPERATORS:
        ids, targets = sample_compositions(q_labels, (operator,), COMPOSED_PAIRS, rng, gallery_sets)
        scores = {}
        for name, run in runs.items():
            q_codes, g_codes = codes[name]
            generated = composed_codes(run.operators, (operator,), q_codes.global_bits, ids, learned=True)
            scores[name] = composed_map(generated, targets, g_codes.global_bits, g_labels)
            if name in generated_all:
                generated_all[name].append(generated)
        for key, (_, seeds) in SPREADS.items():
            for method, seed_names in seeds.items():
                values = [scores[name]["map@100"] for name in seed_names]
                spreads[key][method][operator] = {
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values)),
                    "n": len(values),
                }
        row = {"dcoh": scores["dcoh"], "dcoh_no_adv": scores["dcoh_no_adv"]}
        row.update(baselines((operator,), ids, targets, query, gallery, g_labels, rng))
        row["pairs"] = len(targets)
        operators_result[operator] = row
    chains = {}
    chain_rng = np.random.default_rng(1)
    for chain in CHAINS:
        ids, targets = sample_compositions(q_labels, chain, CHAIN_TRIPLES, chain_rng, gallery_sets)
        row = {
            name: composed_map(
                composed_codes(runs[name].operators, chain, codes[name][0].global_bits, ids, learned=True),
                targets,
                codes[name][1].global_bits,
                g_labels,
            )
            for name in ("dcoh", "dcoh_no_adv")
        }
        row.update(baselines(chain, ids, targets, query, gallery, g_labels, chain_rng))
        row["triples"] = len(targets)
        chains[chain_name(chain)] = row
    distribution = {
        name: distribution_gap(run, codes[name][1].global_bits, np.concatenate(generated_all[name]))
        for name, run in (("dcoh", dcoh), ("dcoh_no_adv", ablation))
    }
    plot_pca(
        {name: (codes[name][1].global_bits, np.concatenate(g)) for name, g in generated_all.items()},
        ASSETS / "dcoh_pca.png",
    )
    ranked = hamming_ranking(query.global_bits, gallery.global_bits)
    single = {  # shares a label (the usual protocol), and the exact label set, as composed queries ask
        "map": mean_average_precision(ranked, q_labels, g_labels),
        "exact_map@100": mean_average_precision(ranked, q_labels, g_labels, exact=True, k=100),
    }
    subset = subset_scores(query, gallery, q_labels, g_labels)
    return {
        "bits": int(query.global_bits.shape[1]),
        "operators": operators_result,
        **spreads,
        "chains": chains,
        "single_image": single,
        "distribution": distribution,
        "subset": subset,
    }


def baselines(chain, ids, targets, query, gallery, g_labels, rng) -> dict:
    """bitwise, label_route and oracle for the compositions `ids` (n, len(chain) + 1) with targets T."""
    bitwise = composed_codes(None, chain, query.global_bits, ids, learned=False)
    return {
        "bitwise": composed_map(bitwise, targets, gallery.global_bits, g_labels),
        "label_route": label_route(chain, ids, query.label_probs, gallery.label_probs, targets, g_labels),
        "oracle": oracle(targets, gallery.global_bits, g_labels, rng),
    }


def label_route(
    chain: tuple[str, ...],
    ids: np.ndarray,
    query_probs: np.ndarray,
    gallery_probs: np.ndarray,
    targets: np.ndarray,
    g_labels: np.ndarray,
) -> dict[str, float]:
    """Predict labels, apply the set operations, rank the gallery by Jaccard with its predicted labels."""
    operands = [query_probs[ids[:, i]] for i in range(ids.shape[1])]
    ranked = label_route_ranking(chain, operands, gallery_probs, 100)[0]
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
