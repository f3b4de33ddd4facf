"""The shipped checkpoints load with weights_only=True and reproduce the "subset" figures that
`python -m hashdemo evaluate` wrote into their metrics.json."""

import json
import re

import numpy as np
import pytest

from hashdemo.data.outfits import load_outfits
from hashdemo.model.cam import attend_code
from hashdemo.model.checkpoints import load_checkpoint
from hashdemo.model.config import TrainConfig
from hashdemo.model.registry import PEERS, name_of
from hashdemo.retrieval.protocol import SUBSET, subset_scores
from hashdemo.storage.locations import CHECKPOINT_DIR

# Bits are signs of float outputs; a different BLAS thread count may flip a near-zero one.
TOLERANCE = 0.005


@pytest.fixture(scope="module")
def splits():
    return load_outfits()


def _subset(splits, loaded, with_conv7=False):
    query = loaded.model.encode(splits["query"].images[: SUBSET["queries"]], with_conv7=with_conv7)
    gallery = loaded.model.encode(splits["gallery"].images[: SUBSET["gallery"]])
    return (
        query,
        gallery,
        splits["query"].labels[: SUBSET["queries"]],
        splits["gallery"].labels[: SUBSET["gallery"]],
    )


SHIPPED = [
    "hier",
    "single_level",
    "single_level_local",
    *(
        f"{name}{seed}"
        for name in ("dcoh", "dcoh_no_adv")
        for seed in ("", "_seed1", "_seed2", "_ops1", "_ops2")
    ),
    *(f"{name}{seed}" for name in PEERS for seed in ("", "_seed1", "_seed2")),  # three full retrains each
    "laso",
]


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_files_agree(name):
    loaded = load_checkpoint(name)
    config = json.loads((CHECKPOINT_DIR / name / "config.json").read_text())
    assert TrainConfig(**config) == loaded.config and name_of(loaded.config) == re.sub(
        r"_(seed|ops)\d$", "", name
    )
    assert loaded.metrics["train_seconds"] <= 1200, "a shipped model trains in at most 20 minutes"
    assert loaded.metrics["selected_epoch"] >= 1


def _same_h(a: str, b: str) -> bool:
    left, right = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    return all(left[key].equal(right[key]) for key in left)


def test_dcoh_seed_runs_are_what_their_names_say():
    """Full retrains learn their own h(x); the ablation and the operator-only runs reuse their source's."""
    assert not _same_h("dcoh", "dcoh_seed1") and not _same_h("dcoh_seed1", "dcoh_seed2")
    for seed in ("", "_seed1", "_seed2"):
        assert _same_h(f"dcoh{seed}", f"dcoh_no_adv{seed}")
    for run in ("dcoh_ops1", "dcoh_ops2", "dcoh_no_adv_ops1", "dcoh_no_adv_ops2"):
        assert _same_h("dcoh", run)
    assert load_checkpoint("dcoh_ops1").config.operator_seed == 1


@pytest.mark.slow  # encodes with the shipped models
def test_dcoh_reproduces_its_subset_map(splits):
    loaded = load_checkpoint("dcoh")
    expected = loaded.metrics["test"]["subset"]
    got = subset_scores(*_subset(splits, loaded))
    assert got["global_map"] == pytest.approx(expected["global_map"], abs=TOLERANCE)


@pytest.mark.slow  # encodes with the shipped models
def test_hier_reproduces_its_subset_maps_incl_the_cam_rerank(splits):
    loaded = load_checkpoint("hier")
    test = loaded.metrics["test"]
    query, gallery, q_labels, g_labels = _subset(splits, loaded, with_conv7=True)
    weights = loaded.model.cam_weights().numpy()
    selected = np.stack(
        [
            attend_code(conv7, weights, bits, test["theta"], test["L"]).selected
            for conv7, bits in zip(query.conv7, query.global_bits, strict=True)
        ]
    )
    got = subset_scores(query, gallery, q_labels, g_labels, selected, test["K"])
    assert got["global_map"] == pytest.approx(test["subset"]["global_map"], abs=TOLERANCE)
    assert got["hier_cam_map"] == pytest.approx(test["subset"]["hier_cam_map"], abs=TOLERANCE)
