"""A LaSO-style peer for DCOH (Alfassy et al., CVPR 2019, "LaSO: Label-Set Operations networks"):
union, intersection and difference learned as one small MLP each on two concatenated float feature
vectors (here the pooled Conv7 features of DCOH's own h(x)), with a multi-label classifier on
features, as LaSO trains its operators; a composed query retrieves by cosine on the gallery's features.

`FeatureOperators(operator, a, b)` has the call of DCOH's `CodeOperators`, on floats instead of codes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hashdemo.data.label_ops import OPERATORS

HIDDEN = 256  # LaSO's operator networks are a few fully connected layers of this order


class FeatureOperators(nn.Module):
    def __init__(self, dim: int, n_classes: int, hidden: int = HIDDEN):
        super().__init__()
        self.maps = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Linear(2 * dim, hidden),
                    nn.LeakyReLU(0.2),
                    nn.Linear(hidden, hidden),
                    nn.LeakyReLU(0.2),
                    nn.Linear(hidden, dim),
                )
                for name in OPERATORS
            }
        )
        self.classifier = nn.Linear(dim, n_classes)  # multi-label, on real and composed features

    def forward(self, operator: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if operator not in self.maps:
            raise ValueError(f"unknown operator {operator!r}; expected one of {OPERATORS}")
        return self.maps[operator](torch.cat([a, b], dim=1))


@torch.no_grad()
def compose_features(
    operators: FeatureOperators, chain: tuple[str, ...], operands: list[np.ndarray]
) -> np.ndarray:
    """((f_0 op_1 f_1) op_2 f_2) ... on float features (n, dim) each, as numpy."""
    result = torch.from_numpy(operands[0])
    for operator, operand in zip(chain, operands[1:], strict=True):
        result = operators(operator, result, torch.from_numpy(operand))
    return result.numpy()


def cosine_ranking(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) gallery ids by cosine similarity, high to low, ties by id."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return np.argsort(-(q @ g.T), axis=1, kind="stable")[:, :k]
