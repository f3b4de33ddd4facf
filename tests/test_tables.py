"""The Markdown tables (hashdemo.evaluation.tables and the benchmarks' tables) against hand-written output
for small hand-made results."""

import pytest

from hashdemo.evaluation import markdown, method_labels, tables
from hashdemo.evaluation.markdown import markdown_table


def test_markdown_table_lines():
    assert markdown_table(["a", "b"], [["x", "y"], ["z", "w"]]).split("\n") == [
        "| a | b |",
        "|---|---|",
        "| x | y |",
        "| z | w |",
    ]


def test_markdown_table_with_no_rows_is_its_header():
    assert markdown_table(["only"], []) == "| only |\n|---|"


def test_markdown_table_alignment():
    table = markdown_table(["l", "r", "c", "d"], [[1, 2, 3, 4]], align="lrc-")
    assert table.split("\n")[1] == "|:---|---:|:---:|---|"


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.5, 4, "0.5000"),  # a float: `digits` decimals
        (0.12345, 2, "0.12"),
        (2 / 3, 3, "0.667"),
        (0.5, None, "0.5"),  # digits None: str()
        (32, 4, "32"),  # an int as it is, never with decimals
        (1_000, 4, "1000"),
        (None, 4, "-"),  # no value
        ("1.0", 2, "1.0"),  # a str is never reformatted
        (True, 4, "True"),
    ],
)
def test_cell_formats_numbers(value, digits, expected):
    assert markdown.cell(value, digits) == expected
    assert markdown_table(["x"], [[value]], digits=digits).split("\n")[2] == f"| {expected} |"


def test_markdown_table_escapes_pipes_and_line_breaks():
    table = markdown_table(["a|b"], [["x | y"], ["two\nlines"], ["crlf\r\nend"]])
    assert table.split("\n") == ["| a\\|b |", "|---|", "| x \\| y |", "| two lines |", "| crlf end |"]


def test_markdown_table_refuses_a_ragged_row_and_wrong_alignments():
    with pytest.raises(ValueError, match="2 cells under 3 columns"):
        markdown_table(["a", "b", "c"], [["x", "y"]])
    with pytest.raises(ValueError, match="2 alignments for 3 columns"):
        markdown_table(["a", "b", "c"], [], align="lr")
    with pytest.raises(KeyError):
        markdown_table(["a"], [], align="x")


def hier_result(**extra) -> dict:
    return {
        "theta": 0.4,
        "L": 8,
        "K": 50,
        "bits": {"global": 16, "local": 64},
        "gallery": 1000,
        "methods": {
            "global": {
                "map": 0.5,
                "map@100": 0.75,
                "p@10": 0.8,
                "bits_per_gallery_image": 16,
                "ms_per_query": 0.0123,
            },
            "hier_random": {
                "map": 0.25,
                "map_std": 0.01234,
                "map@100": 0.5,
                "map@100_std": 0.002,
                "p@10": 0.6,
                "bits_per_gallery_image": 16.4,
                "ms_per_query": 1.5,
            },
            "float_cosine": {
                "map": 0.125,
                "map@100": 1,
                "p@10": 0.9,
                "bits_per_gallery_image": None,
                "ms_per_query": None,
            },
        },
        **extra,
    }


def test_hier_tables_by_hand():
    text = tables.format_tables("hier", hier_result(skipped=["no item boxes"]))
    assert text.split("\n") == [
        "theta=0.4 L=8 K=50 (chosen on val); 16-bit global, 64-bit local code; 1,000-image gallery",
        "",
        "| method | map | map@100 | p@10 | bits/image | ms/query |",  # only the keys the methods hold
        "|---|---|---|---|---|---|",
        "| global | 0.5000 | 0.7500 | 0.8000 | 16 | 0.012 |",
        "| hier_random | 0.2500 ± 0.0123 | 0.5000 ± 0.0020 | 0.6000 | 16.4000 | 1.500 |",
        "| float_cosine | 0.1250 | 1 | 0.9000 | - | - |",
        "",
        "Skipped: no item boxes.",
    ]


def test_large_gallery_table_keeps_the_top_100_columns():
    large = {"n": 100_000, "methods": {"global": {"map": 0.1, "map@100": 0.25, "p@10": 0.5}}}
    lines = tables.hier_tables(hier_result(large_gallery=large)).split("\n")
    assert lines[7:] == [
        "",
        "100,000-image gallery",
        "",
        "| method | map@100 | p@10 |",
        "|---|---|---|",
        "| global | 0.2500 | 0.5000 |",
    ]


SCALE = [
    {"n": 1000, "method": "global", "ms_per_query": 0.05, "codes": "real"},
    {"n": 1000, "method": "local_full", "ms_per_query": 0.2, "codes": "real"},
    {"n": 1_000_000, "method": "global", "ms_per_query": 1.25, "codes": "uniform"},
]


def test_speed_lines_mark_a_size_that_was_not_timed():
    assert tables.speed_lines({"scale": SCALE}) == [
        "",
        "ms per query (top 100, one query at a time)",
        "",
        "| method | 1,000 | 1,000,000 |\n|---|---|---|\n"
        "| global | 0.050 | 1.250 |\n| local_full | 0.200 | - |",
        "",
        "(codes timed: 1,000 real, 1,000,000 uniform)",
    ]


def test_speed_lines_with_the_two_level_ratio():
    result = {
        "scale": SCALE,
        "two_level_ratio": [
            {
                "n": 1_000_000,
                "codes": "modelled from real codes",
                "K": 300,
                "hier_cam_over_local_full": 0.21,
                "hier_random_over_local_full": 0.2,
                "bits_ratio": 0.140625,
                "bytes_ratio": 0.1406,
            }
        ],
        "attention_timing": {"channels": 64, "median": 0.5, "p90": 0.75, "queries": 100},
    }
    assert tables.speed_lines(result)[6:] == [
        "",
        "| codes | kind | K | hier_cam / local_full | hier_random / local_full | bits compared ratio "
        "| bytes read ratio |\n"
        "|---|---|---|---|---|---|---|\n"
        "| 1,000,000 | modelled from real codes | 300 | 0.210 | 0.200 | 0.1406 | 0.1406 |",
        "",
        "Attention for one query (CAM, region, eq. 2.4 scores, selection) at C = 64: "
        "median 0.500 ms, p90 0.750 ms over 100 queries.",
    ]


def test_object_lines_by_hand():
    result = {
        "object_queries": 3,
        "protocols": {"attended_object": "relevant = the attended item's class"},
        "attended_object": {"hier_cam": {"map@100": 0.5}, "hier_random": {"map@100": 0.25, "std": 0.05}},
    }
    assert tables.object_lines(result) == [
        "",
        "attended object, a check within method 1 (no other method can know its target): map@100 "
        "(3 queries with 2-3 items): relevant = the attended item's class",
        "",
        "| method | map@100 |\n|---|---|\n| hier_cam | 0.5000 |\n| hier_random | 0.2500 ± 0.0500 |",
    ]


def test_localization_table_marks_the_chosen_theta():
    row = {"touches_item": 1.0, "attended_is_largest": 0.5, "pointing_game": 0.5, "energy_in_boxes": 2 / 3}
    loc = {
        "images": 2,
        "theta": 0.4,
        "by_theta": [
            {"theta": 0.2, "items_covered": [0, 1, 1, 0], **row},
            {"theta": 0.4, "items_covered": [1, 1, 0, 0], **row, "touches_item": 0.5},
        ],
    }
    assert tables.localization_table(loc).split("\n") == [
        "Where the CAM region falls (2 queries with 2-3 items; definitions in docs/results.md)",
        "",
        "| theta | touches an item | on the largest item | items covered 0/1/2/3 | pointing game "
        "| energy in boxes |",
        "|---|---|---|---|---|---|",
        "| 0.2 | 1.000 | 0.500 | 0/1/1/0 | 0.500 | 0.667 |",
        "| 0.4 (chosen) | 0.500 | 0.500 | 1/1/0/0 | 0.500 | 0.667 |",
    ]


def dcoh_result() -> dict:
    return {
        "bits": 16,
        "operators": {
            "union": {
                "pairs": 10,
                "dcoh": {"map@100": 0.5, "jaccard@10": 0.25},
                "bitwise": {"map@100": 0.125, "jaccard@10": 0.75},
            },
            "intersection": {"pairs": 0},  # no pair: its cells are "-"
        },
        "single_image": {"map": 0.5},
        "distribution": {
            "dcoh": {"discriminator_accuracy": 0.5, "per_bit_mean_gap": 0.01},
            "dcoh_no_adv": {"discriminator_accuracy": None, "per_bit_mean_gap": 0.02},
        },
    }


def test_dcoh_tables_by_hand():
    assert tables.format_tables("dcoh", dcoh_result()).split("\n") == [
        "16-bit codes; map@100 / jaccard@10 per operator",
        "",
        "| operator | pairs | dcoh | bitwise |",  # the methods the first scored operator holds
        "|---|---|---|---|",
        "| union | 10 | 0.500 / 0.250 | 0.125 / 0.750 |",
        "| intersection | 0 | - | - |",
        "",
        "single-image mAP of h(x): 0.5000 (shares a label)",
        "",
        "| operator outputs of | D accuracy (real vs generated) | per-bit mean gap |",
        "|---|---|---|",
        "| dcoh | 0.500 | 0.0100 |",
        "| dcoh_no_adv | (no D trained) | 0.0200 |",
    ]


def test_dcoh_seed_and_chain_tables():
    result = dcoh_result()
    del result["distribution"]
    spread = {"mean": 0.5, "std": 0.0123, "n": 3}
    result["operators"]["intersection"] = result["operators"]["union"]
    result["seeds"] = {m: {"union": spread, "intersection": spread} for m in ("dcoh", "dcoh_no_adv")}
    result["chains"] = {"union then union": {"triples": 7, **result["operators"]["union"]}}
    result["single_image"]["exact_map@100"] = 0.25
    assert tables.dcoh_tables(result).split("\n")[6:] == [
        "",
        "map@100 over three full retrains, both phases (mean ± std)",
        "",
        "| operator | dcoh | dcoh_no_adv |",
        "|---|---|---|",
        "| union | 0.500 ± 0.012 | 0.500 ± 0.012 |",
        "| intersection | 0.500 ± 0.012 | 0.500 ± 0.012 |",
        "",
        "chains (A op B) op' C: map@100 / jaccard@10",
        "",
        "| chain | triples | dcoh | bitwise |",
        "|---|---|---|---|",
        "| union then union | 7 | 0.500 / 0.250 | 0.125 / 0.750 |",
        "",
        "single-image mAP of h(x): 0.5000 (shares a label); exact label set map@100 0.2500",
    ]


def test_dcoh_takeaway_leaves_out_an_operator_without_pairs():
    scores = {m: {"map@100": v} for m, v in (("dcoh", 0.5), ("oracle", 0.75), ("label_route", 0.25))}
    result = {"operators": {"union": {"pairs": 3, **scores, "bitwise": {"map@100": 0.125}}, "difference": {}}}
    assert tables.dcoh_takeaway(result) == (
        "**In plain words.** Composed queries find exactly the target label set at map@100: "
        "union 0.500 (oracle 0.750, label_route 0.250, bitwise 0.125)."
    )


def test_method_names_in_words():
    assert method_labels.in_words("hier_cam") == "two-level, CAM-selected bits (the method)"
    assert method_labels.in_words("made_up") == "made_up"
    assert method_labels.colour("made_up") == "#000000"
    assert (
        method_labels.method_names().split("\n")[0]
        == "- `hier_cam`: two-level, CAM-selected bits (the method)"
    )


def test_the_search_bench_table_aligns_numbers_right():
    from hashdemo.cli.bench import format_table

    same = {"distances_equal": True, "ids_equal": True}
    row = {
        "n": 10_000,
        "nbits": 256,
        "queries": 100,
        "numpy_ms": 1.234,
        "default_ms": 0.5,
        "faiss_ms": 0.25,
        "numpy_over_faiss": 4.936,
        "default_over_faiss": 2.0,
        "numpy_vs_faiss": same,
        "default_vs_faiss": {**same, "ids_equal": False},
    }
    assert format_table({"rows": [row]}).split("\n") == [
        "| N | bits | queries | numpy path | default backend | faiss | numpy/faiss | default/faiss "
        "| same results |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
        "| 10,000 | 256 | 100 | 1.23 | 0.50 | 0.25 | 4.94 | 2.00 | NO |",
    ]


def test_the_milvus_bench_table_compares_with_the_in_process_index():
    from hashdemo.cli.bench_milvus import format_table

    rows = [
        {"n": 1000, "codes": "real", "backend": "in-process", "build_s": 0.1, "single_ms": 0.5,
         "batch_ms_per_query": 0.02, "recall_at_100": 1.0},
        {"n": 1000, "codes": "real", "backend": "milvus lite", "build_s": 2, "single_ms": 3.25,
         "batch_ms_per_query": 0.5, "recall_at_100": 0.987},
    ]  # fmt: skip
    assert format_table({"rows": rows}).split("\n")[2:] == [
        "| 1,000 | real | in-process | 0.1 | 0.5 | 0.02 | 1.0 | 1.0x |",
        "| 1,000 | real | milvus lite | 2 | 3.25 | 0.5 | 0.987 | 6.5x |",
    ]


def test_the_field_takeaway_places_the_method_against_the_best_one_level_code_with_both_spreads():
    def row(map_, exact):
        return {"map": map_, "map_std": 0.001, "map_exact@100": exact, "map_exact@100_std": 0.001}

    result = {
        "bits": {"global": 32},
        "field": {"lengths": [32]},
        "lengths": {"32": {"hier_cam": row(0.80, 0.45), "hashnet": row(0.79, 0.50), "global": row(0.7, 0.4)}},
    }
    text = tables.field_takeaway(result)
    assert "on full mAP hier_cam (0.800) is above the best one-level code, hashnet (0.790 ± 0.001)" in text
    assert "on exact-set map@100 hier_cam (0.450) is below the best one-level code, hashnet" in text
    # the three retrains' spread counts where it is larger than the tie orders'
    seeds = {"hashnet": {"map": {"mean": 0.79, "std": 0.02, "n": 3}}}
    spread = tables.field_takeaway({**result, "peer_seeds": seeds})
    assert "is within the spreads of the best one-level code, hashnet (0.790 ± 0.020)" in spread
    assert tables.field_takeaway({"methods": {}}) == ""  # no field protocol run: no sentence


def test_the_peer_seed_table_shows_mean_and_std_per_metric():
    spreads = {
        "csq": {"map": {"mean": 0.8, "std": 0.01, "n": 3}, "p@10": {"mean": 0.9, "std": 0.002, "n": 3}}
    }
    assert tables.peer_seeds_table(spreads, ["map", "map_exact", "p@10"]).splitlines() == [
        "| method | map | p@10 |",
        "|---|---|---|",
        "| csq | 0.800 ± 0.010 | 0.900 ± 0.002 |",
    ]


def test_the_dcoh_takeaway_gives_verdicts_at_equal_bits_and_on_the_adversarial_term():
    def spread(mean, std=0.001):
        return {"mean": mean, "std": std, "n": 3}

    def scores(value):
        return {"map@100": value, "jaccard@10": 0.5}

    row = {"pairs": 10, **{m: scores(v) for m, v in (("dcoh", 0.6), ("laso", 0.7), ("best_exemplar", 0.8))}}
    result = {
        "operators": {"union": row},
        "operator_seeds": {"dcoh": {"union": spread(0.6)}},
        "laso_seeds": {"union": {"laso": spread(0.7), "laso_bits": spread(0.5)}},
        "seeds": {"dcoh": {"union": spread(0.6, 0.02)}, "dcoh_no_adv": {"union": spread(0.61, 0.02)}},
    }
    text = tables.dcoh_takeaway(result)
    assert "DCOH union 0.600 ± 0.001 above 0.500 ± 0.001" in text
    assert "against `dcoh`: union level, within the spreads." in text
    assert "stays ahead on union" in text and "union 0.75x" in text


def test_the_val_curve_says_when_the_choice_sits_at_the_grid_s_top():
    """Issue 37, defect 14: K's share chosen at the grid's top with the curve still rising is said."""
    from hashdemo.evaluation.figures import map_vs_parameter

    grid = [
        {"theta": 0.4, "L": 32, "K_share": share, "val_map@100": m} for share, m in ((0.01, 0.8), (0.1, 0.9))
    ]
    best = {"theta": 0.4, "L": 32, "K_share": 0.1}
    title = map_vs_parameter(grid, best, "K_share").axes[0].get_title()
    assert "chosen at the grid's top (0.1), the curve still rising" in title
    inside = map_vs_parameter(grid, {**best, "K_share": 0.01}, "K_share").axes[0].get_title()
    assert "grid's top" not in inside


def test_the_speed_takeaway_says_slower_or_faster_at_every_gallery_size():
    """Issue 37, defect 2: at the app's 10k gallery the two-level search is slower than a full scan;
    the takeaway says so in words at each size, not only where it wins."""
    from hashdemo.evaluation.tables import hier_takeaway, pace

    assert (pace(8.5), pace(0.5), pace(1.0)) == ("8.5x slower", "2.0x faster", "as fast")
    method = {"map@100": 0.5, "bits_per_gallery_image": 48}
    result = {
        "L": 32,
        "bits": {"global": 16, "local": 256},
        "methods": {"hier_cam": method, "local_full": method},
        "attention_ms": 0.2,
        "two_level_ratio": [
            {"n": 10_000, "codes": "real", "hier_cam_over_local_full": 8.5},
            {"n": 10_000_000, "codes": "real", "hier_cam_over_local_full": 0.5},
        ],
    }
    text = hier_takeaway(result)
    assert "the two-level search is 8.5x slower at 10,000 codes, 2.0x faster at 10,000,000 codes" in text
