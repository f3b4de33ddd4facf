"""The field's protocol: the curves by hand, ties in random orders, the each-item protocol, the fused
re-rank, DCOH's references and the verdicts drawn from spreads."""

from __future__ import annotations

import numpy as np
import pytest

from hashdemo.evaluation.field import Scoring, at_length, code_ranker, fusion_weight, length_command
from hashdemo.evaluation.field_tables import leader, verdict_table
from hashdemo.evaluation.localization import Items
from hashdemo.evaluation.objects import field_protocols
from hashdemo.evaluation.references import THRESHOLD_RULES, Exemplars, binarise, laso_threshold_rule
from hashdemo.model.laso import FeatureOperators
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.retrieval.metrics import (
    average_precisions,
    mean_average_precision,
    precision_at_ns,
    radius_curve,
)

LABELS = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.uint8)


def test_radius_curve_by_hand():
    # one query of label 0 against four codes at distances 0, 1, 1, 3
    distances = np.array([[0, 1, 1, 3]])
    curve = radius_curve(distances, np.array([[1, 0]], dtype=np.uint8), LABELS, nbits=3)
    # radius 0: {0}, relevant; radius 1: {0, 1, 2}, two relevant of three; radius 3: all, 3 of 4
    assert curve["precision"] == pytest.approx([1.0, 2 / 3, 2 / 3, 3 / 4])
    assert curve["recall"] == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])
    assert curve["empty"] == [0.0, 0.0, 0.0, 0.0]


def test_radius_curve_counts_an_empty_answer_as_zero_only_in_the_zero_empty_precision():
    distances = np.array([[0, 2, 2, 2], [1, 1, 2, 2]])
    labels = np.array([[1, 0], [1, 0]], dtype=np.uint8)
    curve = radius_curve(distances, labels, LABELS, nbits=2)
    # radius 0: the second query retrieves nothing
    assert curve["empty"][0] == 0.5
    assert curve["precision"][0] == 1.0  # over the one query that retrieves something
    assert curve["precision_zero_empty"][0] == 0.5
    with pytest.raises(ValueError, match="lie in"):
        radius_curve(distances + 5, labels, LABELS, nbits=2)


def test_precision_at_ns_by_hand_and_a_short_ranking_counts_misses():
    ranked = np.array([[0, 2, 1, 3]])
    query = np.array([[1, 0]], dtype=np.uint8)
    assert precision_at_ns(ranked, query, LABELS, (1, 2, 4, 8)) == pytest.approx([1.0, 0.5, 0.75, 3 / 8])


def test_average_precisions_average_to_the_map():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (30, 4)).astype(np.uint8)
    ranked = np.stack([rng.permutation(30) for _ in range(5)])
    aps = average_precisions(ranked, labels[:5], labels, k=10)
    assert aps.shape == (5,)
    assert aps.mean() == pytest.approx(mean_average_precision(ranked, labels[:5], labels, k=10))


def test_each_item_scores_the_same_ranking_once_per_item():
    from hashdemo.evaluation.objects import object_protocols
    from hashdemo.retrieval.selection import CamAttention

    items = Items(
        ids=np.array([3, 7]),
        classes=np.array([[2, 5, -1], [1, 4, 6]]),
        boxes=np.array(
            [
                [[0, 0, 10, 10], [20, 20, 12, 12], [-1, -1, -1, -1]],
                [[0, 0, 5, 5], [10, 10, 20, 20], [40, 40, 8, 8]],
            ]
        ),
    )
    regions = np.zeros((8, 64, 64), dtype=bool)
    empty = np.zeros(8)
    attention = CamAttention(orders=np.zeros((8, 4), int), positive=empty, regions=regions, m_avg=regions)
    protocols = object_protocols(items, attention)
    each = protocols["each"]
    assert each.ids.tolist() == [3, 3, 7, 7, 7]
    assert each.classes.tolist() == [2, 5, 1, 4, 6]
    assert protocols["object"].classes.tolist() == [5, 4]  # the largest boxes
    assert set(field_protocols(protocols)) == {"object", "each"}  # the attended object is method 1's own


def test_ties_in_random_orders_move_a_tied_ranking_and_leave_a_strict_one_alone():
    labels = np.array([[1, 0]] * 5 + [[0, 1]] * 5, dtype=np.uint8)
    scoring = Scoring(labels[:2], labels, {})
    tied = np.zeros((10, 4), dtype=np.uint8)  # every gallery code at the same distance
    row, _ = scoring.with_ties(code_ranker(tied[:2], tied))
    assert row["map_std"] > 0  # the order of a tie decides the AP
    strict = np.array([[0, 0, 0, 0]] + [[1] * k + [0] * (4 - k) for k in range(1, 4)], dtype=np.uint8)
    labels4 = labels[[0, 1, 5, 6]]
    row, first = Scoring(labels4[:1], labels4, {}).with_ties(code_ranker(strict[:1], strict))
    assert row["map_std"] == 0.0
    assert first.tolist() == [[0, 1, 2, 3]]


def test_the_fused_weight_zero_is_the_seed_s_rerank_and_a_large_weight_follows_the_global_code():
    rng = np.random.default_rng(3)
    g, local = rng.integers(0, 2, (200, 16), dtype=np.uint8), rng.integers(0, 2, (200, 64), dtype=np.uint8)
    qg, ql = g[:5] ^ (rng.random((5, 16)) < 0.1), local[:5]
    selected = np.stack([rng.permutation(64)[:8] for _ in range(5)])
    gi, li = HammingIndex(g), HammingIndex(local)
    seed = hierarchical_search(gi, li, qg.astype(np.uint8), ql, selected, 50)
    zero = hierarchical_search(gi, li, qg.astype(np.uint8), ql, selected, 50, global_weight=0.0)
    assert all((a == b).all() for a, b in zip(seed, zero, strict=True))
    ids, local_d, global_d = hierarchical_search(gi, li, qg.astype(np.uint8), ql, selected, 50, 100.0)
    assert (np.diff(global_d, axis=1) >= 0).all()  # the global distance now leads
    assert not (ids == seed[0]).all()
    with pytest.raises(ValueError, match="global_weight"):
        hierarchical_search(gi, li, qg.astype(np.uint8), ql, selected, 50, -1.0)


def test_the_fusion_weight_is_chosen_on_val_from_its_grid():
    rng = np.random.default_rng(0)
    n = 2000
    labels = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, n)]
    val = Encoded(
        global_bits=np.repeat(labels, 4, axis=1) ^ (rng.random((n, 16)) < 0.1).astype(np.uint8),
        local_bits=rng.integers(0, 2, (n, 32), dtype=np.uint8),
        pooled=np.zeros((n, 32), np.float32),
        label_probs=np.zeros((n, 4), np.float32),
    )
    orders = np.stack([rng.permutation(32) for _ in range(500)])
    chosen = fusion_weight(val, labels, orders, 8, 0.1)
    assert chosen["weight"] in [row["weight"] for row in chosen["grid"]]
    # the local bits are noise, so leaning on the global code must win on val
    assert chosen["weight"] > 0


def test_the_best_exemplar_leaves_itself_out_and_takes_the_best_code_of_each_set():
    bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=np.uint8)
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0]], dtype=np.uint8)
    exemplars = Exemplars.of(bits, labels)
    assert exemplars.ranked.shape == (5, 4)
    assert all(i not in row for i, row in enumerate(exemplars.ranked.tolist()))
    score = exemplars.score(np.array([[0, 1]], dtype=np.uint8), labels)
    assert score["map@100"] == 1.0  # code 2's nearest other code is 3, of its own set
    assert set(exemplars.best.values()) <= set(range(5))


def test_the_laso_threshold_rule_is_one_of_the_rules_and_binarises_above_it():
    rng = np.random.default_rng(0)
    n, dim, classes = 400, 12, 3
    labels = (rng.random((n, classes)) < 0.5).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    pooled = (labels @ rng.random((classes, dim)) + rng.random((n, dim)) * 0.1).astype(np.float32)
    chosen = laso_threshold_rule(FeatureOperators(dim, classes), pooled, labels)
    assert chosen["rule"] in THRESHOLD_RULES
    assert chosen["thresholds"].shape == (dim,)
    assert binarise(np.array([[0.2, 0.8]]), np.array([0.5, 0.5])).tolist() == [[0, 1]]


def field_result(values: dict[str, tuple[float, float]]) -> dict:
    return {
        "bits": {"global": 32, "local": 256},
        "field": {"lengths": [16]},
        "lengths": {"16": {m: {"map": mean, "map_std": std} for m, (mean, std) in values.items()}},
    }


def test_a_lead_within_the_spreads_is_said_so_and_one_beyond_them_is_called_beyond():
    close = field_result({"csq": (0.70, 0.01), "hier_cam": (0.71, 0.01)})
    assert leader(close, "16", "map") == ("hier_cam", "csq", False)
    assert "within the spreads of csq" in verdict_table(close)
    far = field_result({"csq": (0.60, 0.01), "hier_cam": (0.71, 0.01)})
    assert leader(far, "16", "map") == ("hier_cam", "csq", True)
    assert "hier_cam (beyond csq)" in verdict_table(far)


def test_models_at_other_lengths_have_their_own_folders_and_commands():
    assert at_length("csq", 32) == "csq"
    assert at_length("csq", 16) == "csq_16"
    assert at_length("hier", 64) == "hier_h64"
    assert length_command("greedyhash", 64).endswith("--bits 64 --out checkpoints/greedyhash_64")


def test_the_map_of_ranked_labels_equals_the_map_with_the_whole_relevance_matrix():
    from hashdemo.retrieval.metrics import map_of_ranked_labels

    rng = np.random.default_rng(1)
    labels = (rng.random((200, 5)) < 0.3).astype(np.uint8)
    ranked = np.stack([rng.permutation(200)[:20] for _ in range(7)])
    for exact in (False, True):
        expected = mean_average_precision(ranked, labels[:7], labels, exact=exact, k=20)
        assert map_of_ranked_labels(labels[ranked], labels[:7], exact=exact) == pytest.approx(expected)


def test_the_field_scores_equal_the_metrics_module_s_on_whole_gallery_rankings():
    from hashdemo.evaluation.objects import ObjectQueries
    from hashdemo.evaluation.scores import full_scores

    rng = np.random.default_rng(2)
    labels = (rng.random((300, 5)) < 0.3).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    objects = {"object": ObjectQueries(np.array([0, 1, 1]), np.array([0, 2, 4]))}
    ranked = np.stack([rng.permutation(300) for _ in range(8)])
    ours = Scoring(labels[:8], labels, objects).scores(ranked)
    reference = full_scores(ranked, labels[:8], labels, objects)
    for key in ("map", "map_exact", "map@100", "map_exact@100", "p@10", "object_map@100"):
        assert ours[key] == pytest.approx(reference[key]), key
    assert ours["map@1000"] == pytest.approx(mean_average_precision(ranked, labels[:8], labels, k=1000))


def test_field_lines_draw_every_table_from_a_result():
    from hashdemo.evaluation.field_tables import field_lines

    def row(value):
        metrics = {k: value for k in ("map", "map@1000", "map@100", "map_exact@100", "each_map@100")}
        return {**metrics, **{f"{k}_std": 0.001 for k in metrics}, "bits_stored": 32, "bits_compared": 32}

    curve = {
        "precision_at_n": {"100": 0.9, "1000": 0.8},
        "precision_hamming2": 0.7,
        "hamming2_empty_share": 0.1,
    }
    result = {
        "bits": {"global": 32, "local": 256},
        "field": {"lengths": [32], "tie_orders": 5},
        "lengths": {"32": {"csq": row(0.7), "hier_cam": row(0.8)}, "256": {"local_full": row(0.9)}},
        "curves": {"32": {"csq": curve}},
        "hier_seeds": {"hier_cam": {"map": {"mean": 0.8, "std": 0.01, "n": 3}}},
    }
    text = "\n".join(field_lines(result))
    assert "| hier_cam | 0.800 ± 0.010 |" in text  # the retrains' spread where it is the larger
    assert "each item map@100" in text and "P within radius 2" in text
    assert "| full mAP" not in text and "hier_cam (within the spreads of csq)" not in text
    assert "hier_cam (beyond csq)" in text


@pytest.mark.parametrize(
    "name, command",
    [
        ("csq", "python -m hashdemo train csq"),
        ("csq_16", "python -m hashdemo train csq --bits 16 --out checkpoints/csq_16"),
        ("hier_h64", "python -m hashdemo train hier --bits 64 --out checkpoints/hier_h64"),
        ("hier_seed1", "python -m hashdemo train hier --seed 1 --out checkpoints/hier_seed1"),
        (
            "laso_ops2",
            "python -m hashdemo train laso --operator-seed 2 --h-from checkpoints/dcoh "
            "--out checkpoints/laso_ops2",
        ),
        (
            "dcoh_no_adv_seed1",
            "python -m hashdemo train dcoh_no_adv --seed 1 --out checkpoints/dcoh_no_adv_seed1",
        ),
    ],
)
def test_every_checkpoint_folder_names_the_command_that_trains_it(name, command):
    from hashdemo.model.registry import rebuild_command

    assert rebuild_command(name) == command
