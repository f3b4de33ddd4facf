"""Pin and compare, on the search tab: pin the view shown, then set another query or other theta, L, K and
compare both views side by side (both rows, their per-query figures); and, on demand, one query's curve
of P@10 and AP against L and against theta (Engine.sweep: twenty searches, so never on every search).

Every search clears the comparison and the curve (Presenter.search: CLEARED_VIEWS), so neither can show
a view from before the last change; the pinned view itself stays until the next pin.
"""

from __future__ import annotations

import gradio as gr
import numpy as np

from hashdemo.app import pictures
from hashdemo.app.exports import source_name
from hashdemo.app.presenter import PIN_PROMPT, SHOWN_RESULTS, Presenter, figures_text
from hashdemo.app.state import SearchState
from hashdemo.app.widgets import panel, user_errors
from hashdemo.evaluation.markdown import markdown_table
from hashdemo.service.engine import Engine
from hashdemo.service.relevance import RELEVANCE


def pin_layout() -> dict:
    """The accordion: three buttons, the comparison's table and picture, the curve."""
    named = {"pinned": gr.State(None)}
    with gr.Accordion("Pin and compare; a curve against L, theta", open=False):
        with gr.Row():
            named["pin"] = gr.Button("Pin this view", size="sm")
            named["compare_pinned"] = gr.Button("Compare with the pinned view", size="sm")
            named["curve"] = gr.Button("Curve of P@10 and AP against L and theta", size="sm")
        named["pin_status"] = gr.Markdown(PIN_PROMPT, elem_id="pin-status")  # a search never clears it
        named["pin_text"] = gr.Markdown("", elem_id="pin-text", elem_classes="scroll-table")
        named["pin_image"] = panel(
            "Both rows of the pinned view, then of this one", "pin", height=None, wide=True
        )
        named["curve_image"] = panel(
            "This query's re-ranked row against L and theta", "curve", height=None, wide=True
        )  # a phone scrolls it at its drawn size
    return named


def wire_pin(engine: Engine, present: Presenter, named: dict) -> None:
    state, pinned = named["state"], named["pinned"]

    @user_errors
    def pin(state: SearchState | None):
        if not state:
            raise ValueError("Run a search first, then pin it.")
        return state, f"**Pinned:** {view_name(state)}. Now change the query or theta, L, K and compare."

    @user_errors
    def compare(pinned_state: SearchState | None, state: SearchState | None):
        if not pinned_state or not state:
            raise ValueError(
                "Pin a view first (the button on the left), then change the query or theta, L, K."
            )
        return side_by_side(engine, present, {"pinned": pinned_state, "now": state})

    @user_errors
    def curve(state: SearchState | None):
        if not state:
            raise ValueError("Run a search first.")
        now = engine.search(state.query, *state.params, box=state.box, relevance=state.relevance)
        figures = engine.answer_figures(now, now.coarse)
        if figures is None:
            raise ValueError(
                f"The curve cannot judge this query: {RELEVANCE[state.relevance].unknown}; pick a dataset "
                "image (an example, or by id), or another relevance rule."
            )
        sweep = engine.sweep(state.query, *state.params, box=state.box, relevance=state.relevance)
        points = {
            name: [(x, f.precision, f.ap_at_100, f.ap) for x, f in rows] for name, rows in sweep.items()
        }
        baseline = (figures.precision, figures.ap_at_100, figures.ap)
        return present.files.figure(curve_figure, points, list(state.params), baseline)

    named["pin"].click(pin, state, [pinned, named["pin_status"]], api_name=False)
    named["compare_pinned"].click(
        compare, [pinned, state], [named["pin_text"], named["pin_image"]], api_name=False
    )
    named["curve"].click(curve, state, named["curve_image"], api_name=False)


def view_name(state: SearchState) -> str:
    theta, top_l, n_coarse = state.params
    box = "" if state.box is None else f", box {','.join(map(str, state.box))}"
    rule = RELEVANCE[state.relevance].words
    return f"{source_name(state.source)}, theta = {theta:g}, L = {top_l}, K = {n_coarse}{box}, {rule}"


def side_by_side(engine: Engine, present: Presenter, views: dict[str, SearchState]) -> tuple[str, str]:
    """Both views' rows in one picture, and a table of each row's per-query figures."""
    lines, table = [], []
    for name, state in views.items():
        answer = engine.search(state.query, *state.params, box=state.box, relevance=state.relevance)
        for row, ranking in (("global code", answer.coarse), ("re-ranked", answer.reranked)):
            shown = ranking.top(SHOWN_RESULTS)
            relevant = [None] * len(shown.ids) if shown.relevant is None else shown.relevant.tolist()
            images = [engine.gallery_images[i] for i in shown.ids]
            lines.append((f"{name}: {row}", images, relevant, [None] * len(images)))
            figures = engine.answer_figures(answer, ranking)
            table.append([name, view_name(state), row, figures_text(figures, "K")])
    text = markdown_table(["view", "query and settings", "row", "P@k, AP@100, AP"], table)
    return text, present.files(pictures.comparison_grid(lines))


CURVE_LABELS = ("P@10", "AP@100", "AP@K")
CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def curve_figure(points: dict[str, list], params: list, baseline: tuple[float, float, float]):
    """P@10, AP@100 and AP of the re-ranked row against L (log scale) and against theta, the view's own
    value marked, beside the global code's own row (the same K; it depends on neither L nor theta); the
    y-axis spans the values drawn, not 0-1."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3))
    axes = figure.subplots(1, 2, sharey=True)
    theta, top_l, _ = params
    for ax, (name, at) in zip(axes, (("L", top_l), ("theta", theta)), strict=True):
        x, *series = np.array(points[name], dtype=float).T
        for values, label, base, colour in zip(series, CURVE_LABELS, baseline, CURVE_COLOURS, strict=True):
            ax.plot(x, values, "o-", label=label, markersize=3, color=colour)
            ax.axhline(base, color=colour, linestyle="--", linewidth=0.8, label=f"{label}, global code only")
        ax.axvline(at, color="grey", linestyle=":", label=f"this view ({name} = {at:g})")
        drawn = np.concatenate([np.ravel(series), baseline])
        ax.set(xlabel=name, ylim=(max(0.0, float(drawn.min()) - 0.05), min(1.02, float(drawn.max()) + 0.03)))
        if name == "L":
            ax.set_xscale("log", base=2)
    axes[0].set_ylabel("re-ranked row, this query")
    axes[1].legend(fontsize=6, loc="lower left", ncol=2)
    figure.tight_layout()
    return figure
