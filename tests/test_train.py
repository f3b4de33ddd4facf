"""Code operators, overlap partners, and short seeded training runs of both methods (SPEC secs. 1-2)."""

import dataclasses

import numpy as np
import pytest
import torch

import hashdemo.retrieval.protocol
import hashdemo.training.loop
from hashdemo.data import fashion_mnist
from hashdemo.data import outfits as data
from hashdemo.data.label_ops import OPERATORS, compose_labels, keys_to_labels, label_keys
from hashdemo.model.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from hashdemo.model.config import TrainConfig
from hashdemo.model.networks import CodeDiscriminator, CodeOperators, HashNet, preprocess
from hashdemo.model.registry import name_of
from hashdemo.training.loop import fit
from hashdemo.training.operators import OperatorTraining

# ----------------------------------------------------------------------------- code operators


@pytest.mark.parametrize("operator", OPERATORS)
def test_operator_is_tanh_of_a_linear_map_on_the_concatenated_codes(operator: str) -> None:
    torch.manual_seed(0)
    ops = CodeOperators(bits=8)
    a, b = torch.randn(5, 8).tanh(), torch.randn(5, 8).tanh()
    linear = ops.maps[operator]
    assert linear.weight.shape == (8, 16)  # W in R^{K x 2K} (eqs. 3.3-3.5)
    expected = torch.tanh(a @ linear.weight[:, :8].T + b @ linear.weight[:, 8:].T + linear.bias)
    torch.testing.assert_close(ops(operator, a, b), expected)
    assert not torch.equal(ops(operator, a, b), ops(operator, b, a))  # [h1, h2] is ordered


def test_operators_differ_from_each_other() -> None:
    torch.manual_seed(0)
    ops = CodeOperators(bits=8)
    a, b = torch.randn(4, 8).tanh(), torch.randn(4, 8).tanh()
    outs = [ops(op, a, b) for op in OPERATORS]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


@pytest.mark.parametrize("operator", ["xor", "Union", ""])
def test_unknown_operator_is_refused(operator: str) -> None:
    ops = CodeOperators(bits=4)
    with pytest.raises(ValueError, match="unknown operator"):
        ops(operator, torch.zeros(2, 4), torch.zeros(2, 4))


def test_cascaded_difference_trains_both_maps() -> None:
    # eq. 3.6: h_{(x1 (+) x2) (-) x2} = W_diff [W_union [h1, h2], h2]
    torch.manual_seed(0)
    ops = CodeOperators(bits=8)
    a = torch.randn(6, 8).tanh().requires_grad_()
    b = torch.randn(6, 8).tanh().requires_grad_()
    out = ops("difference", ops("union", a, b), b)
    assert out.shape == (6, 8)
    out.pow(2).sum().backward()
    for name in ("union", "difference"):
        assert ops.maps[name].weight.grad is not None and ops.maps[name].weight.grad.abs().sum() > 0
        assert ops.maps[name].bias.grad.abs().sum() > 0
    assert ops.maps["intersection"].weight.grad is None  # not on this path
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- operator phase


def toy_operator_training(batch: int = 32) -> tuple[OperatorTraining, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 10)) < 0.2).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    codes = rng.integers(0, 2, (300, 8), dtype=np.uint8)
    cfg = TrainConfig(method="dcoh", bits=8, operator_batch=batch)
    return OperatorTraining(cfg, codes, labels), codes, labels


@pytest.mark.parametrize("operator", OPERATORS)
def test_operator_pairs_have_a_nonempty_train_label_set_as_target(operator: str) -> None:
    training, _, labels = toy_operator_training()
    a, b, t = training.pairs(operator)
    assert len(a) == len(b) == len(t) == 32 and (a != b).all()
    expected = compose_labels(operator, labels[a], labels[b])
    np.testing.assert_array_equal(keys_to_labels(training.set_keys[t], 10), expected)
    assert (expected.sum(1) > 0).all()


def test_prototypes_are_the_mean_signed_code_of_each_label_set() -> None:
    training, codes, labels = toy_operator_training()
    for row, key in enumerate(training.set_keys[:5]):
        members = label_keys(labels) == key
        expected = codes[members].astype(np.float32).mean(0) * 2 - 1
        np.testing.assert_allclose(training.prototypes[row].numpy(), expected, atol=1e-6)


def test_operator_steps_lower_the_similarity_loss() -> None:
    torch.manual_seed(0)
    training, _, _ = toy_operator_training(batch=64)
    first = training.step()["similarity"]
    for _ in range(60):
        last = training.step()["similarity"]
    assert last < first - 0.1
    assert set(training.step()) == {"similarity", "adversarial", "discriminator"}  # adv_weight > 0 by default


# ----------------------------------------------------------------------------- training runs

needs_fmnist = pytest.mark.skipif(
    not fashion_mnist.fmnist_present(),
    reason="Fashion-MNIST idx files not installed",
)
# val holds 120 images: 40 queries against 80 (VAL_QUERIES is patched from 500 to 40 below)
RECIPE = data.OutfitRecipe(train_size=256, val_size=120, query_size=8, gallery_size=8)
VAL_QUERIES = 40
# 4 steps an epoch, 3 epochs: every main loss term falls from epoch 1 to 3 at the default lr
BASE = TrainConfig(
    epochs=3, train_size=256, batch_size=64, conv7_channels=64, operator_steps=20, operator_batch=32
)
MAIN_TERMS = {"hier": ("global", "local", "label"), "dcoh": ("global", "label")}
TRAIN_COMMANDS = {"hier": "python -m hashdemo train hier", "dcoh": "python -m hashdemo train dcoh"}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return data.load_outfits(RECIPE, cache_dir=tmp_path_factory.mktemp("outfits"))


@pytest.fixture(scope="module", params=["hier", "dcoh"])
def runs(request, splits):
    """The same seeded config trained twice: (config, first checkpoint, second checkpoint)."""
    cfg = dataclasses.replace(BASE, method=request.param)
    # One intra-op thread: with the other core busy, two threads stall each other (measured: 0.6 s
    # a run with one thread, 14 s with two). Both runs use the same count, as determinism needs.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(hashdemo.retrieval.protocol, "VAL_QUERIES", VAL_QUERIES)
            return cfg, fit(cfg, splits, progress=False), fit(cfg, splits, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow  # trains models
@needs_fmnist
def test_same_seed_gives_bit_identical_runs(runs) -> None:
    cfg, first, second = runs
    assert first["config"] == second["config"] == dataclasses.asdict(cfg)
    assert first["state"].keys() == second["state"].keys()
    for part in first["state"]:
        a, b = first["state"][part], second["state"][part]
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), f"{part}.{name} differs between identical runs"
    for key in ("history", "selected_epoch", "val", "train_images"):
        assert first["metrics"][key] == second["metrics"][key]
    assert len(first["metrics"]["history"]) == cfg.epochs
    assert first["metrics"]["train_images"] == cfg.train_size


@needs_fmnist
def test_main_loss_terms_fall(runs) -> None:
    cfg, checkpoint, _ = runs
    history = checkpoint["metrics"]["history"]
    first, last = history[0]["loss"], history[-1]["loss"]
    for term in MAIN_TERMS[cfg.method]:
        assert last[term] < first[term], f"{cfg.method} {term}: {first[term]:.4f} -> {last[term]:.4f}"
    for record in history:
        assert all(np.isfinite(v) for v in record["loss"].values())
        assert set(record["val"]) >= {"selection"}
    if cfg.method == "dcoh":  # phase 2: the operators on the frozen codes
        operators = checkpoint["metrics"]["operators"]
        assert set(operators["loss"]) == {"similarity", "adversarial", "discriminator"}
        assert all(np.isfinite(v) for v in operators["loss"].values())
        assert set(operators["val"]) >= {"single_map", *OPERATORS}


@needs_fmnist
def test_checkpoint_round_trip(runs, splits, tmp_path) -> None:
    cfg, checkpoint, _ = runs
    save_checkpoint(checkpoint, tmp_path / name_of(cfg))
    torch.load(tmp_path / name_of(cfg) / "model.pt", map_location="cpu", weights_only=True)  # plain data only
    loaded = load_checkpoint(name_of(cfg), tmp_path)
    assert loaded.config == cfg
    assert loaded.metrics["selected_epoch"] == checkpoint["metrics"]["selected_epoch"]
    assert not loaded.model.training

    reference = HashNet(cfg.conv7_channels, cfg.bits)
    reference.load_state_dict(checkpoint["state"]["model"])
    reference.eval()
    x = preprocess(splits["val"].images[:16])
    with torch.no_grad():
        got, want = loaded.model(x), reference(x)
    for field in ("conv7", "local_relaxed", "global_relaxed", "logits"):
        assert torch.equal(getattr(got, field), getattr(want, field)), field

    if cfg.method == "dcoh":
        operators = CodeOperators(cfg.bits)
        operators.load_state_dict(checkpoint["state"]["operators"])
        discriminator = CodeDiscriminator(cfg.bits)
        discriminator.load_state_dict(checkpoint["state"]["discriminator"])
        codes = want.global_relaxed
        with torch.no_grad():
            for op in OPERATORS:
                pair = (codes, codes.flip(0))
                assert torch.equal(loaded.operators(op, *pair), operators(op, *pair))
            assert torch.equal(loaded.discriminator(codes), discriminator(codes))
    else:
        assert loaded.operators is None and loaded.discriminator is None


@needs_fmnist
def test_truncated_checkpoint_names_the_train_command(runs, tmp_path) -> None:
    cfg, checkpoint, _ = runs
    save_checkpoint(checkpoint, tmp_path / name_of(cfg))
    path = tmp_path / name_of(cfg) / "model.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(name_of(cfg), tmp_path)
    assert TRAIN_COMMANDS[cfg.method] in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["hier", "dcoh"])
def test_missing_checkpoint_names_the_train_command(name: str, tmp_path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(name, tmp_path)
    assert TRAIN_COMMANDS[name] in str(info.value)
    assert "missing" in str(info.value)


@pytest.mark.slow  # trains models
@needs_fmnist
def test_the_ablation_reuses_h_of_x_and_trains_only_the_operators(runs, splits) -> None:
    cfg, checkpoint, _ = runs
    ablation = dataclasses.replace(cfg, adv_weight=0.0)
    if cfg.method != "dcoh":
        with pytest.raises(ValueError, match="only be reused"):
            fit(ablation, splits, progress=False, h_from=checkpoint)
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hashdemo.retrieval.protocol, "VAL_QUERIES", VAL_QUERIES)
        reused = fit(ablation, splits, progress=False, h_from=checkpoint)
    for name, value in checkpoint["state"]["model"].items():
        assert torch.equal(reused["state"]["model"][name], value)
    assert set(reused["metrics"]["operators"]["loss"]) == {"similarity"}  # no D without the adversarial term
    assert reused["metrics"]["history"] == checkpoint["metrics"]["history"]
    with pytest.raises(ValueError, match="only be reused"):
        fit(dataclasses.replace(ablation, seed=1), splits, progress=False, h_from=checkpoint)


@pytest.mark.slow  # trains models
@needs_fmnist
def test_an_interrupted_run_resumes_from_its_last_epoch_bit_for_bit(
    runs, splits, tmp_path, monkeypatch
) -> None:
    """Issue 20: a checkpoint of the whole training state every epoch; a rerun goes on from it and ends
    where the uninterrupted run ends (`runs` made that one)."""
    cfg, uninterrupted, _ = runs
    progress = tmp_path / "progress.pt"
    real_write, writes = hashdemo.training.loop.write_atomic, []

    def write_then_stop(path, data, **kwargs):
        real_write(path, data, **kwargs)
        writes.append(path)
        if len(writes) == 2:  # killed right after epoch 2 was saved
            raise KeyboardInterrupt

    monkeypatch.setattr(hashdemo.retrieval.protocol, "VAL_QUERIES", VAL_QUERIES)  # as `runs` trained
    monkeypatch.setattr(hashdemo.training.loop, "write_atomic", write_then_stop)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, splits, progress=False, resume_path=progress)
        monkeypatch.setattr(hashdemo.training.loop, "write_atomic", real_write)
        resumed = fit(cfg, splits, progress=False, resume_path=progress)
    finally:
        torch.set_num_threads(threads)
    for part in uninterrupted["state"]:
        for name, tensor in uninterrupted["state"][part].items():
            assert torch.equal(tensor, resumed["state"][part][name]), f"{part}.{name} differs after resuming"
    assert resumed["metrics"]["history"] == uninterrupted["metrics"]["history"]
    # a progress file of another configuration is not taken: training starts over
    other = dataclasses.replace(cfg, seed=1)
    assert hashdemo.training.loop.read_progress(progress, other) is None
