"""The "Attention & search" tab's events: a query, its attention (panels 1-5, the attention steps of
docs/methods.md, "Method 1: hierarchical hashing with CAM attention bit selection") and both result
rows; theta, L and K re-run attention and ranking without re-encoding; two clicks box the object.

Every search answers with all of SEARCH_OUTPUTS in one event (hashdemo.app.presenter.Presenter.search):
the panels, the rows, the cleared explanations, the side-by-side view, the downloads and the link. A
later event could leave one of them from before the last change, or clear a click that came after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import gradio as gr
import numpy as np

from hashdemo.app import pictures
from hashdemo.app.links import parse_link, sentence, view_link
from hashdemo.app.pin_compare import wire_pin
from hashdemo.app.presenter import SEARCH_OUTPUTS, Presenter
from hashdemo.app.query_browser import wire_query_browser
from hashdemo.app.search_layout import K_SLIDER_MAX, PARAMS, page_params, search_layout
from hashdemo.app.state import SearchState
from hashdemo.app.widgets import REVEAL, image_path, read_image, user_errors
from hashdemo.service.documents import search_document
from hashdemo.service.engine import Engine
from hashdemo.service.relevance import DEFAULT_RELEVANCE, relevance_rule

ROWS = ("coarse", "reranked")  # the two result rows, by output name
SHOW_ROWS = REVEAL.format(
    top="#coarse-header", bottom="#reranked-header", shown="#reranked-row img", block="start"
)  # a phone scrolls to the answer


def search_tab(demo: gr.Blocks, engine: Engine, present: Presenter, example_paths: list[str]) -> None:
    """The layout, then the events: every handler validates, makes the engine calls and formats."""
    named = search_layout(engine, example_paths)
    named["outputs"] = [named[name] for name in (*SEARCH_OUTPUTS, "state", "explained")]
    show = shower(engine, present, named)
    search = wire_queries(demo, engine, present, example_paths, named, show)
    wire_params(engine, named, show)
    wire_clicks(engine, present, named, show)
    wire_picks(engine, present, named, search)
    wire_pin(engine, present, named)
    wire_side(engine, present, named)
    wire_json(engine, named)


def wire_json(engine: Engine, named: dict) -> None:
    """`/search_json`: the same search as `/search`, answered as JSON (ids, distances, codes, selected bits,
    figures for every one of the K results) without a single picture, so a caller who wants the ranking
    pays for the search alone (docs/api.md)."""

    @user_errors
    def search_json(payload, theta, top_l, n_coarse, relevance=DEFAULT_RELEVANCE) -> dict:
        checked, path = page_params(engine, theta, top_l, n_coarse), image_path(payload)
        image = read_image(engine, path, "a query image")
        answer = engine.search(image, *checked, relevance=relevance)
        return search_document(engine, answer, checked, top=checked[2])

    answer = gr.JSON(visible=False)
    trigger = gr.Button(visible=False)
    inputs = [named["query"], *(named[name] for name in PARAMS), named["relevance"]]
    trigger.click(search_json, inputs, answer, api_name="search_json", show_progress="hidden")


def shower(engine: Engine, present: Presenter, named: dict) -> Callable[[SearchState], dict]:
    def show(state: SearchState, side_open: bool = False) -> dict:
        """The engine's answers for `state` (its query, parameters and box), formatted by output name; the
        side-by-side view only while it is open (every method's top 10: the costliest part)."""
        answer = engine.search(state.query, *state.params, box=state.box, relevance=state.relevance)
        comparison = engine.compare(state.query, *state.params, box=state.box) if side_open else None
        shown = present.search(answer, comparison, state, view_link(state))
        return {named[name]: value for name, value in shown.items()}

    return show


def wire_queries(
    demo: gr.Blocks, engine: Engine, present: Presenter, example_paths: list[str], named: dict, show: Callable
) -> Callable:
    """A new query (upload, example, first load); new parameters are `wire_params`'s."""
    query, state, outputs = named["query"], named["state"], named["outputs"]
    params = [named[name] for name in PARAMS]

    @user_errors
    def search(
        payload, theta, top_l, n_coarse, relevance=DEFAULT_RELEVANCE, side_open=False, source=None, box=None
    ):
        checked, path = page_params(engine, theta, top_l, n_coarse), image_path(payload)
        relevance_rule(relevance)
        image = read_image(engine, path, "a query image")
        source = source or engine.known.source(image)  # a dataset image sent as a file keeps its link
        state = SearchState(
            engine.make_query(image), path, checked, box=box, source=source, relevance=relevance
        )
        return show(state, side_open)

    def search_example(index: int, theta, top_l, n_coarse, relevance, side_open=False) -> dict:
        """An example shown in the query box and searched (the box is set here, not by its own event)."""
        path = example_paths[index]
        shown = search(path, theta, top_l, n_coarse, relevance, side_open, source=("query", index))
        return {query: path, **shown}

    def open_page(theta, top_l, n_coarse, relevance, request: gr.Request):
        """The first load: the view a link asks for (query, parameters, box, relevance), else the last
        example."""
        linked = parse_link(dict(request.query_params) if request else {}, engine, K_SLIDER_MAX)
        for problem in linked.problems:
            gr.Warning(sentence(problem))
        theta, top_l, n_coarse = linked.params or (theta, top_l, n_coarse)
        relevance = linked.relevance or relevance
        controls = {**dict(zip(params, (theta, top_l, n_coarse), strict=True)), named["relevance"]: relevance}
        if linked.source is None:
            return {**controls, **search_example(len(example_paths) - 1, theta, top_l, n_coarse, relevance)}
        split, index = linked.source
        path = present.files(engine.picture(split, index)[0])
        shown = search(path, theta, top_l, n_coarse, relevance, source=(split, index), box=linked.box)
        return {query: path, **controls, **shown}

    def restore_query(state):
        """After a refused upload the query box shows the query the panels belong to (empty before any)."""
        return state.path if state else None

    def search_clicked_example(theta, top_l, n_coarse, relevance, side_open, evt: gr.SelectData) -> dict:
        return search_example(evt.index, theta, top_l, n_coarse, relevance, side_open)

    # A user's upload (file, drop, paste) searches; an example click or the first load sets the box and
    # searches in one event. Not `query.change`: it fires twice when an upload replaces an image (one bad
    # file, two messages) and also on clearing the box, which is not a request. Refusals show one
    # message and leave every panel as it was: no progress badge (a search takes well under a second)
    # that would turn into a red "Error" on each panel.
    with_side = [*params, named["relevance"], named["side_open"]]  # side_open: a State, not in the API
    upload = query.upload(search, [query, *with_side], outputs, api_name="search", show_progress="hidden")
    upload.failure(restore_query, state, query, api_name=False)
    upload.success(None, js=SHOW_ROWS)
    example = named["examples"].dataset.select(
        search_clicked_example, with_side, [query, *outputs], api_name=False, show_progress="hidden"
    )
    example.success(None, js=SHOW_ROWS)
    demo.load(
        open_page,
        [*params, named["relevance"]],
        [query, *params, named["relevance"], *outputs],
        api_name=False,
    )
    return search


def wire_params(engine: Engine, named: dict, show: Callable) -> None:
    """New theta, L or K re-run attention and ranking on the query already encoded."""
    state, params = named["state"], [named[name] for name in PARAMS]

    @user_errors
    def rerank(state, theta, top_l, n_coarse, side_open):
        if not state:  # moving a slider before choosing a query just sets it
            return {named["state"]: gr.skip()}  # one output named: Gradio reads an empty dict as one value
        return show(replace(state, params=page_params(engine, theta, top_l, n_coarse)), side_open)

    def restore_params(state):
        """After a refused theta, L or K (out of range, not an integer): the controls go back to the values
        the panels show, so a number box and its slider never disagree with each other or the results."""
        return tuple(gr.skip() for _ in range(3)) if not state else state.params

    moved = gr.on(  # a drag, a typed value: the last one wins
        [p.change for p in params],
        rerank,
        [state, *params, named["side_open"]],
        named["outputs"],
        api_name=False,
        trigger_mode="always_last",
        show_progress="hidden",
        preprocess=False,  # the engine checks the values: one sentence, no traceback in the log
    )
    moved.failure(restore_params, state, params, api_name=False)

    @user_errors
    def rejudge(state, relevance, side_open):
        """Another relevance rule: the same rows, their frames and figures judged anew."""
        relevance_rule(relevance)
        if not state:
            return {named["state"]: gr.skip()}
        return show(replace(state, relevance=relevance), side_open)

    named["relevance"].input(
        rejudge,
        [state, named["relevance"], named["side_open"]],
        named["outputs"],
        api_name=False,
        show_progress="hidden",
    )


def wire_clicks(engine: Engine, present: Presenter, named: dict, show: Callable) -> None:
    """Clicks on the panels: a result of either row ("why"), two corners of a box, the clear button, a bit."""
    state, outputs = named["state"], named["outputs"]
    params = [named[name] for name in PARAMS]

    def searched(state) -> SearchState:
        if not state:
            raise ValueError("Run a search first.")
        return state

    def why(row: str) -> Callable:
        @user_errors
        def explain(state, theta, top_l, evt: gr.SelectData):
            state = searched(state)
            theta, top_l, _ = engine.check_params(theta, top_l, 1)
            return present.why(state, row, evt.index, theta, top_l)

        return explain

    @user_errors
    def point(state, theta, top_l, n_coarse, side_open, evt: gr.SelectData):
        """Two clicks on panel 1 mark the object's box (corners); it replaces the CAM's region."""
        scale = engine.image_size / pictures.DISPLAY
        corner = (int(evt.index[0] * scale), int(evt.index[1] * scale))
        params = engine.check_params(theta, top_l, n_coarse)
        return show(replace(searched(state).with_click(corner), params=params), side_open)

    @user_errors
    def clear_box(state, theta, top_l, n_coarse, side_open):
        if not state:
            return {named["state"]: gr.skip()}
        params = engine.check_params(theta, top_l, n_coarse)
        return show(replace(state.without_box(), params=params), side_open)

    @user_errors
    def show_bit(state, theta, top_l, evt: gr.SelectData):
        state = searched(state)
        theta, top_l, _ = engine.check_params(theta, top_l, 1)
        return present.bit(state, *evt.index, theta, top_l)

    explained = [named["why_image"], named["why_text"], named["explained"]]
    for row in ROWS:
        named[row].select(why(row), [state, *params[:2]], explained, api_name=False).success(
            None, js=REVEAL.format(top="#why-row", bottom="#why-row", shown="#why-panel img", block="nearest")
        )
    with_side = [state, *params, named["side_open"]]
    named["cam"].select(point, with_side, outputs, api_name=False, show_progress="hidden")
    named["clear"].click(clear_box, with_side, outputs, api_name=False, show_progress="hidden")
    named["strip"].select(
        show_bit,
        [state, *params[:2]],
        [named["bit_view"], named["bit_text"]],
        api_name=False,
        show_progress="hidden",  # a click beside a bit says so in one sentence, no "Error" badge
    )


def wire_picks(engine: Engine, present: Presenter, named: dict, search: Callable) -> None:
    """Any query-split or gallery image by its id, a random one, and the explained result as the query."""
    query = named["query"]
    params = [*(named[name] for name in PARAMS), named["relevance"], named["side_open"]]
    outputs = [query, *named["outputs"]]
    rng = np.random.default_rng()

    def show_picture(split: str, index, *values) -> dict:
        image, _ = engine.picture(split, index)
        path = present.files(image)  # served like every picture; its labels are known by its pixels
        return {query: path, **search(path, *values, source=(split, int(index)))}

    @user_errors
    def pick(split, index, *values):
        return show_picture(split, index, *values)

    @user_errors
    def pick_random(*values):
        index = int(rng.integers(len(engine.query_images)))
        return {named["split"]: "query", named["picked"]: index, **show_picture("query", index, *values)}

    @user_errors
    def use_result(gallery_id, *values):
        if gallery_id is None:
            raise ValueError("Click a result in either row first; this button then searches with it.")
        shown = show_picture("gallery", gallery_id, *values)
        return {named["split"]: "gallery", named["picked"]: gallery_id, **shown}

    picked = [named["split"], named["picked"], *outputs]

    @user_errors
    def open_query(index: int, *values):
        return {named["split"]: "query", named["picked"]: index, **show_picture("query", index, *values)}

    named["picked_outputs"] = picked
    wire_query_browser(engine, named, params, open_query, SHOW_ROWS)
    for event in (
        named["show_id"].click(pick, [named["split"], named["picked"], *params], outputs, api_name=False),
        named["random_example"].click(pick_random, params, picked, api_name=False),
        named["use_result"].click(use_result, [named["explained"], *params], picked, api_name=False),
    ):
        event.success(None, js=SHOW_ROWS)


def wire_side(engine: Engine, present: Presenter, named: dict) -> None:
    """Opening the side-by-side view computes it for the view shown; while it is open every search
    answers with it, closed none pays for it."""
    outputs = [named["side_open"], named["side_image"], named["side_table"]]

    def opened(state: SearchState | None):
        if not state:
            return True, None, ""
        return True, *present.compare(engine.compare(state.query, *state.params, box=state.box))

    named["side_by_side"].expand(opened, named["state"], outputs, api_name=False)
    named["side_by_side"].collapse(lambda: False, None, named["side_open"], api_name=False)
