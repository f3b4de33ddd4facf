"""One training loop for both methods (`python -m hashdemo train hier|dcoh [--single-level|--no-adv]`).

Each method is a small class with `step` (one batch of losses and updates) and `state`; the loop,
seeding, augmentation, validation-based model selection and checkpointing are shared.
"""

from __future__ import annotations

import copy
import io
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hashdemo.data.fashion_mnist import NUM_CLASSES
from hashdemo.data.label_ops import compose_labels, jaccard
from hashdemo.data.split import Split
from hashdemo.model import losses
from hashdemo.model.checkpoints import CHECKPOINT_FORMAT
from hashdemo.model.config import TrainConfig
from hashdemo.model.networks import HashNet, preprocess, signs_of
from hashdemo.model.registry import build_model, build_operators, name_of
from hashdemo.retrieval.protocol import dcoh_validation, hier_validation
from hashdemo.storage.files import write_atomic

log = logging.getLogger(__name__)


class HierTraining:
    """SPEC 1: graded pairwise likelihood at both levels, quantization, label prediction.

    DCOH's h(x) is trained by the same loop as a one-level code (its operators come after, on frozen codes).
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.local_weight = cfg.local_weight if cfg.method == "hier" else 0.0
        self.model = build_model(cfg)
        self.optimizers = [adamw(self.model.parameters(), cfg)]

    def step(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        cfg = self.cfg
        out = self.model(x)
        similarity = jaccard(labels, labels)  # (B, B)
        terms = {
            "global": losses.pairwise_likelihood_loss(out.global_relaxed, out.global_relaxed, similarity),
            "local": losses.pairwise_likelihood_loss(out.local_relaxed, out.local_relaxed, similarity),
            "quant": losses.quantization_loss(out.global_relaxed)
            + self.local_weight * losses.quantization_loss(out.local_relaxed),
            "label": losses.label_loss(out.logits, labels),
        }
        total = (
            terms["global"]
            + self.local_weight * terms["local"]
            + cfg.quant_weight * terms["quant"]
            + cfg.label_weight * terms["label"]
        )
        if cfg.set_weight > 0:
            same_set = (similarity == 1).float()
            terms["set"] = losses.pairwise_likelihood_loss(out.global_relaxed, out.global_relaxed, same_set)
            total = total + cfg.set_weight * terms["set"]
        _update(self.optimizers[0], total)
        return {name: value.item() for name, value in terms.items()}

    def validate(self, val: Split) -> dict[str, float]:
        return hier_validation(self.model, val, with_local=self.local_weight > 0)

    def state(self) -> dict[str, dict]:
        return {"model": self.model.state_dict()}


def label_keys(labels: np.ndarray) -> np.ndarray:
    """(N, C) multi-hot -> (N,) int: each label set as one integer (bit c = class c)."""
    return (labels.astype(np.int64) << np.arange(labels.shape[1])).sum(axis=1)


def keys_to_labels(keys: np.ndarray, n_classes: int = NUM_CLASSES) -> np.ndarray:
    """(N,) int -> (N, n_classes) multi-hot, the inverse of `label_keys`."""
    return ((keys[:, None] >> np.arange(n_classes)) & 1).astype(np.uint8)


class OperatorTraining:
    """DCOH phase 2 (SPEC 2): the operators learn on the frozen +-1 codes of the train split.

    Their losses never reach h(x) (early on their outputs are noise, and letting that reach h(x)
    wrecked the real codes), so they train on codes computed once: thousands of pairs a second.
    Loss 1 (similarity), as a classification over label sets: a generated code's scaled inner
    products with the prototypes (the mean real code of every train label set) go through a softmax
    whose target is the prototype of its label set T; this asks directly that T's real codes be the
    nearest, which composed retrieval needs (the graded pairwise likelihood it replaces left
    intersection at val map@100 0.35 against 0.65). Loss 3: D tells real codes from operator outputs.
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
        _update(self.optimizers[0], total)
        if self.cfg.adv_weight > 0:
            real = s[self.rng.integers(0, len(s), len(generated))]
            terms["discriminator"] = losses.discriminator_loss(
                self.discriminator(real), self.discriminator(generated_binary.detach())
            )
            _update(self.optimizers[1], terms["discriminator"])
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


def adamw(params, cfg: TrainConfig, **kwargs) -> torch.optim.AdamW:
    """AdamW decaying only weight matrices and conv kernels, never norm weights or biases
    (as nanoGPT's configure_optimizers does): decaying a BatchNorm scale shrinks the code's margins."""
    params = list(params)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, kwargs.pop("lr", cfg.lr), **kwargs)


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


METHODS = {"hier": HierTraining, "dcoh": HierTraining}  # dcoh: h(x) first; operators in fit_operators


OPERATOR_FIELDS = (
    "adv_weight",
    "operator_steps",
    "operator_batch",
    "operator_lr",
    "operator_seed",
)  # phase 2 only


def fit(
    cfg: TrainConfig,
    splits: dict[str, Split],
    progress: bool = True,
    h_from: dict | None = None,
    resume_path: Path | None = None,
) -> dict:
    """Train, select the epoch with the best validation score, return the checkpoint as plain data.

    With `resume_path`, the whole training state is written there after every epoch, and a run with
    the same config that finds it goes on from the epoch after it (bit for bit the run it interrupted).

    DCOH: with `h_from` (a checkpoint whose config differs only in the operator phase), its h(x) is
    taken as it is and only the operators train; phase 1 never sees the operators, so this is the
    same model the full run would give (the no-adversarial ablation shares h(x) with `dcoh`).
    """
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; expected one of {sorted(METHODS)}")
    if h_from is not None:
        phase_one = {k: v for k, v in asdict(cfg).items() if k not in OPERATOR_FIELDS}
        source = {
            k: v for k, v in asdict(TrainConfig(**h_from["config"])).items() if k not in OPERATOR_FIELDS
        }
        if cfg.method != "dcoh" or source != phase_one:
            raise ValueError("h(x) can only be reused from a DCOH checkpoint with the same phase-1 config")
        return with_operators(cfg, h_from["state"]["model"], dict(h_from["metrics"]), splits, progress)
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
    history, best, first_epoch, spent = [], None, 0, 0.0
    saved = read_progress(resume_path, cfg)
    if saved is not None:
        history, best, first_epoch, spent = restore(saved, training, schedulers, rng, generator)
        log.info("resuming %s after epoch %d of %d (%s)", name_of(cfg), first_epoch, cfg.epochs, resume_path)
    started = time.perf_counter() - spent
    for epoch in range(first_epoch, cfg.epochs):
        training.model.train()
        sums = train_epoch(
            cfg, training, train, labels_all, rng.permutation(n_train), schedulers, generator, epoch, progress
        )
        val = training.validate(splits["val"])
        record = {"epoch": epoch + 1, "loss": {k: v / steps_per_epoch for k, v in sums.items()}, "val": val}
        history.append(record)
        log.info("epoch %d: %s", epoch + 1, record)
        if best is None or val["selection"] > best[0]["val"]["selection"]:
            best = (record, copy.deepcopy(training.state()))
        if resume_path is not None:
            seconds = time.perf_counter() - started
            save_progress(
                resume_path, cfg, epoch + 1, seconds, history, best, training, schedulers, rng, generator
            )
    metrics = {
        "selected_epoch": best[0]["epoch"],
        "val": best[0]["val"],
        "history": history,
        "train_seconds": round(time.perf_counter() - started, 1),
        "train_images": n_train,
    }
    if cfg.method == "dcoh":
        return with_operators(cfg, best[1]["model"], metrics, splits, progress)
    return {"format": CHECKPOINT_FORMAT, "state": best[1], "config": asdict(cfg), "metrics": metrics}


def train_epoch(cfg, training, train: Split, labels, order, schedulers, generator, epoch, progress) -> dict:
    """One pass over `order` in batches (random flips, the method's step, the schedulers): summed losses."""
    steps = len(order) // cfg.batch_size
    sums: dict[str, float] = {}
    bar = tqdm(  # counted in images, so the bar shows images/s
        range(steps),
        desc=f"{name_of(cfg)} epoch {epoch + 1}/{cfg.epochs}",
        unit="img",
        unit_scale=cfg.batch_size,
        disable=not progress,
    )
    for step in bar:
        batch = np.sort(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
        x = preprocess(train.images[batch])
        flip = torch.rand(len(batch), generator=generator) < 0.5  # labels are flip-invariant
        x[flip] = x[flip].flip(-1)
        terms = training.step(x, labels[batch], generator)
        for scheduler in schedulers:
            scheduler.step()
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + value
        bar.set_postfix({name: f"{value / (step + 1):.3f}" for name, value in sums.items()})
    return sums


def save_progress(path, cfg, epoch, seconds, history, best, training, schedulers, rng, generator) -> None:
    """The whole training state after `epoch`: what `restore` needs to go on bit for bit."""
    state = {
        "config": asdict(cfg),
        "epoch": epoch,
        "seconds": seconds,
        "history": history,
        "best": list(best),
        "model": training.model.state_dict(),
        "optimizers": [o.state_dict() for o in training.optimizers + schedulers],
        "numpy_rng": rng.bit_generator.state,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def restore(saved: dict, training, schedulers, rng, generator) -> tuple[list, tuple, int, float]:
    """Put a saved state back; returns (history, best, the next epoch, seconds spent so far)."""
    training.model.load_state_dict(saved["model"])
    for optimizer, state in zip(training.optimizers + schedulers, saved["optimizers"], strict=True):
        optimizer.load_state_dict(state)
    rng.bit_generator.state = saved["numpy_rng"]
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    return saved["history"], tuple(saved["best"]), saved["epoch"], saved["seconds"]


def read_progress(path: Path | None, cfg: TrainConfig) -> dict | None:
    """The state a run of `cfg` left at `path` after its last finished epoch, or None (none, another
    config's, or unreadable: then training starts over)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a damaged progress file only costs the epochs it held
        log.warning("ignoring the unreadable progress file %s (%s)", path, error)
        return None
    return saved if saved.get("config") == asdict(cfg) else None


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
