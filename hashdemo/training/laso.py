"""The LaSO-style peer's training (hashdemo.model.laso): on the frozen pooled features of DCOH's h(x),
the same train compositions as DCOH's operators (hashdemo.training.pairs), with LaSO's two kinds of
terms: the multi-label classifier, on real features and on every composed feature (target T), and a
mean squared error pulling a composed feature toward the mean real feature of T's train images."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hashdemo.data.label_ops import OPERATORS
from hashdemo.data.split import Split
from hashdemo.model.config import TrainConfig
from hashdemo.model.laso import compose_features, cosine_ranking
from hashdemo.model.networks import HashNet, encode_split
from hashdemo.model.registry import build_operators
from hashdemo.retrieval.metrics import mean_average_precision
from hashdemo.retrieval.protocol import sample_composed_pairs, validation_ids
from hashdemo.training.operators import operator_seed, set_means
from hashdemo.training.optim import adamw, update
from hashdemo.training.pairs import TrainPairs, compose, compose_operands

LASO_LR = 1e-3  # Adam's usual rate for small MLPs (LaSO trains its operators with Adam)


def fit_laso(cfg: TrainConfig, model: HashNet, train: Split, val: Split, progress: bool = True) -> dict:
    """The operators and classifier on h(x)'s frozen train features; returns the state and the metrics."""
    torch.manual_seed(operator_seed(cfg))
    n_train = len(train.images) if cfg.train_size is None else min(cfg.train_size, len(train.images))
    features = torch.from_numpy(encode_split(model, train, n_train).pooled)  # (N, C)
    labels = train.labels[:n_train]
    pairs = TrainPairs(labels, cfg.operator_batch, np.random.default_rng(operator_seed(cfg)))
    prototypes = set_means(features, pairs.inverse)  # (S, C) each train label set's mean feature
    set_labels = torch.from_numpy(labels[np.unique(pairs.inverse, return_index=True)[1]]).float()  # (S, n)
    operators, _ = build_operators(cfg)
    optimizer = adamw(operators.parameters(), cfg, lr=LASO_LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.operator_steps)
    started, sums = time.perf_counter(), {}
    for _ in tqdm(range(cfg.operator_steps), desc="laso operators", disable=not progress):
        batches = pairs.step()
        composed = [compose(operators, chain, features[a], features[b]) for chain, a, b, _ in batches]
        targets = [t for *_, t in batches]
        for chain, ids, t in pairs.chain_step(cfg.chain_batch) if cfg.chain_batch > 0 else []:
            composed.append(compose_operands(operators, chain, [features[i] for i in ids.T], binarize=False))
            targets.append(t)  # the same chains as DCOH's operators, on float features
        composed, targets = torch.cat(composed), torch.from_numpy(np.concatenate(targets))
        real = torch.from_numpy(pairs.rng.integers(0, n_train, len(composed)))
        terms = {
            "classify_real": F.binary_cross_entropy_with_logits(
                operators.classifier(features[real]), torch.from_numpy(labels[real.numpy()]).float()
            ),
            "classify_composed": F.binary_cross_entropy_with_logits(
                operators.classifier(composed), set_labels[targets]
            ),
            "reconstruct": F.mse_loss(composed, prototypes[targets]),
        }
        update(optimizer, sum(terms.values()))
        scheduler.step()
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + value.item()
    return {
        "state": {"operators": operators.state_dict()},
        "metrics": {
            "loss": {name: value / cfg.operator_steps for name, value in sums.items()},
            "val": laso_validation(model, operators, val),
            "train_seconds": round(time.perf_counter() - started, 1),
        },
    }


def laso_validation(model: HashNet, operators, split: Split, n_pairs: int = 300) -> dict[str, float]:
    """Val composed mAP@100 per operator by cosine on the features, as DCOH's operators are scored on val."""
    features = encode_split(model, split).pooled
    q, db = validation_ids(len(split.labels))
    rng, scores = np.random.default_rng(0), {}
    for operator in OPERATORS:
        a, b, targets = sample_composed_pairs(
            split.labels[q], operator, n_pairs, rng, np.unique(split.labels[db], axis=0)
        )
        composed = compose_features(operators, (operator,), [features[q][a], features[q][b]])
        ranked = cosine_ranking(composed, features[db], 100)
        scores[operator] = mean_average_precision(ranked, targets, split.labels[db], exact=True, k=100)
    return {**scores, "selection": float(np.mean(list(scores.values())))}
