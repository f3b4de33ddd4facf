"""The query split as a browser: at the page's theta, L, K and relevance rule, every query's AP@100 on
the global code alone and re-ranked on its CAM bits (service.query_split), the queries the re-rank helps
and hurts most in two tables; a click on a row opens that query. Computed on a click, not per search."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
import numpy as np

from hashdemo.app.widgets import user_errors
from hashdemo.service.engine import Engine
from hashdemo.service.query_split import SplitGains
from hashdemo.service.relevance import RELEVANCE

LISTED = 10  # queries in each table
COLUMNS = ["query id", "labels", "AP@100 global", "AP@100 re-ranked", "gain"]
PROMPT = "Rank every query of the split at the settings above: which ones the CAM bits help or hurt."


def query_browser_layout() -> dict:
    named = {}
    with gr.Accordion(
        "The query split: where the CAM bits help or hurt", open=False, elem_id="query-browser"
    ):
        named["split_rank"] = gr.Button("Rank the query split at these settings", size="sm")
        named["split_text"] = gr.Markdown(PROMPT, elem_id="split-text")
        with gr.Row():
            named["split_helped"] = gr.Dataframe(
                headers=COLUMNS,
                label="Helped most (click a row to open it)",
                elem_id="split-helped",
                interactive=False,
                wrap=True,
            )
            named["split_hurt"] = gr.Dataframe(
                headers=COLUMNS,
                label="Hurt most (click a row to open it)",
                elem_id="split-hurt",
                interactive=False,
                wrap=True,
            )
    return named


def split_summary(gains: SplitGains, params: tuple[float, int, int], rule: str) -> str:
    """The split's answer in one paragraph: how many queries the re-rank helps, hurts, leaves equal."""
    theta, top_l, n_coarse = params
    judged = gains.judged
    if not judged.any():
        return f"No query can be judged by *{RELEVANCE[rule].words}*: {RELEVANCE[rule].unknown}."
    gain = gains.gain[judged]
    scope = (
        f"all {len(gains.ids):,} queries"
        if len(gains.ids) == gains.split_size
        else f"a seeded sample of {len(gains.ids):,} of the {gains.split_size:,} queries"
    )
    return (
        f"Over {scope} (theta = {theta:g}, L = {top_l}, K = {n_coarse}; relevant = {RELEVANCE[rule].words}; "
        f"{int(judged.sum()):,} judged): the re-rank on each query's CAM bits raises AP@100 on "
        f"{int((gain > 0).sum()):,}, lowers it on {int((gain < 0).sum()):,} and leaves "
        f"{int((gain == 0).sum()):,} equal; map@100 {np.mean(gains.global_ap[judged]):.3f} on the global "
        f"code alone, {np.mean(gains.reranked_ap[judged]):.3f} re-ranked (mean gain {np.mean(gain):+.4f})."
    )


def split_rows(engine: Engine, gains: SplitGains, helped: bool) -> list[list]:
    """The LISTED queries the re-rank helps (or hurts) most, largest change first, ties by id."""
    order = [i for i in np.lexsort((gains.ids, -gains.gain if helped else gains.gain)) if gains.judged[i]]
    picked = [i for i in order if (gains.gain[i] > 0 if helped else gains.gain[i] < 0)][:LISTED]
    return [
        [
            int(gains.ids[i]),
            engine.label_text(engine.query_labels[gains.ids[i]]),
            round(float(gains.global_ap[i]), 3),
            round(float(gains.reranked_ap[i]), 3),
            round(float(gains.gain[i]), 3),
        ]
        for i in picked
    ]


def wire_query_browser(
    engine: Engine, named: dict, params: list, open_query: Callable, reveal_js: str
) -> None:
    """The rank button fills both tables; a click on a row searches that query (`open_query(id,
    *param values)` answers as a pick by id does) and `reveal_js` brings its rows into view."""
    tables = [named["split_text"], named["split_helped"], named["split_hurt"]]

    @user_errors
    def rank(theta, top_l, n_coarse, relevance, _side_open):
        checked = engine.check_params(theta, top_l, n_coarse)
        gains = engine.query_split.gains(*checked, relevance)
        return (
            split_summary(gains, checked, relevance),
            split_rows(engine, gains, helped=True),
            split_rows(engine, gains, helped=False),
        )

    named["split_rank"].click(rank, params, tables, api_name=False)

    # Gradio hands the click's SelectData only to a parameter it can see, so the page's values are named
    def opened(theta, top_l, n_coarse, relevance, side_open, evt: gr.SelectData):
        row = evt.row_value
        if not row or str(row[0]).strip() in ("None", ""):
            raise gr.Error("Rank the query split first, then click a row.")
        return open_query(int(row[0]), theta, top_l, n_coarse, relevance, side_open)

    for table in ("split_helped", "split_hurt"):
        event = named[table].select(opened, params, named["picked_outputs"], api_name=False)
        event.success(None, js=reveal_js)
