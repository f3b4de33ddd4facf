"""The "Benchmarks" tab: the evaluation's `test` sections from the checkpoints' metrics.json, in words,
tables and figures (hashdemo.app.report draws them; nothing is computed here)."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
from matplotlib.figure import Figure

from hashdemo.app import report
from hashdemo.app.picture_files import PictureFiles


def benchmarks_tab(hier_metrics: dict, dcoh_metrics: dict, files: PictureFiles) -> None:
    """The evaluation's `test` sections from the checkpoints' metrics.json, as tables and figures."""
    hier, dcoh = hier_metrics.get("test"), dcoh_metrics.get("test")

    def plot(draw: Callable[..., Figure], *args, label: str) -> None:
        figure = files.figure(draw, *args)
        gr.Image(figure, label=label, show_label=False, buttons=["fullscreen"])

    gr.Markdown("## Hierarchical hashing, query split (1000) against the gallery (10000)")
    if hier is None:
        gr.Markdown("No test results yet: run `python -m hashdemo evaluate hier`.")
    else:
        gr.Markdown(report.hier_takeaway(hier))
        gr.Markdown(report.format_tables("hier", hier), elem_classes="scroll-table")
        plot(report.frontier, hier, label="Accuracy against cost")
        with gr.Row():
            plot(report.map_vs_parameter, hier["val_grid"], hier, "L", label="map@100 against L (val)")
            plot(report.map_vs_parameter, hier["val_grid"], hier, "K_share", label="map@100 against K (val)")
            plot(report.pr_curves, hier["pr_curves"], label="Precision-recall (test)")
    gr.Markdown("## DCOH, composed queries from query-split pairs against the gallery")
    if dcoh is None:
        gr.Markdown("No test results yet: run `python -m hashdemo evaluate dcoh`.")
    else:
        gr.Markdown(report.dcoh_takeaway(dcoh))
        gr.Markdown(report.format_tables("dcoh", dcoh), elem_classes="scroll-table")
        plot(report.operator_bars, dcoh["operators"], report.DCOH_METHODS, label="mAP@100 per operator")
    with gr.Accordion("Glossary of the column names", open=False):
        gr.Markdown(report.glossary())
