"""DCOH's operator phase (method 2, docs/methods.md): the union, intersection and difference operators learn
on the frozen codes of a trained h(x), with the similarity and adversarial losses."""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from hashdemo.data.label_ops import compose_labels, keys_to_labels, label_keys
from hashdemo.data.split import Split
from hashdemo.model import losses
from hashdemo.model.checkpoints import CHECKPOINT_FORMAT
from hashdemo.model.config import TrainConfig
from hashdemo.model.networks import HashNet, signs_of
from hashdemo.model.registry import build_model, build_operators, name_of
from hashdemo.retrieval.protocol import dcoh_validation
from hashdemo.training.optim import adamw, update


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
        self.signs = signs_of(codes)  # (N, K)
        self.keys = label_keys(labels)
        self.n_classes = labels.shape[1]
        self.set_keys, inverse = np.unique(self.keys, return_inverse=True)  # the train label sets
        prototypes = torch.zeros(len(self.set_keys), codes.shape[1]).index_add_(
            0, torch.from_numpy(inverse), self.signs
        )
        self.prototypes = prototypes / torch.from_numpy(np.bincount(inverse)).float()[:, None]  # (S, K)
        self.operators, self.discriminator = build_operators(cfg)
        self.optimizers = [adamw(self.operators.parameters(), cfg, lr=cfg.operator_lr)]
        if cfg.adv_weight > 0:  # the ablation never trains D
            self.optimizers.append(
                torch.optim.AdamW(self.discriminator.parameters(), cfg.operator_lr, betas=(0.5, 0.999))
            )

    def pairs(self, operator: str, first_keys: np.ndarray | None = None) -> tuple:
        """A batch of train pairs whose target T is non-empty and a train label set (rejection sampling).

        Returns ids a, b and T's index among the prototypes. With `first_keys`, the first operand's label
        sets are given (the cascade) and only b is drawn.
        """
        n, batch = len(self.keys), self.cfg.operator_batch
        a_all, b_all, t_all = [], [], []
        while sum(len(a) for a in a_all) < batch:
            a = self.rng.integers(0, n, 4 * batch)
            b = self.rng.integers(0, n, 4 * batch)
            left = self.keys[a] if first_keys is None else np.resize(first_keys, 4 * batch)
            target = label_keys(
                compose_labels(
                    operator,
                    keys_to_labels(left, self.n_classes),
                    keys_to_labels(self.keys[b], self.n_classes),
                )
            )
            position = np.searchsorted(self.set_keys, target).clip(max=len(self.set_keys) - 1)
            ok = (self.set_keys[position] == target) & (target > 0) & (a != b)
            a_all.append(a[ok])
            b_all.append(b[ok])
            t_all.append(position[ok])
        return tuple(np.concatenate(x)[:batch] for x in (a_all, b_all, t_all))

    def step(self) -> dict[str, float]:
        ops, s = self.operators, self.signs
        generated, targets = [], []
        for operator in ("union", "intersection", "difference"):
            a, b, t = self.pairs(operator)
            generated.append(ops(operator, s[a], s[b]))
            targets.append(t)
        # eq. 3.6: difference cascaded after union, (x1 (+) x2) (-) x2
        a, b, _ = self.pairs("union")
        union_keys = self.keys[a] | self.keys[b]
        target = label_keys(
            compose_labels(
                "difference",
                keys_to_labels(union_keys, self.n_classes),
                keys_to_labels(self.keys[b], self.n_classes),
            )
        )
        position = np.searchsorted(self.set_keys, target).clip(max=len(self.set_keys) - 1)
        ok = torch.from_numpy((self.set_keys[position] == target) & (target > 0))
        generated.append(ops("difference", ops("union", s[a], s[b]), s[b])[ok])
        targets.append(position[ok.numpy()])
        generated, targets = torch.cat(generated), torch.from_numpy(np.concatenate(targets))
        logits = generated @ self.prototypes.T * (losses.LOGIT_RANGE / self.cfg.bits)
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


def operator_seed(cfg: TrainConfig) -> int:
    return cfg.seed if cfg.operator_seed is None else cfg.operator_seed


def fit_operators(cfg: TrainConfig, model: HashNet, train: Split, val: Split, progress: bool = True) -> dict:
    """DCOH phase 2 on h(x)'s frozen train codes; returns the state and the metrics."""
    torch.manual_seed(operator_seed(cfg))
    n_train = len(train.images) if cfg.train_size is None else min(cfg.train_size, len(train.images))
    codes = model.encode(train.images[:n_train]).global_bits
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


OPERATOR_FIELDS = (
    "adv_weight",
    "operator_steps",
    "operator_batch",
    "operator_lr",
    "operator_seed",
)  # phase 2 only


def with_operators(
    cfg: TrainConfig, model_state: dict, metrics: dict, splits: dict[str, Split], progress: bool
) -> dict:
    """DCOH phase 2 on top of a trained h(x): the checkpoint with operators, D and both phases' metrics."""
    model = build_model(cfg)
    model.load_state_dict(model_state)
    phase_one = metrics.get("phase_one", metrics)
    phase_one = {k: v for k, v in phase_one.items() if k != "operators"}
    operators = fit_operators(cfg, model, splits["train"], splits["val"], progress)
    metrics = {
        **phase_one,
        "phase_one": phase_one,
        "operators": operators["metrics"],
        "val": {**phase_one["val"], **operators["metrics"]["val"]},
        "train_seconds": round(phase_one["train_seconds"] + operators["metrics"]["train_seconds"], 1),
    }
    state = {"model": model_state, **operators["state"]}
    return {"format": CHECKPOINT_FORMAT, "state": state, "config": asdict(cfg), "metrics": metrics}
