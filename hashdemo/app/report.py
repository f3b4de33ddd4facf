"""What the Benchmarks tab and the evaluation command show: Markdown tables and matplotlib figures
of evaluation results (`matplotlib.figure.Figure`, never pyplot: no GUI backend, no global state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

DCOH_METHODS = ("dcoh", "dcoh_no_adv", "bitwise", "label_route", "oracle")  # the columns of the DCOH table


def format_tables(name: str, result: dict) -> str:
    """Markdown tables of a result, as printed and pasted into the README."""
    if name == "hier":
        keys = ("map", "map_exact", "map@100", "p@10", "bits_compared", "ms_per_query")
        lines = [
            f"theta={result['theta']} L={result['L']} K={result['K']} (chosen on val); "
            f"{result['bits']['global']}-bit global, {result['bits']['local']}-bit local code",
            "",
            "| method | " + " | ".join(keys) + " |",
            "|---" * (len(keys) + 1) + "|",
        ]
        for method, row in result["methods"].items():
            lines.append(f"| {method} | " + " | ".join(_cell(row[key]) for key in keys) + " |")
        return "\n".join(lines)
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


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def map_vs_parameter(grid: list[dict], best: dict, parameter: str) -> Figure:
    """Val mAP of the CAM re-rank against L or K, the other parameters at their chosen values."""
    fixed = [p for p in ("theta", "L", "K") if p != parameter]
    rows = sorted((r for r in grid if all(r[p] == best[p] for p in fixed)), key=lambda r: r[parameter])
    fig = Figure(figsize=(4.5, 3))
    ax = fig.subplots()
    ax.plot([r[parameter] for r in rows], [r["val_map"] for r in rows], "o-")
    ax.set(
        xlabel=parameter,
        ylabel="val mAP",
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
