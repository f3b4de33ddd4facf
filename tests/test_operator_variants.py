"""The operator phase's optional variants (chain batches, logit range): the defaults keep the old batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashdemo.data.label_ops import OPERATORS, compose_chain, keys_to_labels
from hashdemo.model.config import TrainConfig
from hashdemo.model.networks import CodeOperators
from hashdemo.training.operators import OperatorTraining
from hashdemo.training.pairs import CHAINS, TrainPairs, compose_operands


def toy_labels(n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = (rng.random((n, 10)) < 0.2).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    return labels


def toy_training(**fields) -> OperatorTraining:
    labels = toy_labels()
    codes = np.random.default_rng(1).integers(0, 2, (len(labels), 8), dtype=np.uint8)
    return OperatorTraining(TrainConfig(method="dcoh", bits=8, operator_batch=32, **fields), codes, labels)


def test_the_val_chosen_defaults() -> None:
    cfg = TrainConfig(method="dcoh")
    assert cfg.chain_batch == 128 and cfg.logit_range == 8.0


def test_chain_batches_cover_every_chain_with_compose_chains_targets() -> None:
    labels = toy_labels()
    pairs = TrainPairs(labels, 32, np.random.default_rng(0))
    batches = pairs.chain_step(24)
    assert [chain for chain, *_ in batches] == list(CHAINS) and len(CHAINS) == 9
    for chain, ids, t in batches:
        assert ids.shape == (24, 3) and len(t) == 24
        assert (np.sort(ids, 1)[:, 1:] != np.sort(ids, 1)[:, :-1]).all()  # distinct operands
        expected = compose_chain(chain, [labels[ids[:, i]] for i in range(3)])
        np.testing.assert_array_equal(keys_to_labels(pairs.set_keys[t], 10), expected)
        assert (expected.sum(1) > 0).all()


def test_the_default_config_keeps_the_exact_old_batches() -> None:
    """Without chain batches, TrainPairs draws the same batches from the same seeded stream as before:
    the operators train on the old compositions (a batch per operator, then union -> difference)."""
    labels = toy_labels()
    reference = TrainPairs(labels, 32, np.random.default_rng(0))
    training = toy_training(chain_batch=0)
    training.train.rng = np.random.default_rng(0)
    seen = []
    original = training.train.step
    training.train.step = lambda: seen.append(original()) or seen[-1]
    training.train.chain_step = lambda *_: pytest.fail("chain batches drawn with chain_batch=0")
    training.step()
    expected = reference.step()
    assert [b[0] for b in seen[0]] == [(op,) for op in OPERATORS] + [("union", "difference")]
    for got, want in zip(seen[0], expected, strict=True):
        assert got[0] == want[0]
        for x, y in zip(got[1:], want[1:], strict=True):
            np.testing.assert_array_equal(x, y)


def test_chain_batches_join_the_loss() -> None:
    torch.manual_seed(0)
    training = toy_training(chain_batch=16)
    drawn = []
    original = training.train.chain_step
    training.train.chain_step = lambda batch: drawn.append(batch) or original(batch)
    first = training.step()["similarity"]
    assert drawn == [16] and np.isfinite(first)
    for _ in range(40):
        last = training.step()["similarity"]
    assert last < first


def test_a_chain_feeds_the_binarised_first_output_to_the_second_operator() -> None:
    torch.manual_seed(0)
    ops = CodeOperators(8)
    x = [torch.sign(torch.randn(4, 8)) for _ in range(3)]
    middle = torch.sign(ops("intersection", x[0], x[1]))
    expected = ops("union", middle, x[2])
    torch.testing.assert_close(compose_operands(ops, ("intersection", "union"), x), expected)
    continuous = ops("union", ops("intersection", x[0], x[1]), x[2])
    torch.testing.assert_close(
        compose_operands(ops, ("intersection", "union"), x, binarize=False), continuous
    )
    x[0].requires_grad_(True)
    compose_operands(ops, ("intersection", "union"), x).sum().backward()
    assert x[0].grad.abs().sum() > 0  # straight-through: the first operator still learns from the chain


def first_logits(logit_range: float) -> torch.Tensor:
    torch.manual_seed(0)
    training = toy_training(logit_range=logit_range, adv_weight=0.0)
    captured = []
    original = torch.nn.functional.cross_entropy
    torch.nn.functional.cross_entropy = lambda logits, targets: (
        captured.append(logits) or original(logits, targets)
    )
    try:
        training.step()
    finally:
        torch.nn.functional.cross_entropy = original
    return captured[0].detach()


def test_logit_range_scales_the_prototype_logits() -> None:
    """Same seed, batches and operators: the logits scale with logit_range (the default, 8, as before)."""
    torch.testing.assert_close(first_logits(32.0), first_logits(8.0) * 4)
    assert first_logits(8.0).abs().max() <= 8.0 + 1e-5  # |generated . prototype| <= K, times 8 / K
