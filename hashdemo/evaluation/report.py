"""What the Benchmarks tab and the evaluation command show: Markdown tables and matplotlib figures
of evaluation results (`matplotlib.figure.Figure`, never pyplot: no GUI backend, no global state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter

DCOH_METHODS = ("dcoh", "dcoh_no_adv", "bitwise", "label_route", "oracle")  # the columns of the DCOH table


HIER_KEYS = (
    "map",
    "map_exact",
    "map@100",
    "map_exact@100",
    "p@10",
    "jaccard_ndcg@100",
    "attended_map@100",
    "object_map@100",
)
PLOTTED = ("global", "local_full", "hier_cam", "hier_random")  # the scaling plot's methods
# One colour per method in every figure (matplotlib's tab10 and tab20 colours), and a name a reader knows
METHODS = {
    "hier_cam": ("#d62728", "two-level, CAM-selected bits (the method)"),
    "hier_cam_all_components": ("#ff9896", "two-level, CAM bits from every component"),
    "hier_random": ("#7f7f7f", "two-level, random bits"),
    "hier_activation": ("#bcbd22", "two-level, most active maps"),
    "hier_box": ("#e377c2", "two-level, the item's own box as the region"),
    "hier_box_any_item": ("#f7b6d2", "two-level, any item's box"),
    "global": ("#1f77b4", "global code only (H bits)"),
    "local_full": ("#2ca02c", "full local code (C bits)"),
    "single_level": ("#9467bd", "one-level code, H bits"),
    "single_level_local": ("#8c564b", "one-level code, C bits"),
    "float_cosine": ("#17becf", "cosine on pooled Conv7 features"),
    "dcoh": ("#d62728", "DCOH (learned operators)"),
    "dcoh_no_adv": ("#ff9896", "DCOH without the adversarial term"),
    "bitwise": ("#7f7f7f", "bitwise OR / AND / AND-NOT of the codes"),
    "label_route": ("#1f77b4", "predicted labels, set operation, label search"),
    "oracle": ("#2ca02c", "a real gallery code with the target set (ceiling)"),
}


def colour(method: str) -> str:
    return METHODS.get(method, ("#000000", method))[0]


def in_words(method: str) -> str:
    return METHODS.get(method, ("#000000", method))[1]


def method_names() -> str:
    """The table's method identifiers in words, for the top of the Benchmarks tab."""
    return "\n".join(f"- `{method}`: {name}" for method, (_, name) in METHODS.items())


GLOSSARY = {
    "map / map@100": "mean average precision over the whole gallery / the top 100; relevant = shares a label",
    "map_exact": "the same, relevant = exactly the query's label set",
    "jaccard_ndcg@100": "nDCG@100 with gain = Jaccard of the label sets (partial matches count partly)",
    "attended_map@100": "attended object: queries with 2-3 items; relevant = holds the class of the item "
    "the CAM region overlaps most (the object the method picked)",
    "object_map@100": "largest item: queries with 2-3 items; relevant = holds the class of the query's "
    "largest item, wherever the attention looks",
    "bits/image": "bits compared per gallery image: H everywhere, plus L on the K candidates only",
    "ms/query": "one query's top 100 on this 2-core machine, bit selection included",
    "label_route": "predict each input's labels, apply the set operation, rank by predicted labels",
    "oracle": "query with a real gallery code whose label set is T: the ceiling of code search",
    "bitwise": "OR / AND / AND-NOT of the two codes",
}


def format_tables(name: str, result: dict) -> str:
    """Markdown tables of a result, as printed and pasted into the README."""
    return hier_tables(result) if name == "hier" else dcoh_tables(result)


def hier_tables(result: dict) -> str:
    present = next(iter(result["methods"].values()))
    columns = [key for key in HIER_KEYS if key in present]  # a set without item boxes has no object keys
    lines = [
        f"theta={result['theta']} L={result['L']} K={result['K']} (chosen on val); "
        f"{result['bits']['global']}-bit global, {result['bits']['local']}-bit local code; "
        f"{result.get('gallery', 10_000):,}-image gallery",
        "",
        "| method | " + " | ".join(columns) + " | bits/image | ms/query |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for method, row in result["methods"].items():
        cells = [
            _cell(row[key]) + (f" ± {row[key + '_std']:.4f}" if key + "_std" in row else "")
            for key in columns
        ]
        bits = "-" if row["bits_per_gallery_image"] is None else _cell(row["bits_per_gallery_image"])
        ms = "-" if row["ms_per_query"] is None else f"{row['ms_per_query']:.3f}"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {bits} | {ms} |")
    if "large_gallery" in result:
        large = result["large_gallery"]
        keys = [key for key in columns if key.endswith("@100") or key == "p@10"]
        lines += ["", f"{large['n']:,}-image gallery", ""]
        lines += ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for method, row in large["methods"].items():
            lines.append(f"| {method} | " + " | ".join(_cell(row[key]) for key in keys) + " |")
    if "scale" in result:
        lines += speed_lines(result)
    for key, title in (("attended_object", "attended object"), ("object_focused", "largest item")):
        if key not in result:
            continue
        lines += [
            "",
            f"{title} map@100 ({result['object_queries']} queries with 2-3 items): "
            + result.get("protocols", {}).get(key, ""),
            "",
        ]
        lines += ["| method | map@100 |", "|---|---|"]
        for method, row in result[key].items():
            std = f" ± {row['std']:.4f}" if "std" in row else ""
            lines.append(f"| {method} | {row['map@100']:.4f}{std} |")
    if "localization" in result:
        lines += ["", localization_table(result["localization"])]
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
    lines += [f"\nSkipped: {note}." for note in result.get("skipped", [])]
    return "\n".join(lines)


def speed_lines(result: dict) -> list[str]:
    """ms per query against gallery size, the two-level / full ratios and the attention's own time."""
    lines = []
    sizes = sorted({row["n"] for row in result["scale"]})
    lines += ["", "ms per query (top 100, one query at a time)", ""]
    lines += ["| method | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for method in dict.fromkeys(row["method"] for row in result["scale"]):
        timed = {r["n"]: r for r in result["scale"] if r["method"] == method}
        cells = [f"{timed[n]['ms_per_query']:.3f}" if n in timed else "-" for n in sizes]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    random_sizes = sorted({r["n"] for r in result["scale"] if r["codes"] == "random"})
    lines += ["", f"(random codes with the real shapes at {', '.join(f'{n:,}' for n in random_sizes)})"]
    if "two_level_ratio" in result:
        lines += [
            "",
            "| codes | hier_cam / local_full | hier_random / local_full | bits ratio (H + L K / N) / C |",
        ]
        lines += ["|---|---|---|---|"]
        for row in result["two_level_ratio"]:
            lines.append(
                f"| {row['n']:,} | {row['hier_cam_over_local_full']:.3f} | "
                f"{row['hier_random_over_local_full']:.3f} | {row['bits_ratio']:.4f} |"
            )
        timing = result["attention_timing"]
        lines += [
            "",
            f"Attention for one query (CAM, region, eq. 2.4 scores, selection) at C = {timing['channels']}: "
            f"median {timing['median']:.3f} ms, p90 {timing['p90']:.3f} ms over {timing['queries']} queries.",
        ]
    return lines


SEED_TABLES = {  # result key: title (hashdemo.evaluation.dcoh.SPREADS)
    "seeds": "map@100 over three full retrains, both phases (mean ± std)",
    "operator_seeds": "map@100 over three operator-phase seeds on the shipped h(x) (mean ± std)",
}


def dcoh_tables(result: dict) -> str:
    first = next((row for row in result["operators"].values() if row.get("pairs")), {})
    methods = [m for m in DCOH_METHODS if m in first]  # the ablation only when it was trained
    lines = [
        f"{result['bits']}-bit codes; map@100 / jaccard@10 per operator",
        "",
        "| operator | pairs | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + 2) + "|",
    ]
    for operator, row in result["operators"].items():
        cells = [
            f"{row[m]['map@100']:.3f} / {row[m]['jaccard@10']:.3f}" if m in row else "-" for m in methods
        ]
        lines.append(f"| {operator} | {row['pairs']} | " + " | ".join(cells) + " |")
    for key, title in SEED_TABLES.items():
        if key in result:
            lines += ["", title, "", "| operator | dcoh | dcoh_no_adv |", "|---|---|---|"]
            for operator in result["operators"]:
                spread = [result[key][m][operator] for m in ("dcoh", "dcoh_no_adv")]
                cells = [f"{s['mean']:.3f} ± {s['std']:.3f}" for s in spread]
                lines.append(f"| {operator} | " + " | ".join(cells) + " |")
    if "chains" in result:
        lines += ["", "chains (A op B) op' C: map@100 / jaccard@10", ""]
        lines += ["| chain | triples | " + " | ".join(methods) + " |", "|---" * (len(methods) + 2) + "|"]
        for chain, row in result["chains"].items():
            cells = [f"{row[m]['map@100']:.3f} / {row[m]['jaccard@10']:.3f}" for m in methods]
            lines.append(f"| {chain} | {row['triples']} | " + " | ".join(cells) + " |")
    single = result["single_image"]
    lines += ["", f"single-image mAP of h(x): {single['map']:.4f} (shares a label)"]
    if "exact_map@100" in single:
        lines[-1] += f"; exact label set map@100 {single['exact_map@100']:.4f}"
    lines += [f"\nSkipped: {note}." for note in result.get("skipped", [])]
    if "distribution" not in result:
        return "\n".join(lines)
    lines += [
        "",
        "| operator outputs of | D accuracy (real vs generated) | per-bit mean gap |",
        "|---|---|---|",
    ]
    for name, dist in result["distribution"].items():
        accuracy = dist["discriminator_accuracy"]
        accuracy = "(no D trained)" if accuracy is None else f"{accuracy:.3f}"
        lines.append(f"| {name} | {accuracy} | {dist['per_bit_mean_gap']:.4f} |")
    return "\n".join(lines)


def hier_takeaway(result: dict) -> str:
    """The hierarchical tables in plain words, from their own numbers; each claim names its protocol."""
    m = result["methods"]
    cam, full, rand, act, glob = (
        m[k] for k in ("hier_cam", "local_full", "hier_random", "hier_activation", "global")
    )
    text = (
        f"**In plain words.** *Shares a label* (every query): the two-level search on L = {result['L']} "
        f"attention-selected bits reaches map@100 {cam['map@100']:.3f} against {full['map@100']:.3f} for the "
        f"full {result['bits']['local']}-bit local code, reading {cam['bits_per_gallery_image']:g} bits per "
        f"gallery image instead of {result['bits']['local']}."
    )
    if "attended_object" in result:
        att = result["attended_object"]
        loc = result["localization"]
        text += (
            f" *Attended object* ({result['object_queries']} queries with 2-3 items, relevant = the class of "
            f"the item the region covers): attention bits score {att['hier_cam']['map@100']:.3f} against "
            f"{att['hier_random']['map@100']:.3f} ± {att['hier_random']['std']:.3f} for random bits, "
            f"{att['hier_activation']['map@100']:.3f} for the most active maps, "
            f"{att['global']['map@100']:.3f} for the global code and {att['local_full']['map@100']:.3f} for "
            f"the full local code: the selected bits carry the object the region sits on. The region touches "
            f"an item in {loc['touches_item']:.0%} of these queries but is on the largest item in only "
            f"{loc['attended_is_largest']:.0%}, so under the *largest item* protocol attention scores "
            f"{cam['object_map@100']:.3f} against {rand['object_map@100']:.3f} for random bits: "
            "that protocol asks for an object the method did not pick."
        )
    ratios = {row["n"]: row for row in result.get("two_level_ratio", [])}
    if ratios:
        at = ", ".join(
            f"{ratios[n]['hier_cam_over_local_full']:.2f}x at {n:,} codes"
            for n in sorted(ratios)
            if n >= 1_000_000
        )
        text += (
            f" *Speed* (random codes with the real shapes): the two-level search, attention included, takes "
            f"{at} the time of a full local-code scan (bits ratio {ratios[max(ratios)]['bits_ratio']:.3f}); "
            f"attention alone {result['attention_ms']:.2f} ms."
        )
    return text


def localization_table(loc: dict) -> str:
    """Where the CAM region falls, at each theta of the grid."""
    lines = [
        f"Where the CAM region falls ({loc['images']} queries with 2-3 items; definitions in "
        "docs/results.md)",
        "",
        "| theta | touches an item | on the largest item | items covered 0/1/2/3 | pointing game "
        "| energy in boxes |",
        "|---|---|---|---|---|---|",
    ]
    for row in loc["by_theta"]:
        mark = " (chosen)" if row["theta"] == loc["theta"] else ""
        lines.append(
            f"| {row['theta']}{mark} | {row['touches_item']:.3f} | {row['attended_is_largest']:.3f} | "
            f"{'/'.join(map(str, row['items_covered']))} | {row['pointing_game']:.3f} | "
            f"{row['energy_in_boxes']:.3f} |"
        )
    return "\n".join(lines)


def dcoh_takeaway(result: dict) -> str:
    ops = result["operators"]
    parts = [
        f"{op} {row['dcoh']['map@100']:.3f} (oracle {row['oracle']['map@100']:.3f}, label route "
        f"{row['label_route']['map@100']:.3f}, bitwise {row['bitwise']['map@100']:.3f})"
        for op, row in ops.items()
        if row.get("pairs")  # an imported set may hold no pair for an operator
    ]
    return (
        "**In plain words.** Composed queries find exactly the target label set at map@100: "
        + "; ".join(parts)
        + "."
    )


def glossary() -> str:
    return "\n".join(f"- **{term}**: {meaning}" for term, meaning in GLOSSARY.items())


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def frontier(result: dict) -> Figure:
    """Accuracy against cost: map@100 (shares a label) and attended-object map@100 against ms per query
    at the largest gallery where every method was timed, and against bits compared per gallery image."""
    every = [
        n
        for n in {row["n"] for row in result["scale"]}
        if all(
            any(r["n"] == n and r["method"] == m for r in result["scale"]) for m in ("global", "float_cosine")
        )
    ]
    largest = max(every)
    ms = {row["method"]: row["ms_per_query"] for row in result["scale"] if row["n"] == largest}
    metrics = (
        "map@100",
        "attended_map@100" if "attended_map@100" in result["methods"]["global"] else "object_map@100",
    )
    fig = Figure(figsize=(10, 7))
    axes = fig.subplots(2, 2)
    for col, (cost_name, cost) in enumerate(
        (
            (f"ms per query at {largest:,} codes", lambda m, row: ms.get(m.replace("_all_components", ""))),
            ("bits compared per gallery image", lambda m, row: row["bits_per_gallery_image"]),
        )
    ):
        for row_index, metric in enumerate(metrics):
            ax = axes[row_index, col]
            for method, row in result["methods"].items():
                x = cost(method, row)
                if x is None:
                    continue
                # a legend names the points: labels beside them overlapped where methods cost the same
                ax.scatter(x, row[metric], s=36, color=colour(method), label=method, edgecolors="black")
            ax.set(xscale="log", xlabel=cost_name, ylabel=metric)
            ax.xaxis.set_major_locator(LogLocator(numticks=5))
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collided on the bits axis
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(
        f"Accuracy against cost (theta={result['theta']}, L={result['L']}, K={result['K']})", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def scaling(result: dict) -> Figure:
    """Log-log ms per query against gallery size for the plotted methods, with the bits-compared ratio
    (H + L K / N) / C times the full local scan's time as the two-level search's asymptote."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for method in PLOTTED:
        rows = sorted((r["n"], r["ms_per_query"]) for r in result["scale"] if r["method"] == method)
        ax.plot(*zip(*rows, strict=True), marker="o", label=method, color=colour(method))
    full = {r["n"]: r["ms_per_query"] for r in result["scale"] if r["method"] == "local_full"}
    ratio = sorted((row["n"], row["bits_ratio"] * full[row["n"]]) for row in result["two_level_ratio"])
    ax.plot(*zip(*ratio, strict=True), linestyle="--", color="grey", label="bits ratio x local_full")
    ax.set(xscale="log", yscale="log", xlabel="gallery codes N", ylabel="ms per query (top 100)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.suptitle("Time per query against gallery size (1M and 10M: random codes)", fontsize=10)
    fig.tight_layout()
    return fig


def map_vs_parameter(grid: list[dict], best: dict, parameter: str) -> Figure:
    """Val map@100 of the CAM re-rank against L or K's share, the other parameters at their chosen values."""
    fixed = [p for p in ("theta", "L", "K_share") if p != parameter]
    rows = sorted((r for r in grid if all(r[p] == best[p] for p in fixed)), key=lambda r: r[parameter])
    fig = Figure(figsize=(4.5, 3))
    ax = fig.subplots()
    ax.plot([r[parameter] for r in rows], [r["val_map@100"] for r in rows], "o-")
    ax.set(
        xlabel=parameter,
        ylabel="val map@100",
        title=f"mAP against {parameter} ({', '.join(f'{p}={best[p]}' for p in fixed)})",
    )
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def pr_curves(curves: dict[str, dict[str, list[float]]]) -> Figure:
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(curve["recall"], curve["precision"], label=name, color=colour(name))
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, query vs gallery")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def operator_bars(operators: dict[str, dict], methods: tuple[str, ...]) -> Figure:
    """Composed mAP@100 per operator, DCOH against its baselines."""
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = [operators[op][method]["map@100"] for op in operators]
        ax.bar(np.arange(len(operators)) + i * width, values, width, label=method, color=colour(method))
    ax.set_xticks(np.arange(len(operators)) + 0.4 - width / 2, list(operators))
    ax.set(ylabel="mAP@100 (label set = T)", title="Composed queries, query pairs vs gallery")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig
