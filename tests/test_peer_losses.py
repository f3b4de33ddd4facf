"""The peers' losses against hand-computed cases, and each trains a one-level code through the registry."""

import math

import numpy as np
import pytest
import torch

from hashdemo.data import outfits
from hashdemo.data.fashion_mnist import fmnist_present
from hashdemo.model.checkpoints import load_checkpoint, save_checkpoint
from hashdemo.model.peer_losses import (
    CODE_LOSSES,
    LossInputs,
    SignStraightThrough,
    csq,
    dsh,
    hash_centres,
    hashnet,
    sylvester_hadamard,
)
from hashdemo.model.registry import MODELS, PEERS, model_config, name_of
from hashdemo.training.loop import fit

TWO_CLASSES = torch.tensor([[1, 0], [0, 1]])


def inputs(pre, labels, iteration=0, classifier=None) -> LossInputs:
    return LossInputs(
        torch.as_tensor(pre, dtype=torch.float32), torch.as_tensor(labels), iteration, classifier
    )


def test_every_peer_is_one_registry_entry_with_its_own_loss():
    assert set(PEERS) == set(CODE_LOSSES)
    for name in PEERS:
        cfg = model_config(name)
        assert MODELS[name].method == "hier" and cfg.loss == name and cfg.local_weight == 0
        assert name_of(cfg) == name and cfg.bits == 32  # the global code's length


def test_hadamard_centres_are_k_over_2_apart():
    matrix = sylvester_hadamard(8)
    np.testing.assert_array_equal(matrix @ matrix.T, 8 * np.eye(8))
    centres, tie_break = hash_centres(32, 10)
    assert centres.shape == (10, 32) and set(tie_break.tolist()) <= {0.0, 1.0}
    distances = (centres[:, None, :] != centres[None, :, :]).sum(-1)
    assert (distances[~torch.eye(10, dtype=bool)] == 16).all()
    with pytest.raises(ValueError, match="power-of-two"):
        sylvester_hadamard(12)


def test_csq_pulls_a_multi_label_image_to_the_sign_of_its_labels_centre_sum():
    centres, tie_break = hash_centres(4, 3)  # rows of H_4: [1,1,1,1], [1,-1,1,-1], [1,1,-1,-1]
    labels = torch.tensor([[1, 1, 0]])  # sum [2, 0, 2, 0]: bits 1 and 3 are ties, broken by tie_break
    target = torch.tensor([1.0, tie_break[1].item(), 1.0, tie_break[3].item()])
    at_target = (2 * target - 1) * 20  # tanh ~ +-1: on the centre
    terms = csq(inputs(at_target[None], labels))
    assert terms["centre"].item() < 1e-6 and terms["quant"].item() < 1e-10
    off = csq(inputs(-at_target[None], labels))["centre"].item()
    assert off > 10


def test_hashnet_is_a_weighted_cross_entropy_of_the_scaled_inner_product():
    """Three images, two sharing a class: 5 similar pairs of 9 (self-pairs included), 4 dissimilar, so
    the class-balance weights differ: |S| / |S1| = 9/5 on similar pairs, |S| / |S0| = 9/4 on the rest."""
    pre = [[2.0, -1.0], [1.0, 1.0], [-0.5, 2.0]]
    labels = [[1, 0], [1, 0], [0, 1]]
    terms = hashnet(inputs(pre, labels, iteration=0), alpha=0.1)
    codes = np.tanh(np.array(pre))
    dot = 0.1 * codes @ codes.T
    similar = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], float)
    loss = np.log1p(np.exp(dot)) - similar * dot
    weights = np.where(similar > 0, 9 / 5, 9 / 4)
    assert terms["hashnet"].item() == pytest.approx((loss * weights).sum() / 9, rel=1e-5)
    unweighted = (loss.sum() / 9).item()
    assert terms["hashnet"].item() != pytest.approx(unweighted, rel=1e-3)  # the weighting is seen
    later = hashnet(inputs(pre, labels, iteration=10_000), alpha=0.1)["hashnet"].item()
    assert later != pytest.approx(terms["hashnet"].item())  # the continuation sharpens tanh


def test_dsh_is_zero_for_equal_similar_codes_and_dissimilar_codes_beyond_the_margin():
    same = dsh(inputs([[1.0, -1.0], [1.0, -1.0]], [[1, 0], [1, 1]]))
    assert same["contrastive"].item() == 0 and same["regulariser"].item() == 0
    far = dsh(inputs([[2.0, 2.0], [-2.0, -2.0]], TWO_CLASSES))  # squared distance 32 >= margin 4
    assert far["contrastive"].item() == 0
    near = dsh(inputs([[1.0, 1.0], [1.0, 0.0]], TWO_CLASSES))  # distance 1 < margin 4: (4 - 1) / 2 twice
    assert near["contrastive"].item() == pytest.approx(2 * 1.5 / 4)


def test_the_sign_passes_its_gradient_straight_through():
    x = torch.tensor([0.3, -2.0, 5.0], requires_grad=True)
    out = SignStraightThrough.apply(x)
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert out.tolist() == [1.0, -1.0, 1.0] and x.grad.tolist() == [1.0, 2.0, 3.0]


def test_greedyhash_classifies_the_binary_code():
    classifier = torch.nn.Linear(2, 2)
    with torch.no_grad():
        classifier.weight.copy_(torch.eye(2) * 10)
        classifier.bias.zero_()
    terms = CODE_LOSSES["greedyhash"](inputs([[3.0, -0.5]], [[1, 0]], classifier=classifier))
    expected = (math.log1p(math.exp(-10)) + math.log1p(math.exp(-10))) / 2  # sign = [1, -1]: both right
    assert terms["classify"].item() == pytest.approx(expected, rel=1e-2)  # float32 near 0
    assert terms["penalty"].item() == pytest.approx(0.1 * (8 + 0.125) / 2)


@pytest.mark.slow  # trains each peer
@pytest.mark.skipif(not fmnist_present(), reason="Fashion-MNIST not installed")
@pytest.mark.parametrize("name", sorted(PEERS))
def test_each_peer_trains_and_loads_as_its_registry_name(name, tmp_path_factory):
    recipe = outfits.OutfitRecipe(train_size=256, val_size=120, query_size=8, gallery_size=8)
    splits = outfits.load_outfits(recipe, cache_dir=tmp_path_factory.getbasetemp() / "peer_outfits")
    cfg = model_config(name, epochs=2, train_size=256, batch_size=64, conv7_channels=64)
    checkpoint = fit(cfg, splits, progress=False)
    first, last = (sum(r["loss"].values()) for r in checkpoint["metrics"]["history"])
    assert last < first
    directory = tmp_path_factory.mktemp(name)
    save_checkpoint(checkpoint, directory / name)
    assert load_checkpoint(name, directory).config.loss == name
