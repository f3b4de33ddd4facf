"""Losses shared by both methods: graded pairwise likelihood, quantization, label prediction,
and the adversarial terms of DCOH's distribution matching (docs/methods.md, both methods)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The likelihood's logit is a scaled inner product; this keeps it within about +-8 whatever the
# code length, so 32- and 64-bit codes train with the same learning rate.
LOGIT_RANGE = 8.0


def pairwise_likelihood_loss(
    codes_a: torch.Tensor, codes_b: torch.Tensor, similarity: torch.Tensor
) -> torch.Tensor:
    """DPSH-style pairwise likelihood with a graded target.

    p(similar) = sigmoid(s * <a, b>); minimising BCE(p, similarity) pulls pairs sharing more
    labels closer in Hamming distance (multi-level similarity preservation).
    """
    logits = codes_a @ codes_b.T * (LOGIT_RANGE / codes_a.shape[1])  # (B, M)
    return F.binary_cross_entropy_with_logits(logits, similarity)


def quantization_loss(relaxed: torch.Tensor) -> torch.Tensor:
    """Mean (|u| - 1)^2: keeps tanh outputs near the {-1, +1} codes used at search time."""
    return (relaxed.abs() - 1.0).pow(2).mean()


def label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Semantic discriminability: multi-label BCE of a classifier on the codes."""
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D learns real codes -> 1, operator outputs -> 0."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The operators try to make D call their outputs real (non-saturating GAN loss)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
