"""The field's hashing losses, each on the same network as the seed's (a code's pre-activation `pre`,
(B, K), before any tanh), so a peer is one entry in CODE_LOSSES and one in the model registry.

Hyper-parameters are the papers' (as DeepHash-pytorch sets them), not tuned here; pairs are the
batch's own (B x B), as for the seed's pairwise likelihood. Multi-label images are similar when they
share a label, as in each paper's multi-label experiments.

- HashNet (Cao et al., ICCV 2017): weighted pairwise cross-entropy on tanh(beta_t * pre), with the
  continuation beta_t = (1 + 0.005 t)^0.5 over training steps t.
- CSQ (Yuan et al., CVPR 2020): hash centres from a Hadamard matrix, a multi-label image's centre the
  sign of the sum of its labels' centres (a seeded random centre breaks ties); BCE to the centre plus
  quantization (weight 1e-4).
- GreedyHash (Su et al., NeurIPS 2018): sign in the forward pass with the gradient passed straight
  through, a classifier on the binary code (multi-label BCE) and the cubic penalty |(|pre| - 1)^3|.
- DSH (Liu et al., CVPR 2016): contrastive loss on the real-valued codes with margin 2K and the
  regulariser alpha * | |pre| - 1 | (alpha = 0.1).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LossInputs:
    pre: torch.Tensor  # (B, K) the code's pre-activation; the bit is its sign
    labels: torch.Tensor  # (B, n_classes) multi-hot
    iteration: int  # training steps taken so far (HashNet's continuation)
    classifier: nn.Module  # K -> n_classes, the network's code classifier (GreedyHash)


def shares_a_label(labels: torch.Tensor) -> torch.Tensor:
    """(B, B) float: 1 where two images share at least one label."""
    labels = labels.float()
    return (labels @ labels.T > 0).float()


def hashnet(inputs: LossInputs, alpha: float = 0.1, gamma: float = 0.005, power: float = 0.5) -> Terms:
    codes = torch.tanh((1.0 + gamma * inputs.iteration) ** power * inputs.pre)
    similar = shares_a_label(inputs.labels)
    dot = alpha * codes @ codes.T
    # log(1 + exp(dot)) - s * dot, written to stay finite
    loss = F.softplus(-dot.abs()) + dot.clamp(min=0) - similar * dot
    n, n_similar = loss.numel(), similar.sum().clamp(min=1)
    weights = torch.where(similar > 0, n / n_similar, n / (n - similar.sum()).clamp(min=1))
    return {"hashnet": (loss * weights).sum() / n}


def sylvester_hadamard(order: int) -> np.ndarray:
    """The order x order Hadamard matrix of Sylvester's construction (order a power of two)."""
    if order < 1 or order & (order - 1):
        raise ValueError(f"a Hadamard matrix here needs a power-of-two order (got {order})")
    matrix = np.ones((1, 1))
    while len(matrix) < order:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


@functools.cache
def hash_centres(bits: int, n_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """CSQ's class centres (n_classes, K) in +-1, the rows of [H; -H], or seeded random +-1 rows when
    there are more than 2K classes; and the random 0/1 vector that breaks a multi-label sum's ties."""
    rng = np.random.default_rng(seed)
    if n_classes <= 2 * bits and not bits & (bits - 1):
        hadamard = sylvester_hadamard(bits)
        centres = np.concatenate([hadamard, -hadamard])[:n_classes]
    else:
        centres = rng.integers(0, 2, (n_classes, bits)) * 2 - 1
    tie_break = rng.integers(0, 2, bits)
    return torch.tensor(centres, dtype=torch.float32), torch.tensor(tie_break, dtype=torch.float32)


def csq(inputs: LossInputs, quant_weight: float = 1e-4) -> Terms:
    codes = torch.tanh(inputs.pre)
    centres, tie_break = hash_centres(codes.shape[1], inputs.labels.shape[1])
    summed = inputs.labels.float() @ centres  # (B, K)
    summed = torch.where(summed == 0, tie_break.expand_as(summed), summed)
    target = (summed > 0).float()
    return {
        "centre": F.binary_cross_entropy(0.5 * (codes + 1), target),
        "quant": quant_weight * (codes.abs() - 1).pow(2).mean(),
    }


class SignStraightThrough(torch.autograd.Function):
    """sign(x) forward; the gradient passes through unchanged (GreedyHash's update)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.sign()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def greedyhash(inputs: LossInputs, alpha: float = 0.1) -> Terms:
    bits = SignStraightThrough.apply(inputs.pre)
    logits = inputs.classifier(bits)
    return {
        "classify": F.binary_cross_entropy_with_logits(logits, inputs.labels.float()),
        "penalty": alpha * (inputs.pre.abs() - 1).pow(3).abs().mean(),
    }


def dsh(inputs: LossInputs, alpha: float = 0.1) -> Terms:
    pre = inputs.pre
    distance = (pre[:, None, :] - pre[None, :, :]).pow(2).sum(-1)  # (B, B) squared Euclidean
    dissimilar = 1.0 - shares_a_label(inputs.labels)
    margin = 2.0 * pre.shape[1]
    contrastive = (1 - dissimilar) / 2 * distance + dissimilar / 2 * (margin - distance).clamp(min=0)
    return {"contrastive": contrastive.mean(), "regulariser": alpha * (1 - pre.abs()).abs().mean()}


CODE_LOSSES: dict[str, Callable[[LossInputs], Terms]] = {
    "hashnet": hashnet,
    "csq": csq,
    "greedyhash": greedyhash,
    "dsh": dsh,
}
