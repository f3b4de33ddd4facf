"""One training loop for both methods (`python -m hashdemo train hier|dcoh [--single-level|--no-adv]`).

Each method is a small class with `step` (one batch of losses and updates) and `state`; the loop,
seeding, augmentation, validation-based model selection and checkpointing are shared.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hashdemo.data.label_ops import jaccard
from hashdemo.data.split import Split
from hashdemo.model import losses
from hashdemo.model.checkpoints import CHECKPOINT_FORMAT
from hashdemo.model.config import TrainConfig
from hashdemo.model.device import resolve_device
from hashdemo.model.networks import HashOutput, preprocess
from hashdemo.model.peer_losses import CODE_LOSSES, LossInputs
from hashdemo.model.registry import OPERATOR_METHODS, build_model, name_of
from hashdemo.retrieval.protocol import hier_validation
from hashdemo.storage.files import write_atomic
from hashdemo.training.laso import fit_laso
from hashdemo.training.operators import fit_operators
from hashdemo.training.optim import adamw, update

log = logging.getLogger(__name__)


class HierTraining:
    """Method 1's codes (docs/methods.md): the seed's graded pairwise likelihood at both levels,
    quantization and label prediction; or a peer's loss (`cfg.loss`) on each trained code.

    DCOH's h(x) is trained by the same loop as a one-level code (its operators come after, on frozen codes).
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.local_weight = cfg.local_weight if cfg.method == "hier" else 0.0
        if cfg.loss != "pairwise" and cfg.loss not in CODE_LOSSES:
            raise ValueError(f"unknown loss {cfg.loss!r}; choose pairwise or one of {', '.join(CODE_LOSSES)}")
        if cfg.loss == "greedyhash" and self.local_weight > 0:
            raise ValueError(
                "GreedyHash's loss needs a classifier on the code: it trains the global code only"
            )
        self.model = build_model(cfg)
        self.optimizers = [adamw(self.model.parameters(), cfg)]

    def step(self, x: torch.Tensor, labels: torch.Tensor, iteration: int) -> dict[str, float]:
        """One update on a batch: images, or a frozen backbone's pooled features (B, C)."""
        out = self.model.head(x) if self.model.frozen_backbone else self.model(x)
        terms = (
            self.pairwise_terms(out, labels)
            if self.cfg.loss == "pairwise"
            else self.peer_terms(out, labels, iteration)
        )
        update(self.optimizers[0], terms.pop("total"))
        return {name: value.item() for name, value in terms.items()}

    def peer_terms(self, out: HashOutput, labels: torch.Tensor, iteration: int) -> dict[str, torch.Tensor]:
        """The peer's own terms on the global code (two-level: and on the local code), summed as published."""
        loss = CODE_LOSSES[self.cfg.loss]
        terms = loss(LossInputs(out.global_pre, labels, iteration, self.model.classifier))
        total = sum(terms.values())
        if self.local_weight > 0:
            local = loss(LossInputs(out.local_pre, labels, iteration, self.model.classifier))
            terms.update({f"local_{name}": value for name, value in local.items()})
            total = total + self.local_weight * sum(local.values())
        return {**terms, "total": total}

    def pairwise_terms(self, out: HashOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
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
        return {**terms, "total": total}

    def validate(self, val: Split) -> dict[str, float]:
        return hier_validation(self.model, val, with_local=self.local_weight > 0)

    def state(self) -> dict[str, dict]:
        return {"model": self.model.state_dict()}


METHODS = {"hier": HierTraining, "dcoh": HierTraining, "laso": HierTraining}  # h(x) first, then operators


def fit(
    cfg: TrainConfig,
    splits: dict[str, Split],
    progress: bool = True,
    h_from: dict | None = None,
    resume_path: Path | None = None,
    backbone_state: dict | None = None,
    device: str | None = None,
) -> dict:
    """Train (on `device`, default the compute device of `hashdemo.model.device`), select the epoch
    with the best validation score, return the checkpoint as plain data (its weights on the CPU).

    With `resume_path`, the whole training state is written there after every epoch, and a run with
    the same config that finds it goes on from the epoch after it (bit for bit the run it interrupted).
    DCOH with `h_from`: see `reuse_h`. `backbone_state`: the backbone's starting (pretrained) weights; a
    frozen backbone's train and val splits carry its pooled outputs (hashdemo.model.features).
    """
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; expected one of {sorted(METHODS)}")
    if h_from is not None:
        return reuse_h(cfg, h_from, splits, progress)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    training = METHODS[cfg.method](cfg)
    training.model.to(resolve_device(device))  # before any optimizer state exists
    if backbone_state is not None:
        training.model.backbone.load_state_dict(backbone_state)
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
            best = (record, on_cpu(training.state()))
        if resume_path is not None:
            seconds, parts = (
                time.perf_counter() - started,
                (history, best, training, schedulers, rng, generator),
            )
            save_progress(resume_path, cfg, epoch + 1, seconds, *parts)
    metrics = {
        **{"selected_epoch": best[0]["epoch"], "val": best[0]["val"], "history": history},
        **{"train_seconds": round(time.perf_counter() - started, 1), "train_images": n_train},
    }
    if cfg.method in OPERATOR_METHODS:
        return with_operators(cfg, best[1]["model"], metrics, splits, progress)
    return {"format": CHECKPOINT_FORMAT, "state": best[1], "config": asdict(cfg), "metrics": metrics}


def on_cpu(state: dict[str, dict]) -> dict[str, dict]:
    """A copy of each state dict's tensors on the CPU (the selected epoch's weights, wherever trained)."""
    return {
        name: {key: value.detach().to("cpu", copy=True) for key, value in part.items()}
        for name, part in state.items()
    }


def reuse_h(cfg: TrainConfig, h_from: dict, splits: dict[str, Split], progress: bool) -> dict:
    """DCOH's operator phase alone on the h(x) of checkpoint `h_from`, whose phase-1 config must be cfg's.

    Phase 1 never sees the operators, so this is the model the full run would give (the no-adversarial
    ablation shares h(x) with `dcoh`)."""
    source_cfg = TrainConfig(**h_from["config"])
    phase_one = {k: v for k, v in asdict(cfg).items() if k not in (*OPERATOR_FIELDS, "method")}
    source = {k: v for k, v in asdict(source_cfg).items() if k not in (*OPERATOR_FIELDS, "method")}
    if {cfg.method, source_cfg.method} - set(OPERATOR_METHODS) or source != phase_one:
        raise ValueError("h(x) can only be reused from a DCOH checkpoint with the same phase-1 config")
    return with_operators(cfg, h_from["state"]["model"], dict(h_from["metrics"]), splits, progress)


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
    device = next(training.model.parameters()).device
    for step in bar:
        batch = np.sort(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
        if training.model.frozen_backbone:  # the cached features, computed once without flips
            x = torch.from_numpy(train.features[batch])
        else:
            x = preprocess(train.images[batch], cfg.backbone)
            flip = torch.rand(len(batch), generator=generator) < 0.5  # labels are flip-invariant
            x[flip] = x[flip].flip(-1)
        terms = training.step(x.to(device), labels[batch].to(device), epoch * steps + step)
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
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
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
    if saved.get("cuda_rng") and torch.cuda.is_available():  # dropout and flips drawn on the GPU
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
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


OPERATOR_FIELDS = (
    "adv_weight",
    "operator_steps",
    "operator_batch",
    "operator_lr",
    "operator_seed",
    "chain_batch",
    "logit_range",
)  # phase 2 only


def with_operators(
    cfg: TrainConfig, model_state: dict, metrics: dict, splits: dict[str, Split], progress: bool
) -> dict:
    """The operator phase on top of a trained h(x) (DCOH's, or the LaSO-style peer's): the checkpoint with
    the operators (and D) and both phases' metrics."""
    model = build_model(cfg)
    model.load_state_dict(model_state)
    phase_one = metrics.get("phase_one", metrics)
    phase_one = {k: v for k, v in phase_one.items() if k != "operators"}
    fit_phase_two = fit_laso if cfg.method == "laso" else fit_operators
    operators = fit_phase_two(cfg, model, splits["train"], splits["val"], progress)
    metrics = {
        **phase_one,
        "phase_one": phase_one,
        "operators": operators["metrics"],
        "val": {**phase_one["val"], **operators["metrics"]["val"]},
        "train_seconds": round(phase_one["train_seconds"] + operators["metrics"]["train_seconds"], 1),
    }
    state = {"model": model_state, **operators["state"]}
    return {"format": CHECKPOINT_FORMAT, "state": state, "config": asdict(cfg), "metrics": metrics}
