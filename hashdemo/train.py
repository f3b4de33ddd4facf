"""One training loop for both methods: `python -m hashdemo.train hier|dcoh [--single-level|--no-adv]`.

Each method is a small class with `step` (one batch of losses and updates) and `state`; the loop,
seeding, augmentation, validation-based model selection and checkpointing are shared.
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hashdemo import losses
from hashdemo.checkpoints import CHECKPOINT_DIR, CHECKPOINT_FORMAT, save_checkpoint
from hashdemo.config import TrainConfig
from hashdemo.data import NUM_CLASSES, Split, load_outfits
from hashdemo.label_ops import compose_labels, jaccard
from hashdemo.models import CodeDiscriminator, CodeOperators, HashNet, preprocess
from hashdemo.retrieval.protocol import dcoh_validation, hier_validation

log = logging.getLogger(__name__)


class HierTraining:
    """SPEC 1: graded pairwise likelihood at both levels, quantization, label prediction."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.model = HashNet(cfg.conv7_channels, cfg.bits)
        self.optimizers = [adamw(self.model.parameters(), cfg)]

    def step(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        cfg = self.cfg
        out = self.model(x)
        similarity = jaccard(labels, labels)  # (B, B)
        terms = {
            "global": losses.pairwise_likelihood_loss(out.global_relaxed, out.global_relaxed, similarity),
            "local": losses.pairwise_likelihood_loss(out.local_relaxed, out.local_relaxed, similarity),
            "quant": losses.quantization_loss(out.global_relaxed)
            + cfg.local_weight * losses.quantization_loss(out.local_relaxed),
            "label": losses.label_loss(out.logits, labels),
        }
        total = (
            terms["global"]
            + cfg.local_weight * terms["local"]
            + cfg.quant_weight * terms["quant"]
            + cfg.label_weight * terms["label"]
        )
        _update(self.optimizers[0], total)
        return {name: value.item() for name, value in terms.items()}

    def validate(self, val: Split) -> dict[str, float]:
        return hier_validation(self.model, val, with_local=self.cfg.local_weight > 0)

    def state(self) -> dict[str, dict]:
        return {"model": self.model.state_dict()}


def overlap_partners(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each row, a random other row sharing a label (itself when none does).

    Random pairs rarely overlap, so intersection and direct difference are trained on these.
    """
    shares = (labels.float() @ labels.float().T > 0) & ~torch.eye(len(labels), dtype=torch.bool)
    noise = torch.rand(shares.shape, generator=generator)
    partners = torch.where(shares, noise + 1.0, noise * 0.0).argmax(dim=1)
    return torch.where(shares.any(dim=1), partners, torch.arange(len(labels)))


class LabelSetPrototypes:
    """A running mean of the real codes of every label set seen in training.

    An operator's target label set rarely occurs in a batch, so generated codes are compared with
    these prototypes (graded by Jaccard), not with the batch alone: a composed code learns to sit
    next to the real codes of exactly its label set, which is what composed retrieval asks.
    """

    def __init__(self, n_classes: int, bits: int, momentum: float = 0.9):
        self.momentum = momentum
        self.powers = 2 ** torch.arange(n_classes)  # label set -> integer key
        self.codes = torch.zeros(2**n_classes, bits)  # (2^C, K)
        self.seen = torch.zeros(2**n_classes, dtype=torch.bool)
        self.labels = ((torch.arange(2**n_classes)[:, None] >> torch.arange(n_classes)) & 1).to(torch.uint8)

    def update(self, codes: torch.Tensor, labels: torch.Tensor) -> None:
        keys = (labels.long() * self.powers).sum(dim=1)
        for key in keys.unique():
            mean = codes[keys == key].mean(dim=0)
            old = self.codes[key] if self.seen[key] else mean
            self.codes[key] = self.momentum * old + (1 - self.momentum) * mean
            self.seen[key] = True

    def similarity_loss(self, generated: torch.Tensor, generated_labels: torch.Tensor) -> torch.Tensor:
        targets, target_labels = self.codes[self.seen], self.labels[self.seen]
        return losses.pairwise_likelihood_loss(generated, targets, jaccard(generated_labels, target_labels))


class DCOHTraining:
    """SPEC 2: code net + operators + classifier against a code discriminator."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.prototypes = LabelSetPrototypes(NUM_CLASSES, cfg.bits)
        self.model = HashNet(cfg.conv7_channels, cfg.bits)
        self.operators = CodeOperators(cfg.bits)
        self.discriminator = CodeDiscriminator(cfg.bits)
        generator_params = [*self.model.parameters(), *self.operators.parameters()]
        self.optimizers = [adamw(generator_params, cfg)]
        if cfg.adv_weight > 0:  # the ablation never trains D
            self.optimizers.append(
                torch.optim.AdamW(self.discriminator.parameters(), cfg.lr, betas=(0.5, 0.999))
            )

    def generate(
        self, codes: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Operator outputs and their label sets for one batch, empty label sets dropped."""
        ops = self.operators
        random_partner = torch.randperm(len(codes), generator=generator)
        overlap_partner = overlap_partners(labels, generator)
        union_codes = ops("union", codes, codes[random_partner])
        union_labels = compose_labels("union", labels, labels[random_partner])
        pairs = [
            (union_codes, union_labels),
            (
                ops("intersection", codes, codes[overlap_partner]),
                compose_labels("intersection", labels, labels[overlap_partner]),
            ),
            # eq. 3.6: difference cascaded after union, so that its result is rarely empty
            (
                ops("difference", union_codes, codes[random_partner]),
                compose_labels("difference", union_labels, labels[random_partner]),
            ),
            # and on overlapping real pairs, as it is used at query time
            (
                ops("difference", codes, codes[overlap_partner]),
                compose_labels("difference", labels, labels[overlap_partner]),
            ),
        ]
        generated = torch.cat([c for c, _ in pairs])
        generated_labels = torch.cat([lab for _, lab in pairs])
        keep = generated_labels.sum(dim=1) > 0
        return generated[keep], generated_labels[keep]

    def step(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        cfg = self.cfg
        out = self.model(x)
        codes = out.global_relaxed  # (B, K)
        # Operators act on the +-1 codes they are given at query time, and their losses train
        # them (and the shared classifier), not h(x): early on their outputs are noise, and
        # letting that reach h(x) wrecked the real codes.
        signs = torch.where(codes.detach() > 0, 1.0, -1.0)
        generated, generated_labels = self.generate(signs, labels, generator)  # (G, K), (G, C)
        self.prototypes.update(signs, labels)
        # D compares binary codes, as the gallery holds them; the straight-through sign passes
        # its gradient to the operators unchanged.
        generated_binary = generated + (torch.where(generated > 0, 1.0, -1.0) - generated).detach()
        terms = {
            "similarity": losses.pairwise_likelihood_loss(codes, codes, jaccard(labels, labels))
            + self.prototypes.similarity_loss(generated, generated_labels),
            "label": losses.label_loss(out.logits, labels)
            + losses.label_loss(self.model.classifier(generated), generated_labels),
            "quant": losses.quantization_loss(codes) + losses.quantization_loss(generated),
            "adversarial": losses.generator_loss(self.discriminator(generated_binary)),
        }
        total = (
            terms["similarity"]
            + cfg.label_weight * terms["label"]
            + cfg.quant_weight * terms["quant"]
            + cfg.adv_weight * terms["adversarial"]
        )
        self.discriminator.requires_grad_(False)
        _update(self.optimizers[0], total)
        self.discriminator.requires_grad_(True)
        if cfg.adv_weight > 0:
            terms["discriminator"] = losses.discriminator_loss(
                self.discriminator(signs), self.discriminator(generated_binary.detach())
            )
            _update(self.optimizers[1], terms["discriminator"])
        return {name: value.item() for name, value in terms.items()}

    def validate(self, val: Split) -> dict[str, float]:
        return dcoh_validation(self.model, self.operators, val)

    def state(self) -> dict[str, dict]:
        return {
            "model": self.model.state_dict(),
            "operators": self.operators.state_dict(),
            "discriminator": self.discriminator.state_dict(),
        }


def adamw(params, cfg: TrainConfig, **kwargs) -> torch.optim.AdamW:
    """AdamW decaying only weight matrices and conv kernels, never norm weights or biases
    (as nanoGPT's configure_optimizers does): decaying a BatchNorm scale shrinks the code's margins."""
    params = list(params)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, cfg.lr, **kwargs)


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


METHODS = {"hier": HierTraining, "dcoh": DCOHTraining}


def fit(cfg: TrainConfig, splits: dict[str, Split], progress: bool = True) -> dict:
    """Train, select the epoch with the best validation score, return the checkpoint as plain data."""
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; expected one of {sorted(METHODS)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    training = METHODS[cfg.method](cfg)
    train = splits["train"]
    n_train = len(train.images) if cfg.train_size is None else min(cfg.train_size, len(train.images))
    labels_all = torch.from_numpy(train.labels[:n_train])
    steps_per_epoch = n_train // cfg.batch_size
    schedulers = [
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * steps_per_epoch)
        for opt in training.optimizers
    ]
    history, best = [], None
    started = time.perf_counter()
    for epoch in range(cfg.epochs):
        training.model.train()
        order = rng.permutation(n_train)
        sums: dict[str, float] = {}
        bar = tqdm(
            range(steps_per_epoch), desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress
        )
        for step in bar:
            batch = np.sort(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
            x = preprocess(train.images[batch])
            flip = torch.rand(len(batch), generator=generator) < 0.5  # labels are flip-invariant
            x[flip] = x[flip].flip(-1)
            terms = training.step(x, labels_all[batch], generator)
            for scheduler in schedulers:
                scheduler.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix({name: f"{value / (step + 1):.3f}" for name, value in sums.items()})
        val = training.validate(splits["val"])
        record = {"epoch": epoch + 1, "loss": {k: v / steps_per_epoch for k, v in sums.items()}, "val": val}
        history.append(record)
        log.info("epoch %d: %s", epoch + 1, record)
        if best is None or val["selection"] > best[0]["val"]["selection"]:
            best = (record, copy.deepcopy(training.state()))
    metrics = {
        "selected_epoch": best[0]["epoch"],
        "val": best[0]["val"],
        "history": history,
        "train_seconds": round(time.perf_counter() - started, 1),
        "train_images": n_train,
    }
    return {"format": CHECKPOINT_FORMAT, "state": best[1], "config": asdict(cfg), "metrics": metrics}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("--single-level", action="store_true", help="hier: train the one-level baseline")
    parser.add_argument("--no-adv", action="store_true", help="dcoh: train without the adversarial term")
    tunable = {f.name for f in fields(TrainConfig)} - {"method", "local_weight", "adv_weight"}
    defaults = TrainConfig()
    for name in sorted(tunable):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default) if default is not None else int)
    parser.add_argument("--out", type=Path, help="output directory (default: checkpoints/NAME)")
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in tunable if getattr(args, name) is not None}
    if args.single_level:
        overrides["local_weight"] = 0.0
    if args.no_adv:
        overrides["adv_weight"] = 0.0
    cfg = TrainConfig(method=args.method, **overrides)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    checkpoint = fit(cfg, load_outfits(progress=True))
    out = args.out or CHECKPOINT_DIR / cfg.name
    save_checkpoint(checkpoint, out)
    log.info("saved %s (val %s)", out, checkpoint["metrics"]["val"])


if __name__ == "__main__":
    main()
