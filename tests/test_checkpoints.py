"""The shipped checkpoints load with weights_only=True and reproduce the "subset" figures that
`python -m hashdemo evaluate` wrote into their metrics.json."""

import json

import numpy as np
import pytest

from hashdemo.cam import attend_code
from hashdemo.checkpoints import CHECKPOINT_DIR, load_checkpoint
from hashdemo.config import TrainConfig
from hashdemo.data import load_outfits
from hashdemo.retrieval.protocol import SUBSET, subset_scores

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
    *(f"{name}{seed}" for name in ("dcoh", "dcoh_no_adv") for seed in ("", "_seed1", "_seed2")),
]


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_files_agree(name):
    loaded = load_checkpoint(name)
    config = json.loads((CHECKPOINT_DIR / name / "config.json").read_text())
    assert TrainConfig(**config) == loaded.config and loaded.config.name == name.split("_seed")[0]
    assert loaded.metrics["train_seconds"] <= 1200, "a shipped model trains in at most 20 minutes"
    assert loaded.metrics["selected_epoch"] >= 1


def test_dcoh_reproduces_its_subset_map(splits):
    loaded = load_checkpoint("dcoh")
    expected = loaded.metrics["test"]["subset"]
    got = subset_scores(*_subset(splits, loaded))
    assert got["global_map"] == pytest.approx(expected["global_map"], abs=TOLERANCE)


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
