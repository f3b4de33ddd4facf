"""The evaluation's results in words and Markdown tables, as printed by `python -m hashdemo evaluate`,
pasted into the README and shown on the app's Benchmarks tab. The tables are drawn by
`hashdemo.evaluation.markdown`, the methods named and coloured by `hashdemo.evaluation.method_labels`,
the figures by `hashdemo.evaluation.figures`."""

from __future__ import annotations

from hashdemo.evaluation.dcoh_tables import DCOH_METHODS, dcoh_tables, dcoh_takeaway
from hashdemo.evaluation.field_tables import field_lines, field_takeaway
from hashdemo.evaluation.markdown import cell, markdown_table, spread_cell

__all__ = ["DCOH_METHODS", "dcoh_takeaway"]  # method 2's tables, re-exported for format_tables' callers

HIER_KEYS = (
    "map",
    "map_exact",
    "map@100",
    "map_exact@100",
    "p@10",
    "jaccard_ndcg@100",
    "object_map@100",
    "each_map@100",
)  # the attended object is no column here: only the two-level rows are scored on it (object_lines)


def format_tables(name: str, result: dict) -> str:
    """Markdown tables of a result, as printed and pasted into the README."""
    return {"hier": hier_tables, "dcoh": dcoh_tables}[name](result)


def hier_tables(result: dict) -> str:
    present = next(iter(result["methods"].values()))
    columns = [key for key in HIER_KEYS if key in present]  # a set without item boxes has no object keys
    lines = [
        f"theta={result['theta']} L={result['L']} K={result['K']} (chosen on val); "
        f"{result['bits']['global']}-bit global, {result['bits']['local']}-bit local code; "
        f"{result.get('gallery', 10_000):,}-image gallery",
        "",
        methods_table(result["methods"], columns),
    ]
    if "large_gallery" in result:
        large = result["large_gallery"]
        keys = [key for key in columns if key.endswith("@100") or key == "p@10"]
        rows = [[method, *(row[key] for key in keys)] for method, row in large["methods"].items()]
        lines += ["", f"{large['n']:,}-image gallery", "", markdown_table(["method", *keys], rows)]
    if result.get("peer_seeds"):
        lines += ["", "the peers over three full retrains (seeds 0, 1, 2; mean ± std)", ""]
        lines.append(peer_seeds_table(result["peer_seeds"], columns))
    if "scale" in result:
        lines += speed_lines(result)
    lines += object_lines(result)
    lines += field_lines(result)
    if "localization" in result:
        lines += ["", localization_table(result["localization"])]
    lines += note_lines(result)
    lines += [f"\nSkipped: {note}." for note in result.get("skipped", [])]
    return "\n".join(lines)


def methods_table(methods: dict[str, dict], columns: list[str]) -> str:
    """Every method's scores on the 10k gallery (± the std over seeds where there is one), its bits
    compared per gallery image and its ms per query."""
    rows = []
    for method, row in methods.items():
        cells = [
            cell(row[key]) + (f" ± {row[key + '_std']:.4f}" if key + "_std" in row else "") for key in columns
        ]
        ms = row["ms_per_query"]
        rows.append([method, *cells, row["bits_per_gallery_image"], None if ms is None else f"{ms:.3f}"])
    return markdown_table(["method", *columns, "bits/image", "ms/query"], rows)


def peer_seeds_table(spreads: dict[str, dict], columns: list[str]) -> str:
    keys = [key for key in columns if key in next(iter(spreads.values()))]
    rows = [[name, *(spread_cell(metrics[key]) for key in keys)] for name, metrics in spreads.items()]
    return markdown_table(["method", *keys], rows)


def speed_lines(result: dict) -> list[str]:
    """ms per query against gallery size, the two-level / full ratios and the attention's own time."""
    sizes = sorted({row["n"] for row in result["scale"]})
    rows = []
    for method in dict.fromkeys(row["method"] for row in result["scale"]):
        timed = {r["n"]: r["ms_per_query"] for r in result["scale"] if r["method"] == method}
        rows.append([method, *(f"{timed[n]:.3f}" if n in timed else None for n in sizes)])
    lines = ["", "ms per query (top 100, one query at a time)", ""]
    lines.append(markdown_table(["method", *(f"{n:,}" for n in sizes)], rows))
    kinds = {r["n"]: r["codes"] for r in result["scale"]}
    lines += ["", "(codes timed: " + ", ".join(f"{n:,} {kinds[n]}" for n in sizes) + ")"]
    if "two_level_ratio" in result:
        header = [
            "codes",
            "kind",
            "K",
            "hier_cam / local_full",
            "hier_random / local_full",
            "bits compared ratio",
            "bytes read ratio",
        ]
        rows = [
            [
                f"{row['n']:,}",
                row.get("codes"),
                row.get("K"),
                f"{row['hier_cam_over_local_full']:.3f}",
                f"{row['hier_random_over_local_full']:.3f}",
                f"{row['bits_ratio']:.4f}",
                f"{row['bytes_ratio']:.4f}" if "bytes_ratio" in row else None,
            ]
            for row in result["two_level_ratio"]
        ]
        timing = result["attention_timing"]
        lines += [
            "",
            markdown_table(header, rows),
            "",
            f"Attention for one query (CAM, region, eq. 2.4 scores, selection) at C = {timing['channels']}: "
            f"median {timing['median']:.3f} ms, p90 {timing['p90']:.3f} ms over {timing['queries']} queries.",
        ]
    lines += million_lines(result)
    return lines


def million_lines(result: dict) -> list[str]:
    """Accuracy on the million real codes, K against map@100 and time, and the speed rows there."""
    if "million" not in result:
        return []
    million = result["million"]
    keys = [
        k
        for k in ("map@100", "map_exact@100", "object_map@100", "each_map@100")
        if k in million["methods"]["global"]
    ]
    rows = [
        [name, *(cell(row[k]) + (f" ± {row[k + '_std']:.4f}" if k + "_std" in row else "") for k in keys)]
        for name, row in million["methods"].items()
    ]
    rule = million["K_rule"]
    lines = [
        "",
        f"{million['n']:,} real gallery codes (K = {rule['K']:,}: {rule['rule']})",
        "",
        markdown_table(["method", *keys], rows),
        "",
        "K at the million: the query split's map@100 and the two-level time (one thread, single queries, "
        "attention included) over the full local scan's",
        "",
        markdown_table(
            ["K", "val map@100", "map@100", "ms/query", "over local_full"],
            [
                [
                    f"{r['K']:,}",
                    rule["val"][str(r["K"])],
                    r["map@100"],
                    r["ms_per_query"],
                    r["over_local_full"],
                ]
                for r in million["k_tradeoff"]
            ],
        ),
    ]
    speed = [r for r in million["speed"] if "@" not in r["method"] or r["method"].endswith(f"@{rule['K']}")]
    lines += ["", f"ms per query at K = {rule['K']:,} (ratio to the full local scan in the same run)", ""]
    lines.append(speed_table(speed))
    return lines


def speed_table(rows: list[dict]) -> str:
    """The million's speed rows, each with its ratio to the full local scan of the same run."""
    header = ["codes", "kind", "threads", "mode", "method", "ms/query", "over local_full"]
    keys = ("codes", "threads", "mode", "method", "ms_per_query", "over_local_full")
    return markdown_table(header, [[f"{r['n']:,}", *(r[k] for k in keys)] for r in rows])


def object_lines(result: dict) -> list[str]:
    """map@100 under the attended-object and the largest-item protocols, where the result has them."""
    lines = []
    for key, title in (
        ("object_focused", "largest item"),
        ("each_item", "each item"),
        ("attended_object", "attended object, a check within method 1 (no other method can know its target)"),
    ):
        if key not in result:
            continue
        lines += [
            "",
            f"{title}: map@100 ({result['object_queries']} queries with 2-3 items): "
            + result.get("protocols", {}).get(key, ""),
            "",
        ]
        rows = [
            [method, f"{row['map@100']:.4f}" + (f" ± {row['std']:.4f}" if "std" in row else "")]
            for method, row in result[key].items()
        ]
        lines.append(markdown_table(["method", "map@100"], rows))
    return lines


def note_lines(result: dict) -> list[str]:
    """The out-of-domain note and the attention's overlap with the selected bits, in sentences."""
    lines = []
    if "out_of_domain" in result:
        ood = result["out_of_domain"]
        rates = ", ".join(f"{kind.replace('_', ' ')} {rate:.0%}" for kind, rate in ood["flagged"].items())
        lines += [
            "",
            f"Out-of-domain note: novelty above {ood['threshold']:.4f}"
            + (f" or detail below {ood['smooth_below']:.2f}" if "smooth_below" in ood else "")
            + f" (flags {ood['val_flagged']:.1%} of val); "
            f"flagged among {ood['images_per_kind']} images of each kind: {rates}.",
        ]
    if "attention" in result:
        att = result["attention"]
        lines += [
            "",
            f"Selected bits that overlap the attention region (of L = {result['L']}), over the query split: "
            f"median {att['positive_overlap_median']:g}, 10th-90th percentile "
            f"{att['positive_overlap_p10']:g}-{att['positive_overlap_p90']:g}; "
            f"{att['empty_region_queries']} queries with an empty region.",
        ]
    return lines


def localization_table(loc: dict) -> str:
    """Where the CAM region falls, at each theta of the grid."""
    header = [
        "theta",
        "touches an item",
        "on the largest item",
        "items covered 0/1/2/3",
        "pointing game",
        "energy in boxes",
    ]
    rows = [
        [
            f"{row['theta']}" + (" (chosen)" if row["theta"] == loc["theta"] else ""),
            row["touches_item"],
            row["attended_is_largest"],
            "/".join(map(str, row["items_covered"])),
            row["pointing_game"],
            row["energy_in_boxes"],
        ]
        for row in loc["by_theta"]
    ]
    title = (
        f"Where the CAM region falls ({loc['images']} queries with 2-3 items; definitions in docs/results.md)"
    )
    return title + "\n\n" + markdown_table(header, rows, digits=3)


def pace(ratio: float) -> str:
    """A time ratio (ours over the peer's) in words: "8.5x slower", "1.8x faster", "as fast"."""
    if ratio > 1.005:
        return f"{ratio:.1f}x slower"
    return f"{1 / ratio:.1f}x faster" if ratio < 0.995 else "as fast"


def hier_takeaway(result: dict) -> str:
    """The hierarchical tables in plain words, from their own numbers; each claim names its protocol.
    Methods are compared only on relevance no method defines; the attended object is a check within
    method 1."""
    m = result["methods"]
    cam, full = m["hier_cam"], m["local_full"]
    text = (
        f"**In plain words.** *Shares a label* (every query): the two-level search on L = {result['L']} "
        f"attention-selected bits reaches map@100 {cam['map@100']:.3f} against {full['map@100']:.3f} for the "
        f"full {result['bits']['local']}-bit local code, comparing {cam['bits_per_gallery_image']:g} bits "
        f"per gallery image instead of {result['bits']['local']} (it stores both codes, "
        f"{result['bits']['global'] + result['bits']['local']} bits)."
    )
    field = field_takeaway(result)
    if field:
        text += " " + field
    if "attended_object" in result:
        att = result["attended_object"]
        text += (
            f" *The attention check* (within method 1; {result['object_queries']} queries with 2-3 items, "
            f"relevant = the class of the item the region covers): the CAM bits score "
            f"{att['hier_cam']['map@100']:.3f} against {att['hier_random']['map@100']:.3f} ± "
            f"{att['hier_random']['std']:.3f} for random bits, {att['hier_activation']['map@100']:.3f} for "
            f"the most active maps and {att['hier_box']['map@100']:.3f} for the attended item's own box: the "
            "selected bits carry the object the region sits on. No other method is scored on this target."
        )
    ratios = {row["n"]: row for row in result.get("two_level_ratio", [])}
    if ratios:
        at = ", ".join(
            f"{pace(ratios[n]['hier_cam_over_local_full'])} at {n:,} codes" for n in sorted(ratios)
        )
        words = {"uniform": "uniform random codes, multi-index hashing's best case"}
        kinds = "; ".join(
            f"{n:,}: {words.get(kind := ratios[n].get('codes', 'uniform'), kind + ' codes')}"
            for n in sorted(ratios)
        )
        text += (
            f" *Speed* (attention included; {kinds}): against a full local-code scan of the same codes "
            f"the two-level search is {at}; attention alone {result['attention_ms']:.2f} ms."
        )
    return text
