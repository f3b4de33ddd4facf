"""The "Benchmarks" tab: the evaluation's `test` sections from the checkpoints' metrics.json, in words,
tables and figures (hashdemo.evaluation.tables and .figures draw them; nothing is computed here)."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
from matplotlib.figure import Figure

from hashdemo.app.picture_files import PictureFiles
from hashdemo.data.kinds import DEFAULT, dataset_flag
from hashdemo.evaluation import figures, method_labels, tables


def benchmarks_tab(
    hier_metrics: dict, dcoh_metrics: dict, files: PictureFiles, dataset: str = DEFAULT
) -> None:
    """The evaluation's `test` sections from the checkpoints' metrics.json, as tables and figures."""
    hier, dcoh = hier_metrics.get("test"), dcoh_metrics.get("test")
    on = dataset_flag(dataset)

    def plot(draw: Callable[..., Figure], *args, label: str) -> None:
        figure = files.figure(draw, *args)
        gr.Image(figure, label=label, show_label=False, buttons=["fullscreen"], elem_classes="scroll-wide")

    with gr.Accordion("What the method names and columns mean", open=False):  # the takeaways come first
        gr.Markdown(method_labels.method_names() + "\n\n" + method_labels.glossary())

    def section(title: str, method: str, result: dict | None, takeaway: Callable[[dict], str]) -> bool:
        """A method's heading, then its takeaway and tables, or the command that makes them."""
        gr.Markdown(f"## {title} ({dataset})")
        if result is None:
            gr.Markdown(f"No test results yet: run `python -m hashdemo evaluate {method}{on}`.")
            return False
        gr.Markdown(takeaway(result))
        gr.Markdown(tables.format_tables(method, result), elem_classes="scroll-table")
        return True

    if section("Hierarchical hashing, query split against the gallery", "hier", hier, tables.hier_takeaway):
        if "lengths" in hier:  # the field's protocol: every method at every code length
            plot(figures.lengths_figure, hier, label="Every method at the field's code lengths")
            plot(figures.field_curves, hier, label="The field's curves at each code length")
        if "scale" in hier:  # the outfits' evaluation times the methods; an imported set's does not
            plot(figures.frontier, hier, label="Accuracy against cost")
        with gr.Row():
            plot(figures.map_vs_parameter, hier["val_grid"], hier, "L", label="map@100 against L (val)")
            plot(figures.map_vs_parameter, hier["val_grid"], hier, "K_share", label="map@100 against K (val)")
            if "pr_curves" in hier:
                plot(figures.pr_curves, hier["pr_curves"], label="Precision-recall (test)")
    if section(
        "DCOH, composed queries from query-split pairs against the gallery",
        "dcoh",
        dcoh,
        tables.dcoh_takeaway,
    ):
        scored = {op: row for op, row in dcoh["operators"].items() if row.get("pairs")}
        methods = tuple(m for m in tables.DCOH_METHODS if all(m in row for row in scored.values()))
        plot(figures.operator_bars, scored, methods, label="mAP@100 per operator")
