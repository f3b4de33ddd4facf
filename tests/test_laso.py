"""DCOH's peer and ceiling: the LaSO-style feature operators, the shared train compositions, the
prototype oracle, each against a hand computation."""

import dataclasses

import numpy as np
import pytest
import torch

from hashdemo.data.label_ops import compose_labels, keys_to_labels
from hashdemo.evaluation.references import majority_code
from hashdemo.model.config import TrainConfig
from hashdemo.model.laso import FeatureOperators, compose_features, cosine_ranking
from hashdemo.model.registry import build_operators, model_config, name_of
from hashdemo.training.pairs import TrainPairs, compose


def test_laso_is_a_registry_entry_with_feature_operators_on_dcoh_s_features():
    cfg = model_config("laso")
    assert name_of(cfg) == "laso" and cfg.conv7_channels == model_config("dcoh").conv7_channels
    operators, discriminator = build_operators(cfg)
    assert isinstance(operators, FeatureOperators) and discriminator is None
    with pytest.raises(ValueError, match="unknown operator"):
        operators("xor", torch.zeros(1, 96), torch.zeros(1, 96))


def test_a_chain_of_feature_operators_applies_left_to_right():
    torch.manual_seed(0)
    operators = FeatureOperators(dim=4, n_classes=3, hidden=8)
    a, b, c = (np.random.default_rng(i).random((2, 4), dtype=np.float32) for i in range(3))
    with torch.no_grad():
        by_hand = operators(
            "difference", operators("union", torch.from_numpy(a), torch.from_numpy(b)), torch.from_numpy(c)
        )
    np.testing.assert_allclose(
        compose_features(operators, ("union", "difference"), [a, b, c]), by_hand.numpy()
    )


def test_cosine_ranking_orders_by_angle_and_ties_by_id():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    ranked = cosine_ranking(np.array([[3.0, 0.0]], dtype=np.float32), gallery, 4)
    assert ranked.tolist() == [[0, 2, 3, 1]]  # 0 and 2 point the same way: the lower id first


def test_train_compositions_include_the_cascade_with_its_own_targets():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 6)) < 0.3).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    pairs = TrainPairs(labels, batch=16, rng=np.random.default_rng(1))
    batches = pairs.step()
    assert [chain for chain, *_ in batches] == [
        ("union",),
        ("intersection",),
        ("difference",),
        ("union", "difference"),
    ]
    chain, a, b, t = batches[-1]
    expected = compose_labels("difference", labels[a] | labels[b], labels[b])
    np.testing.assert_array_equal(keys_to_labels(pairs.set_keys[t], 6), expected)
    assert (expected.sum(1) > 0).all()
    # compose() feeds the second operand to every step of the chain
    calls = []
    compose(lambda op, x, y: calls.append((op, x, y)) or x + y, ("union", "difference"), 1, 10)
    assert calls == [("union", 1, 10), ("difference", 11, 10)]


def test_the_majority_code_reference_queries_with_the_majority_code_of_the_target_set():
    bits = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=np.uint8)
    labels = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.uint8)
    # the majority of T = {0}'s three codes is 1100: its three members are its three nearest codes
    assert majority_code(np.array([[1, 0]], dtype=np.uint8), bits, labels)["map@100"] == 1.0
    # T = {1}: the majority of 0011 and 0111 (a 1-1 tie on bit 1 goes to 0) is 0011, nearest to both
    assert majority_code(np.array([[0, 1]], dtype=np.uint8), bits, labels)["map@100"] == 1.0


@pytest.mark.slow  # trains the operators
def test_laso_training_lowers_its_loss_on_toy_features(monkeypatch):
    from hashdemo.training import laso

    rng = np.random.default_rng(0)
    labels = (rng.random((300, 5)) < 0.3).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    features = (labels @ rng.random((5, 16)) + 0.05 * rng.random((300, 16))).astype(np.float32)

    class Model:  # h(x) stands in as the features themselves
        frozen_backbone = False

        def encode(self, images):
            return type("Encoded", (), {"pooled": features[images]})()

    split = type("Split", (), {"images": np.arange(300), "labels": labels})()
    monkeypatch.setattr(laso, "laso_validation", lambda *args: {"selection": 0.0})
    cfg = TrainConfig(
        method="laso", conv7_channels=16, bits=16, n_classes=5, operator_steps=1, operator_batch=32
    )
    first = laso.fit_laso(cfg, Model(), split, split, progress=False)["metrics"]["loss"]
    longer = dataclasses.replace(cfg, operator_steps=150)
    last = laso.fit_laso(longer, Model(), split, split, progress=False)["metrics"]["loss"]
    assert sum(last.values()) < sum(first.values())
