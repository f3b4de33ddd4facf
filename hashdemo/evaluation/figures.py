"""Figures drawn from data: image tiles with captions and the dataset montage (OpenCV, numpy in, RGB out),
and the evaluation's plots (`matplotlib.figure.Figure`, never pyplot: no GUI backend, no global state;
matplotlib is imported by the functions that draw, so the server starts without it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torchvision.utils import make_grid

from hashdemo.data.split import Split, label_text
from hashdemo.evaluation.method_labels import colour

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DISPLAY = 256  # the 64x64 model images are shown at 4x
PLOTTED = ("global", "local_full", "hier_cam", "hier_random")  # the scaling plot's methods
FIGURE_DATA = ("pca",)  # result keys an evaluation returns for its figures only: never in its JSON
DPI = 110


def enlarge(image: np.ndarray, size: int = DISPLAY) -> np.ndarray:
    """An image or map at size x size: nearest-neighbour for whole multiples keeps the 64x64 pixels
    honest; a photo's side (224, 448) is resampled smoothly, by area when it shrinks."""
    side = image.shape[0]
    if size % side == 0:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if size < side else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def captioned(
    image: np.ndarray,
    lines: list[str],
    size: int = 128,
    frame: tuple[int, int, int] | None = None,
    n_lines: int | None = None,
) -> np.ndarray:
    """A tile: the picture enlarged, then a white band below it with one caption line per entry
    (room for `n_lines`, so tiles of a grid line up). Captions never cover the picture."""
    tile = np.ascontiguousarray(enlarge(image, size))
    if frame is not None:
        cv2.rectangle(tile, (0, 0), (size - 1, size - 1), frame, 6)
    band = np.full((14 * max(n_lines or 0, len(lines)) + 4, size, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(
            band, line, (3, 13 + 14 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (40, 40, 40), 1, cv2.LINE_AA
        )
    return np.concatenate([tile, band])


def save_montage(
    split: Split, classes: tuple[str, ...], path: str | os.PathLike, rows: int = 4, cols: int = 8
) -> None:
    """Write a PNG grid of the first rows*cols images of `split`, each captioned with its labels."""
    tiles = [
        captioned(split.images[i], label_text(split.labels[i], classes).split(", "), n_lines=3)
        for i in range(min(rows * cols, len(split)))
    ]
    batch = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)  # (N, 3, h, w) uint8
    grid = make_grid(batch, nrow=cols, padding=6, pad_value=255).permute(1, 2, 0).numpy()
    cv2.imwrite(str(path), np.ascontiguousarray(grid[..., ::-1]))


def write_figures(method: str, result: dict, assets: Path) -> list[Path]:
    """The README's figures of one evaluation into `assets`: accuracy against cost and time against
    gallery size after `evaluate hier`, the codes' PCA after `evaluate dcoh`. Returns the paths written."""
    figures = {}
    if method == "hier":
        figures = {"frontier.png": frontier(result), "scaling.png": scaling(result)}
        if "lengths" in result:
            figures |= {"lengths.png": lengths_figure(result), "field_curves.png": field_curves(result)}
    elif method == "dcoh" and "pca" in result:
        figures = {"dcoh_pca.png": dcoh_pca(result["pca"])}
    for name, figure in figures.items():
        figure.savefig(Path(assets) / name, dpi=DPI)
    return [Path(assets) / name for name in figures]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def frontier(result: dict) -> Figure:
    """Accuracy against cost: map@100 (shares a label) and exact-set map@100 against ms per query
    at the largest gallery where every method was timed, and against bits compared per gallery image."""
    from matplotlib.ticker import LogLocator, NullFormatter

    every = [
        n
        for n in {row["n"] for row in result["scale"]}
        if all(
            any(r["n"] == n and r["method"] == m for r in result["scale"]) for m in ("global", "float_cosine")
        )
    ]
    largest = max(every)
    ms = {row["method"]: row["ms_per_query"] for row in result["scale"] if row["n"] == largest}
    metrics = ("map@100", "map_exact@100")  # relevance no method defines
    fig = _figure(10, 7)
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
    handles, labels = axes[0, 1].get_legend_handles_labels()  # the bits panel has every method
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(
        f"Accuracy against cost (theta={result['theta']}, L={result['L']}, K={result['K']})", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def scaling(result: dict) -> Figure:
    """Log-log ms per query against gallery size for the plotted methods, with the bits-compared ratio
    (H + L K / N) / C times the full local scan's time as the two-level search's asymptote."""
    fig = _figure(6.5, 4.5)
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
    kinds = {row["n"]: row["codes"] for row in result["scale"]}
    title = ", ".join(f"{n:,}: {kind}" for n, kind in sorted(kinds.items()) if kind != "real") or "real codes"
    fig.suptitle(f"Time per query against gallery size (codes: real; {title})", fontsize=10)
    fig.tight_layout()
    return fig


def map_vs_parameter(grid: list[dict], best: dict, parameter: str) -> Figure:
    """Val map@100 of the CAM re-rank against L or K's share, the other parameters at their chosen values."""
    fixed = [p for p in ("theta", "L", "K_share") if p != parameter]
    rows = sorted((r for r in grid if all(r[p] == best[p] for p in fixed)), key=lambda r: r[parameter])
    fig = _figure(4.5, 3)
    ax = fig.subplots()
    xs, ys = [r[parameter] for r in rows], [r["val_map@100"] for r in rows]
    ax.plot(xs, ys, "o-")
    ax.plot(
        [best[parameter]], [next(y for x, y in zip(xs, ys, strict=True) if x == best[parameter])], "r*", ms=10
    )
    title = f"mAP against {parameter} ({', '.join(f'{p}={best[p]}' for p in fixed)})"
    if best[parameter] == max(xs) and len(ys) > 1 and ys[-1] > ys[-2]:
        title += f"\nchosen at the grid's top ({best[parameter]}), the curve still rising"
    ax.set(xlabel=parameter, ylabel="val map@100", title=title)
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def pr_curves(curves: dict[str, dict[str, list[float]]]) -> Figure:
    fig = _figure(4.5, 3.2)
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
    fig = _figure(8, 4)
    ax = fig.subplots()
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = [operators[op][method]["map@100"] for op in operators]
        ax.bar(np.arange(len(operators)) + i * width, values, width, label=method, color=colour(method))
    ax.set_xticks(np.arange(len(operators)) + 0.4 - width / 2, list(operators))
    ax.set(ylabel="mAP@100 (label set = T)", title="Composed queries, query pairs vs gallery")
    ax.title.set_fontsize(9)
    # below the axes: inside them the legend covered the intersection bars
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    return fig


def dcoh_pca(points: dict[str, dict[str, np.ndarray]]) -> Figure:
    """Real gallery codes against operator outputs on the real codes' first two principal components,
    one panel per model (`hashdemo.evaluation.dcoh.pca_points`); a little jitter spreads the points
    that binary codes stack on one spot."""
    fig = _figure(5 * len(points), 5)
    axes = fig.subplots(1, len(points))
    jitter = np.random.default_rng(0)
    for ax, (name, clouds) in zip(np.atleast_1d(axes), points.items(), strict=True):
        for key, label, color in (
            ("real", "real codes h(x)", "tab:blue"),
            ("generated", "operator outputs", "tab:orange"),
        ):
            xy = clouds[key] + jitter.normal(0, 0.05, (len(clouds[key]), 2))
            ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.4, label=label, color=color)
        ax.set(title=f"{name}: real vs generated codes (PCA)", xlabel="PC 1", ylabel="PC 2")
        ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    return fig


FIELD_METRICS = {  # the field's protocols, relevance from labels and boxes alone
    "map": "mAP, whole gallery (shares a label)",
    "map@1000": "mAP@1000 (shares a label)",
    "map_exact@100": "exact label set map@100",
    "object_map@100": "largest item map@100",
    "each_map@100": "each item map@100",
}


def lengths_figure(result: dict) -> Figure:
    """One panel per protocol: every method against its code length (bits stored for a one-level code,
    H for the two-level rows), the bars one std over the seeded tie orders."""
    from matplotlib.ticker import NullFormatter, NullLocator

    lengths = result["lengths"]
    present = next(iter(next(iter(lengths.values())).values()))
    metrics = [m for m in FIELD_METRICS if m in present]
    ticks = sorted(int(b) for b in lengths)
    fig = _figure(13, 8)
    axes = fig.subplots(2, 3).ravel()
    methods = dict.fromkeys(m for rows in lengths.values() for m in rows)
    for ax, metric in zip(axes, metrics, strict=False):
        for method in methods:
            points = sorted(
                (int(bits), rows[method][metric], rows[method][f"{metric}_std"])
                for bits, rows in lengths.items()
                if method in rows
            )
            x, y, err = zip(*points, strict=True)
            style = "s--" if method.startswith("hier") else "o-"
            ax.errorbar(x, y, yerr=err, fmt=style, ms=4, capsize=2, label=method, color=colour(method))
        ax.set(xscale="log", xlabel="code length (bits; two-level: H)", title=FIELD_METRICS[metric])
        ax.xaxis.set_minor_locator(NullLocator())  # minor labels collided with the lengths
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].legend(handles, labels, loc="center", fontsize=9, frameon=False)
    fig.suptitle(
        f"Every method at the field's code lengths, query split against the gallery "
        f"(mean over {result['field']['tie_orders']} random tie orders)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def field_curves(result: dict) -> Figure:
    """The field's curves at each length: precision-recall (over Hamming radius for one code, over rank
    for the two-level search) and precision@N, one row of panels per length."""
    curves = {
        bits: rows for bits, rows in result["curves"].items() if int(bits) in result["field"]["lengths"]
    }
    fig = _figure(10, 3.4 * len(curves))
    axes = np.atleast_2d(fig.subplots(len(curves), 2))
    for (bits, rows), (pr_ax, at_ax) in zip(curves.items(), axes, strict=True):
        for method, curve in rows.items():
            style = "--" if curve["pr"]["over"] == "rank" else "-"
            pr_ax.plot(
                curve["pr"]["recall"], curve["pr"]["precision"], style, label=method, color=colour(method)
            )
            ns = [int(n) for n in curve["precision_at_n"]]
            at_ax.plot(ns, list(curve["precision_at_n"].values()), style, label=method, color=colour(method))
        pr_ax.set(xlabel="recall", ylabel="precision", title=f"{bits} bits: precision-recall")
        at_ax.set(xscale="log", xlabel="N", ylabel="precision@N", title=f"{bits} bits: precision@N")
        for ax in (pr_ax, at_ax):
            ax.title.set_fontsize(9)
            ax.grid(alpha=0.3)
        at_ax.legend(fontsize=7, ncol=2)
    fig.suptitle("The field's curves (solid: over Hamming radius; dashed: two-level, over rank)", fontsize=10)
    fig.tight_layout()
    return fig
