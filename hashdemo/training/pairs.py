"""The compositions every operator phase trains on: seeded train pairs whose target set is non-empty and
a train label set, per operator, and difference cascaded after union (eq. 3.6, docs/methods.md)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from hashdemo.data.label_ops import OPERATORS, compose_chain, compose_labels, keys_to_labels, label_keys

Batch = tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]  # (chain, ids a, ids b, T's set index)
# (chain, operand ids (n, len(chain) + 1), T's set index): (x0 op1 x1) op2 x2, a fresh image per step
ChainBatch = tuple[tuple[str, ...], np.ndarray, np.ndarray]
CHAINS = tuple(itertools.product(OPERATORS, OPERATORS))  # every pair of operators, as evaluated


class TrainPairs:
    def __init__(self, labels: np.ndarray, batch: int, rng: np.random.Generator):
        self.keys = label_keys(labels)  # each train image's label set as one integer
        self.n_classes, self.batch, self.rng = labels.shape[1], batch, rng
        self.set_keys, self.inverse = np.unique(self.keys, return_inverse=True)  # the train label sets

    def targets(
        self, operator: str, left_keys: np.ndarray, right_keys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """T's index among the train label sets, and whether T is non-empty and one of them."""
        target = label_keys(
            compose_labels(
                operator,
                keys_to_labels(left_keys, self.n_classes),
                keys_to_labels(right_keys, self.n_classes),
            )
        )
        position = np.searchsorted(self.set_keys, target).clip(max=len(self.set_keys) - 1)
        return position, (self.set_keys[position] == target) & (target > 0)

    def pairs(self, operator: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of distinct train pairs whose target T is a non-empty train label set (rejection
        sampling): ids a, b and T's index among the train label sets."""
        n, batch = len(self.keys), self.batch
        a_all, b_all, t_all = [], [], []
        while sum(len(a) for a in a_all) < batch:
            a = self.rng.integers(0, n, 4 * batch)
            b = self.rng.integers(0, n, 4 * batch)
            position, ok = self.targets(operator, self.keys[a], self.keys[b])
            ok &= a != b
            a_all.append(a[ok])
            b_all.append(b[ok])
            t_all.append(position[ok])
        return tuple(np.concatenate(x)[:batch] for x in (a_all, b_all, t_all))

    def step(self) -> list[Batch]:
        """One training step's compositions: a batch per operator, then difference cascaded after union,
        (x1 (+) x2) (-) x2, keeping the rows whose target is a train label set."""
        batches = [((operator,), *self.pairs(operator)) for operator in OPERATORS]
        a, b, _ = self.pairs("union")
        position, ok = self.targets("difference", self.keys[a] | self.keys[b], self.keys[b])
        return [*batches, (("union", "difference"), a[ok], b[ok], position[ok])]

    def chain_targets(self, chain: tuple[str, ...], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """compose_chain's T for each row of operand ids: its train label set index, and whether T is
        non-empty and one of them."""
        target = label_keys(
            compose_chain(
                chain, [keys_to_labels(self.keys[ids[:, i]], self.n_classes) for i in range(ids.shape[1])]
            )
        )
        position = np.searchsorted(self.set_keys, target).clip(max=len(self.set_keys) - 1)
        return position, (self.set_keys[position] == target) & (target > 0)

    def chain_pairs(self, chain: tuple[str, ...], batch: int) -> tuple[np.ndarray, np.ndarray]:
        """`batch` rows of distinct operand ids (n, len(chain) + 1) whose chained target is a non-empty
        train label set (rejection sampling), and T's index."""
        n, width = len(self.keys), len(chain) + 1
        ids_all, t_all = [], []
        while sum(len(i) for i in ids_all) < batch:
            ids = self.rng.integers(0, n, (4 * batch, width))
            position, ok = self.chain_targets(chain, ids)
            ordered = np.sort(ids, axis=1)
            ok &= (ordered[:, 1:] != ordered[:, :-1]).all(axis=1)
            ids_all.append(ids[ok])
            t_all.append(position[ok])
        return np.concatenate(ids_all)[:batch], np.concatenate(t_all)[:batch]

    def chain_step(self, batch: int | None = None) -> list[ChainBatch]:
        """A batch per chain of two operators (all 9): the first operator's output is the first operand
        of the second, a fresh image the second operand."""
        return [(chain, *self.chain_pairs(chain, batch or self.batch)) for chain in CHAINS]


def compose(operators, chain: tuple[str, ...], first, second):
    """The chain applied to operands `first` and `second`, the second operand of every step (the cascade)."""
    result = operators(chain[0], first, second)
    for operator in chain[1:]:
        result = operators(operator, result, second)
    return result


def compose_operands(operators, chain: tuple[str, ...], operands: list, binarize: bool = True):
    """((x0 op1 x1) op2 x2)...: each step's output the next step's first operand; with `binarize`,
    passed on as its sign (straight-through gradient), as a composed query is a code."""
    result = operators(chain[0], operands[0], operands[1])
    for operator, other in zip(chain[1:], operands[2:], strict=True):
        if binarize:
            result = result + (torch.where(result > 0, 1.0, -1.0) - result).detach()
        result = operators(operator, result, other)
    return result
