"""What the Benchmarks tab and the evaluation command show: Markdown tables and matplotlib figures
of evaluation results (`matplotlib.figure.Figure`, never pyplot: no GUI backend, no global state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

DCOH_METHODS = ("dcoh", "dcoh_no_adv", "bitwise", "label_route", "oracle")  # the columns of the DCOH table


HIER_KEYS = ("map", "map_exact", "map@100", "map_exact@100", "p@10", "jaccard_ndcg@100", "object_map@100")
GLOSSARY = {
    "map / map@100": "mean average precision over the whole gallery / the top 100; relevant = shares a label",
    "map_exact": "the same, relevant = exactly the query's label set",
    "jaccard_ndcg@100": "nDCG@100 with gain = Jaccard of the label sets (partial matches count partly)",
    "object_map@100": "queries with 2-3 items; relevant = contains the class of the query's largest item",
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
    lines = [
        f"theta={result['theta']} L={result['L']} K={result['K']} (chosen on val); "
        f"{result['bits']['global']}-bit global, {result['bits']['local']}-bit local code; 10k gallery",
        "",
        "| method | " + " | ".join(HIER_KEYS) + " | bits/image | ms/query |",
        "|---" * (len(HIER_KEYS) + 3) + "|",
    ]
    for method, row in result["methods"].items():
        cells = [
            _cell(row[key]) + (f" ± {row[key + '_std']:.4f}" if key + "_std" in row else "")
            for key in HIER_KEYS
        ]
        bits = "-" if row["bits_per_gallery_image"] is None else _cell(row["bits_per_gallery_image"])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {bits} | {row['ms_per_query']:.3f} |")
    large = result["large_gallery"]
    keys = ("map@100", "map_exact@100", "p@10", "jaccard_ndcg@100", "object_map@100")
    lines += [
        "",
        f"{large['n']:,}-image gallery",
        "",
        "| method | " + " | ".join(keys) + " |",
        "|---" * 6 + "|",
    ]
    for method, row in large["methods"].items():
        lines.append(f"| {method} | " + " | ".join(_cell(row[key]) for key in keys) + " |")
    sizes = sorted({row["n"] for row in result["scale"]})
    lines += ["", "ms per query (top 100, one query at a time)", ""]
    lines += ["| method | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for method in dict.fromkeys(row["method"] for row in result["scale"]):
        cells = [
            next(
                f"{r['ms_per_query']:.3f}" + (" (random codes)" if r["codes"] == "random" else "")
                for r in result["scale"]
                if r["n"] == n and r["method"] == method
            )
            for n in sizes
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"object-focused map@100 ({result['object_queries']} queries with 2-3 items; "
        "relevant = contains the class of the largest item)",
        "",
    ]
    lines += ["| method | map@100 |", "|---|---|"]
    for method, row in result["object_focused"].items():
        std = f" ± {row['std']:.4f}" if "std" in row else ""
        lines.append(f"| {method} | {row['map@100']:.4f}{std} |")
    if "out_of_domain" in result:
        ood = result["out_of_domain"]
        rates = ", ".join(f"{kind.replace('_', ' ')} {rate:.0%}" for kind, rate in ood["flagged"].items())
        lines += [
            "",
            f"Out-of-domain note: novelty above {ood['threshold']:.4f} "
            f"(flags {ood['val_flagged']:.1%} of val); "
            f"flagged among {ood['images_per_kind']} images of each kind: {rates}.",
        ]
    att = result["attention"]
    lines += [
        "",
        f"Selected bits that overlap the attention region (of L = {result['L']}), over the query split: "
        f"median {att['positive_overlap_median']:g}, 10th-90th percentile {att['positive_overlap_p10']:g}-"
        f"{att['positive_overlap_p90']:g}; {att['empty_region_queries']} queries with an empty region.",
    ]
    return "\n".join(lines)


def dcoh_tables(result: dict) -> str:
    methods = DCOH_METHODS
    lines = [
        f"{result['bits']}-bit codes; map@100 / jaccard@10 per operator",
        "",
        "| operator | pairs | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + 2) + "|",
    ]
    for operator, row in result["operators"].items():
        cells = [f"{row[m]['map@100']:.3f} / {row[m]['jaccard@10']:.3f}" for m in methods]
        lines.append(f"| {operator} | {row['pairs']} | " + " | ".join(cells) + " |")
    if "seeds" in result:
        lines += [
            "",
            "map@100 over three training seeds (mean ± std)",
            "",
            "| operator | dcoh | dcoh_no_adv |",
            "|---|---|---|",
        ]
        for operator in result["operators"]:
            cells = [
                f"{result['seeds'][m][operator]['mean']:.3f} ± {result['seeds'][m][operator]['std']:.3f}"
                for m in ("dcoh", "dcoh_no_adv")
            ]
            lines.append(f"| {operator} | " + " | ".join(cells) + " |")
    if "chains" in result:
        lines += ["", "chains (A op B) op' C: map@100 / jaccard@10", ""]
        lines += ["| chain | triples | " + " | ".join(methods) + " |", "|---" * (len(methods) + 2) + "|"]
        for chain, row in result["chains"].items():
            cells = [f"{row[m]['map@100']:.3f} / {row[m]['jaccard@10']:.3f}" for m in methods]
            lines.append(f"| {chain} | {row['triples']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"single-image mAP of h(x): {result['single_image']['map']:.4f}",
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
    """The hierarchical table in plain words, from its own numbers."""
    m = result["methods"]
    largest = max(row["n"] for row in result["scale"])
    ms = {row["method"]: row["ms_per_query"] for row in result["scale"] if row["n"] == largest}
    cam, full, rand, act = m["hier_cam"], m["local_full"], m["hier_random"], m["hier_activation"]
    return (
        f"**In plain words.** The two-level search with attention-selected bits reaches map@100 "
        f"{cam['map@100']:.3f} against {full['map@100']:.3f} for the full "
        f"{result['bits']['local']}-bit local code, "
        f"comparing {cam['bits_per_gallery_image']:g} bits per gallery image "
        f"instead of {result['bits']['local']}; "
        f"at {largest:,} codes one query takes {ms['hier_cam']:.2f} ms against {ms['local_full']:.2f} ms "
        f"({ms['hier_cam'] / ms['local_full']:.2f}x). On the main object of 2-3-item queries, "
        "attention scores "
        f"{cam['object_map@100']:.3f} against {rand['object_map@100']:.3f} "
        f"± {rand['object_map@100_std']:.3f} for "
        f"random bits and {act['object_map@100']:.3f} for the most active maps."
    )


def dcoh_takeaway(result: dict) -> str:
    ops = result["operators"]
    parts = [
        f"{op} {row['dcoh']['map@100']:.3f} (oracle {row['oracle']['map@100']:.3f}, label route "
        f"{row['label_route']['map@100']:.3f}, bitwise {row['bitwise']['map@100']:.3f})"
        for op, row in ops.items()
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
    """Accuracy against cost: map@100 and object-focused map@100 against ms per query at the largest
    gallery and against bits compared per gallery image (10k gallery)."""
    largest = max(row["n"] for row in result["scale"])
    ms = {row["method"]: row["ms_per_query"] for row in result["scale"] if row["n"] == largest}
    fig = Figure(figsize=(10, 7))
    axes = fig.subplots(2, 2)
    for col, (cost_name, cost) in enumerate(
        (
            (f"ms per query at {largest:,} codes", lambda m, row: ms.get(m)),
            ("bits compared per gallery image", lambda m, row: row["bits_per_gallery_image"]),
        )
    ):
        for row_index, metric in enumerate(("map@100", "object_map@100")):
            ax = axes[row_index, col]
            for method, row in result["methods"].items():
                x = cost(method, row)
                if x is None:
                    continue
                ax.scatter(x, row[metric], s=30)
                ax.annotate(method, (x, row[metric]), fontsize=8, xytext=(3, 3), textcoords="offset points")
            ax.set(xscale="log", xlabel=cost_name, ylabel=metric)
            ax.grid(alpha=0.3)
    fig.suptitle(
        f"Accuracy against cost (theta={result['theta']}, L={result['L']}, K={result['K']})", fontsize=10
    )
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
        ax.plot(curve["recall"], curve["precision"], label=name)
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
        ax.bar(np.arange(len(operators)) + i * width, values, width, label=method)
    ax.set_xticks(np.arange(len(operators)) + 0.4 - width / 2, list(operators))
    ax.set(ylabel="mAP@100 (label set = T)", title="Composed queries, query pairs vs gallery")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig
