"""Operations on 0/1 hash codes for composed queries: DCOH's learned operators and the bitwise baseline."""

from __future__ import annotations

import numpy as np
import torch

from hashdemo.model.networks import CodeOperators, signs_of


@torch.no_grad()
def operator_bits(
    operators: CodeOperators, operator: str, bits_a: np.ndarray, bits_b: np.ndarray
) -> np.ndarray:
    """Apply a learned operator to 0/1 codes (N, K): signs in, sign of the output back to 0/1 bits."""
    operators.eval()
    return (operators(operator, signs_of(bits_a), signs_of(bits_b)) > 0).to(torch.uint8).numpy()


def chain_bits(
    operators: CodeOperators | None, chain: tuple[str, ...], operands: list[np.ndarray]
) -> np.ndarray:
    """The code of ((x_0 op_1 x_1) op_2 x_2)...: the learned operators (each output binarised, since a
    composed code is a code, as eq. 3.6 feeds union's output to difference), or with `operators=None`
    the bitwise baseline."""
    code = operands[0]
    for operator, other in zip(chain, operands[1:], strict=True):
        code = (
            bitwise_bits(operator, code, other)
            if operators is None
            else operator_bits(operators, operator, code, other)
        )
    return code


def bitwise_bits(operator: str, bits_a: np.ndarray, bits_b: np.ndarray) -> np.ndarray:
    """The bitwise baseline: OR, AND and AND-NOT of two 0/1 codes."""
    return {"union": bits_a | bits_b, "intersection": bits_a & bits_b, "difference": bits_a & (1 - bits_b)}[
        operator
    ]
