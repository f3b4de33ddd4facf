"""Method 2's evaluation on any dataset (`python -m hashdemo evaluate dcoh`): composed queries from
query-split pairs against the gallery (docs/methods.md, "Evaluation").

Per operator, 1,000 seeded pairs whose target set T is non-empty and occurs in the gallery; relevance is
"gallery label set equals T". DCOH against the bitwise, label-route and oracle baselines.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hashdemo.data.dataset import Dataset
from hashdemo.data.label_ops import OPERATORS, label_route_ranking
from hashdemo.evaluation.references import (
    Exemplars,
    binarise,
    laso_threshold_rule,
    majority_code,
)
from hashdemo.evaluation.scores import spread
from hashdemo.model.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from hashdemo.model.code_ops import chain_bits
from hashdemo.model.laso import compose_features, cosine_ranking
from hashdemo.model.networks import Encoded, signs_of
from hashdemo.retrieval.metrics import mean_average_precision
from hashdemo.retrieval.protocol import (
    composed_map,
    hamming_ranking,
    jaccard_at_k,
    sample_compositions,
    subset_scores,
)

COMPOSED_PAIRS = 1000  # per operator, from the query split
PCA_POINTS = 2000  # per cloud of the PCA figure


# Two spreads per model. "full": three training seeds, both phases retrained (the ablation's operators
# on the same seed's h(x), since phase 1 never sees the adversary). "operators": the shipped h(x), three
# seeds of the operator phase alone, so the two tables tell code noise from operator noise.
SHIPPED = ("dcoh", "dcoh_no_adv")  # the method and its ablation: the rows of every table
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
PeerRows = Callable[[tuple[str, ...], np.ndarray, np.ndarray], dict]  # (chain, operand ids, T) -> rows
CHAINS = tuple(itertools.product(OPERATORS, OPERATORS))  # (A op B) op' C: every pair of operators
CHAIN_TRIPLES = 1000


def chain_name(chain: tuple[str, ...]) -> str:
    return " then ".join(chain)


def composed_codes(
    operators, chain: tuple[str, ...], bits: np.ndarray, ids: np.ndarray, learned: bool
) -> np.ndarray:
    """The composed code of each row of operand ids (n, len(chain) + 1): learned, or bitwise."""
    return chain_bits(operators if learned else None, chain, [bits[ids[:, i]] for i in range(ids.shape[1])])


def evaluate_dcoh(dataset: Dataset, checkpoints: Path | None = None) -> dict:
    """Every operator and chain on seeded query-split compositions against the gallery (DCOH against
    its baselines), the seed spreads, h(x)'s single-image mAP and how far operator outputs sit from real
    codes. The keys are the JSON's, plus "pca": the PCA figure's points (`pca_points`, numpy arrays,
    drawn by `hashdemo.evaluation.figures.dcoh_pca` and never written to the JSON)."""
    runs, skipped = load_runs(checkpoints or dataset.checkpoints)
    laso = optional_run("laso", checkpoints or dataset.checkpoints, skipped)
    splits = dataset.splits
    codes = encode_runs({**runs, **({} if laso is None else {"laso": laso})}, splits)
    query, gallery = codes["dcoh"]
    q_labels, g_labels = splits["query"].labels, splits["gallery"].labels
    gallery_sets = np.unique(g_labels, axis=0)
    laso_runs = laso_seed_runs(laso, checkpoints or dataset.checkpoints, skipped)
    laso_rule = (
        None
        if laso is None
        else laso_threshold_rule(
            laso.operators, laso.model.encode(splits["val"].images).pooled, splits["val"].labels
        )
    )
    peer = feature_peer(laso_runs, *codes.get("laso", (None, None)), g_labels, laso_rule)
    exemplars = Exemplars.of(gallery.global_bits, g_labels)
    scoring = Scoring(runs, codes, q_labels, g_labels, gallery_sets, peer, exemplars)
    operators, spreads, generated = score_operators(scoring)
    laso_spread = laso_seeds(operators, laso_runs)
    skipped += [
        f"{key} of {name}: {note}" for key, notes in spreads.pop("missing").items() for name, note in notes
    ]
    chains = score_chains(scoring)
    real = {name: codes[name][1].global_bits for name in generated}
    ranked = hamming_ranking(query.global_bits, gallery.global_bits)
    single = {  # shares a label (the usual protocol), and the exact label set, as composed queries ask
        "map": mean_average_precision(ranked, q_labels, g_labels),
        "exact_map@100": mean_average_precision(ranked, q_labels, g_labels, exact=True, k=100),
    }
    return {
        "dataset": dataset.name,
        "classes": list(dataset.classes),
        "bits": int(query.global_bits.shape[1]),
        "operators": operators,
        **spreads,
        **(
            {}
            if laso_rule is None
            else {
                "laso_seeds": laso_spread,
                "laso_bits_rule": {"rule": laso_rule["rule"], "val_grid": laso_rule["val_grid"]},
            }
        ),
        "chains": chains,
        "single_image": single,
        "distribution": {
            name: distribution_gap(runs[name], real[name], generated[name]) for name in generated
        },
        "subset": subset_scores(query, gallery, q_labels, g_labels),
        "pca": {name: pca_points(real[name], generated[name]) for name in generated},
        "skipped": skipped,
    }


def load_runs(checkpoints: Path) -> tuple[dict[str, Checkpoint], list[str]]:
    """`dcoh` and every other checkpoint the spreads name that is trained (the ablation second), and a
    note for each that is not."""
    names = dict.fromkeys(name for _, runs in SPREADS.values() for seeds in runs.values() for name in seeds)
    runs, skipped = {"dcoh": load_checkpoint("dcoh", checkpoints)}, []
    for name in names:
        try:
            runs[name] = runs.get(name) or load_checkpoint(name, checkpoints)
        except CheckpointError:
            skipped.append(f"{name}: not trained")
    return runs, skipped


def encode_runs(runs: dict[str, Checkpoint], splits: dict) -> dict[str, tuple[Encoded, Encoded]]:
    """Each run's (query, gallery) codes. The ablation and the operator-only runs share their source's
    h(x): each distinct one is encoded once."""
    encoded: dict[bytes, tuple[Encoded, Encoded]] = {}
    codes = {}
    for name, run in runs.items():
        weights = b"".join(t.numpy().tobytes() for t in run.model.state_dict().values())
        if weights not in encoded:
            encoded[weights] = tuple(run.model.encode(splits[s].images) for s in ("query", "gallery"))
        codes[name] = encoded[weights]
    return codes


@dataclass(frozen=True)
class Scoring:
    """What scoring compositions needs: the runs, their (query, gallery) codes, the labels, the label sets
    the gallery holds (a target must be one) and the feature peer's rows."""

    runs: dict[str, Checkpoint]
    codes: dict[str, tuple[Encoded, Encoded]]
    q_labels: np.ndarray
    g_labels: np.ndarray
    gallery_sets: np.ndarray
    peer: PeerRows
    exemplars: Exemplars  # the best exemplar of each label set the gallery holds

    def parts(self) -> tuple:
        return self.runs, self.codes, self.q_labels, self.g_labels, self.gallery_sets, self.peer


def score_operators(scoring: Scoring) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """Per operator, COMPOSED_PAIRS seeded pairs: DCOH, its ablation and the baselines (the operators'
    rows), every run's map@100 (the seed spreads), and the shipped models' operator outputs."""
    runs, codes, q_labels, g_labels, gallery_sets, peer = scoring.parts()
    rng = np.random.default_rng(0)
    query, gallery = codes["dcoh"]
    rows = {}
    complete = {
        key: {m: s for m, s in seeds.items() if set(s) <= set(runs)} for key, (_, seeds) in SPREADS.items()
    }
    spreads = {key: {"kind": SPREADS[key][0], **{m: {} for m in seeds}} for key, seeds in complete.items()}
    generated: dict[str, list[np.ndarray]] = {name: [] for name in SHIPPED if name in runs}
    for operator in OPERATORS:
        ids, targets = sample_compositions(q_labels, (operator,), COMPOSED_PAIRS, rng, gallery_sets)
        if len(targets) == 0:
            rows[operator] = {"pairs": 0, "note": "no query pair has a target set the gallery holds"}
            continue
        scores = {}
        for name, run in runs.items():
            q_codes, g_codes = codes[name]
            outputs = composed_codes(run.operators, (operator,), q_codes.global_bits, ids, learned=True)
            scores[name] = composed_map(outputs, targets, g_codes.global_bits, g_labels)
            if name in generated:
                generated[name].append(outputs)
        for key, seeds in complete.items():
            for method, seed_names in seeds.items():
                spreads[key][method][operator] = spread([scores[name]["map@100"] for name in seed_names])
        row = {name: scores[name] for name in generated}
        row.update(baselines((operator,), ids, targets, query, gallery, g_labels, rng, scoring.exemplars))
        row.update(peer((operator,), ids, targets))
        row["pairs"] = len(targets)
        rows[operator] = row
    spreads["missing"] = {
        key: [(m, "not every seed is trained") for m in SPREADS[key][1] if m not in complete[key]]
        for key in SPREADS
    }
    return rows, spreads, {name: np.concatenate(outputs) for name, outputs in generated.items() if outputs}


def score_chains(scoring: Scoring) -> dict[str, dict]:
    """Per chain (A op B) op' C, CHAIN_TRIPLES seeded triples: DCOH, its ablation and the baselines."""
    runs, codes, q_labels, g_labels, gallery_sets, peer = scoring.parts()
    query, gallery = codes["dcoh"]
    chains = {}
    rng = np.random.default_rng(1)
    for chain in CHAINS:
        ids, targets = sample_compositions(q_labels, chain, CHAIN_TRIPLES, rng, gallery_sets)
        if len(targets) == 0:
            chains[chain_name(chain)] = {
                "triples": 0,
                "note": "no query triple has a target set the gallery holds",
            }
            continue
        row = {
            name: composed_map(
                composed_codes(runs[name].operators, chain, codes[name][0].global_bits, ids, learned=True),
                targets,
                codes[name][1].global_bits,
                g_labels,
            )
            for name in SHIPPED
            if name in runs
        }
        row.update(baselines(chain, ids, targets, query, gallery, g_labels, rng, scoring.exemplars))
        row.update(peer(chain, ids, targets))
        row["triples"] = len(targets)
        chains[chain_name(chain)] = row
    return chains


def baselines(chain, ids, targets, query, gallery, g_labels, rng, exemplars: Exemplars) -> dict:
    """bitwise, label_route, the oracle and the references for the compositions `ids`
    (n, len(chain) + 1) with targets T."""
    bitwise = composed_codes(None, chain, query.global_bits, ids, learned=False)
    return {
        "bitwise": composed_map(bitwise, targets, gallery.global_bits, g_labels),
        "label_route": label_route(chain, ids, query.label_probs, gallery.label_probs, targets, g_labels),
        "oracle": oracle(targets, gallery.global_bits, g_labels, rng),
        "majority_code": majority_code(targets, gallery.global_bits, g_labels),
        "best_exemplar": exemplars.score(targets, g_labels),
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


LASO_SEEDS = ("laso", "laso_ops1", "laso_ops2")  # the shipped peer and two operator-phase seeds


def laso_seed_runs(laso: Checkpoint | None, checkpoints: Path, skipped: list[str]) -> dict[str, Checkpoint]:
    """The LaSO-style peer and the operator seeds that are trained (all on DCOH's h(x))."""
    if laso is None:
        return {}
    runs = {"laso": laso}
    for name in LASO_SEEDS[1:]:
        run = optional_run(name, checkpoints, skipped)
        if run is not None:
            runs[name] = run
    return runs


def feature_peer(
    laso_runs: dict[str, Checkpoint],
    query: Encoded | None,
    gallery: Encoded | None,
    g_labels: np.ndarray,
    rule: dict | None,
) -> PeerRows:
    """The LaSO-style peer's rows for a batch of compositions: its operators on the operands' pooled
    features, the gallery ranked by cosine on its own features (`laso`), and the same composed features
    and gallery features binarised by the val-chosen rule, ranked by Hamming distance (`laso_bits`, as
    many bits as the features). Operator seeds beside the shipped peer get `<row>@<seed run>` rows
    (gathered into `laso_seeds`). No row when the peer is not trained."""

    def rows(chain: tuple[str, ...], ids: np.ndarray, targets: np.ndarray) -> dict:
        out = {}
        operands = [query.pooled[ids[:, i]] for i in range(ids.shape[1])] if laso_runs else []
        for name, run in laso_runs.items():
            composed = compose_features(run.operators, chain, operands)
            ranked = cosine_ranking(composed, gallery.pooled, 100)
            floats = {
                "map@100": mean_average_precision(ranked, targets, g_labels, exact=True, k=100),
                "jaccard@10": jaccard_at_k(ranked, targets, g_labels),
            }
            thresholds = rule["thresholds"]
            bits = composed_map(
                binarise(composed, thresholds), targets, binarise(gallery.pooled, thresholds), g_labels
            )
            suffix = "" if name == "laso" else f"@{name}"
            out[f"laso{suffix}"], out[f"laso_bits{suffix}"] = floats, bits
        return out

    return rows


def laso_seeds(operators: dict, laso_runs: dict[str, Checkpoint]) -> dict:
    """{operator: {"laso", "laso_bits": spread}} over the peer's operator seeds; the seed rows leave the
    operators' rows."""
    spreads = {}
    for operator, row in operators.items():
        if not row.get("pairs") or "laso" not in row:
            continue
        spreads[operator] = {}
        for kind in ("laso", "laso_bits"):
            values = [row[kind]["map@100"]] + [
                row.pop(f"{kind}@{name}")["map@100"] for name in laso_runs if name != "laso"
            ]
            spreads[operator][kind] = spread(values)
    return spreads


def optional_run(name: str, checkpoints: Path, skipped: list[str]) -> Checkpoint | None:
    try:
        return load_checkpoint(name, checkpoints)
    except CheckpointError:
        skipped.append(f"{name}: not trained")
        return None


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


def pca_points(real_bits: np.ndarray, generated_bits: np.ndarray) -> dict[str, np.ndarray]:
    """The first PCA_POINTS real codes and operator outputs, (n, 2) each, on the real codes' first two
    principal components (the seed's distribution figure)."""
    real, generated = real_bits.astype(np.float32), generated_bits.astype(np.float32)
    mean = real.mean(0)
    _, _, vt = np.linalg.svd(real - mean, full_matrices=False)
    return {
        "real": (real[:PCA_POINTS] - mean) @ vt[:2].T,
        "generated": (generated[:PCA_POINTS] - mean) @ vt[:2].T,
    }
