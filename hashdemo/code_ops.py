"""Operations on 0/1 hash codes for composed queries: DCOH's learned operators and the bitwise baseline."""

from __future__ import annotations

import numpy as np
import torch

from hashdemo.models import CodeOperators, signs_of


@torch.no_grad()
def operator_bits(
    operators: CodeOperators, operator: str, bits_a: np.ndarray, bits_b: np.ndarray
) -> np.ndarray:
    """Apply a learned operator to 0/1 codes (N, K): signs in, sign of the output back to 0/1 bits."""
    operators.eval()
    return (operators(operator, signs_of(bits_a), signs_of(bits_b)) > 0).to(torch.uint8).numpy()


def bitwise_bits(operator: str, bits_a: np.ndarray, bits_b: np.ndarray) -> np.ndarray:
    """The bitwise baseline: OR, AND and AND-NOT of two 0/1 codes."""
    return {"union": bits_a | bits_b, "intersection": bits_a & bits_b, "difference": bits_a & (1 - bits_b)}[
        operator
    ]
