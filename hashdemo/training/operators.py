"""DCOH's operator phase (method 2, docs/methods.md): the union, intersection and difference operators learn
on the frozen codes of a trained h(x), with the similarity and adversarial losses."""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from hashdemo.data.split import Split
from hashdemo.model import losses
from hashdemo.model.config import TrainConfig
from hashdemo.model.networks import HashNet, encode_split, signs_of
from hashdemo.model.registry import build_operators, name_of
from hashdemo.retrieval.protocol import dcoh_validation
from hashdemo.training.optim import adamw, update
from hashdemo.training.pairs import TrainPairs, compose, compose_operands


class OperatorTraining:
    """DCOH phase 2 (docs/methods.md, method 2): the operators learn on the frozen train codes (+-1).

    Their losses never reach h(x) (early on their outputs are noise, and letting that reach h(x)
    wrecked the real codes), so they train on codes computed once: thousands of pairs a second.
    Loss 1 (similarity), as a classification over label sets: a generated code's scaled inner
    products with the prototypes (the mean real code of every train label set) go through a softmax
    whose target is the prototype of its label set T; this asks directly that T's real codes be the
    nearest, which composed retrieval needs (it beat the graded pairwise likelihood on val by far:
    docs/methods.md, method 2). Loss 3: D tells real codes from operator outputs.
    Loss 2 (labels predictable from the code) is h(x)'s classifier, trained in phase 1.
    """

    def __init__(self, cfg: TrainConfig, codes: np.ndarray, labels: np.ndarray):
        self.cfg = cfg
        self.rng = np.random.default_rng(operator_seed(cfg))
        self.train = TrainPairs(labels, cfg.operator_batch, self.rng)
        self.signs = signs_of(codes)  # (N, K)
        self.set_keys = self.train.set_keys
        self.prototypes = set_means(
            self.signs, self.train.inverse
        )  # (S, K): each train label set's mean code
        self.operators, self.discriminator = build_operators(cfg)
        self.optimizers = [adamw(self.operators.parameters(), cfg, lr=cfg.operator_lr)]
        if cfg.adv_weight > 0:  # the ablation never trains D
            self.optimizers.append(
                torch.optim.AdamW(self.discriminator.parameters(), cfg.operator_lr, betas=(0.5, 0.999))
            )

    def pairs(self, operator: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.train.pairs(operator)

    def step(self) -> dict[str, float]:
        s = self.signs
        batches = self.train.step()
        generated = [compose(self.operators, chain, s[a], s[b]) for chain, a, b, _ in batches]
        targets = [t for *_, t in batches]
        if self.cfg.chain_batch > 0:  # every chain of two operators, a generated first operand
            for chain, ids, t in self.train.chain_step(self.cfg.chain_batch):
                generated.append(compose_operands(self.operators, chain, [s[i] for i in ids.T]))
                targets.append(t)
        generated = torch.cat(generated)
        targets = torch.from_numpy(np.concatenate(targets))
        logits = generated @ self.prototypes.T * (self.cfg.logit_range / self.cfg.bits)
        terms = {"similarity": torch.nn.functional.cross_entropy(logits, targets)}
        # D compares binary codes, as the gallery holds them; the straight-through sign passes its
        # gradient to the operators unchanged.
        generated_binary = generated + (torch.where(generated > 0, 1.0, -1.0) - generated).detach()
        total = terms["similarity"]
        if self.cfg.adv_weight > 0:
            self.discriminator.requires_grad_(False)
            terms["adversarial"] = losses.generator_loss(self.discriminator(generated_binary))
            total = total + self.cfg.adv_weight * terms["adversarial"]
            self.discriminator.requires_grad_(True)
        update(self.optimizers[0], total)
        if self.cfg.adv_weight > 0:
            real = s[self.rng.integers(0, len(s), len(generated))]
            terms["discriminator"] = losses.discriminator_loss(
                self.discriminator(real), self.discriminator(generated_binary.detach())
            )
            update(self.optimizers[1], terms["discriminator"])
        return {name: value.item() for name, value in terms.items()}


def set_means(rows: torch.Tensor, inverse: np.ndarray) -> torch.Tensor:
    """(S, D) the mean row of each label set, `inverse` giving each row's set index."""
    sums = torch.zeros(int(inverse.max()) + 1, rows.shape[1]).index_add_(0, torch.from_numpy(inverse), rows)
    return sums / torch.from_numpy(np.bincount(inverse)).float()[:, None]


def operator_seed(cfg: TrainConfig) -> int:
    return cfg.seed if cfg.operator_seed is None else cfg.operator_seed


def fit_operators(cfg: TrainConfig, model: HashNet, train: Split, val: Split, progress: bool = True) -> dict:
    """DCOH phase 2 on h(x)'s frozen train codes; returns the state and the metrics."""
    torch.manual_seed(operator_seed(cfg))
    n_train = len(train.images) if cfg.train_size is None else min(cfg.train_size, len(train.images))
    codes = encode_split(model, train, n_train).global_bits
    training = OperatorTraining(cfg, codes, train.labels[:n_train])
    schedulers = [
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.operator_steps) for opt in training.optimizers
    ]
    started = time.perf_counter()
    sums: dict[str, float] = {}
    for _ in tqdm(range(cfg.operator_steps), desc=f"{name_of(cfg)} operators", disable=not progress):
        for name, value in training.step().items():
            sums[name] = sums.get(name, 0.0) + value
        for scheduler in schedulers:
            scheduler.step()
    return {
        "state": {
            "operators": training.operators.state_dict(),
            "discriminator": training.discriminator.state_dict(),
        },
        "metrics": {
            "loss": {name: value / cfg.operator_steps for name, value in sums.items()},
            "val": dcoh_validation(model, training.operators, val),
            "train_seconds": round(time.perf_counter() - started, 1),
        },
    }
